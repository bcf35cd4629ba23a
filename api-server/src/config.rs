//! Typed configuration of the api-server, read once from the environment and passed down.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use shared::limits::{env_or, Limits};

/// Everything the server needs to run. Fields are public so tests and launchers can build one
/// directly; [`Config::new`] fills the defaults.
#[derive(Clone)]
pub struct Config {
    /// Address `main` binds (`LISTEN`); `run` itself takes an already bound listener.
    pub listen: SocketAddr,
    pub database_url: String,
    pub redis_url: String,
    /// HS256 key, at least 32 bytes.
    pub jwt_secret: String,
    pub jwt_ttl: Duration,
    pub db_pool_size: usize,
    pub limits: Limits,
    /// Argon2id memory cost in KiB (`ARGON2_MEMORY_KIB`, default 19456 as recommended by OWASP).
    pub argon2_memory_kib: u32,
    /// Text search configuration of message search (`SEARCH_LANGUAGE`, default `simple`); it
    /// must be the one `messages.search` is built with (docs/API.md, "Search").
    pub search_language: String,
    /// Where attachments' bytes go without `ATTACHMENT_STORE`: `{data_dir}/attachments`
    /// (`DATA_DIR`, default `.data`).
    pub data_dir: PathBuf,
    /// An object store URL for attachments (`ATTACHMENT_STORE`: `file:///srv/files`, or an
    /// S3-compatible bucket, `s3://bucket/prefix`).
    pub attachment_store: Option<String>,
    /// The store's settings (endpoint, region, credentials, ...), as `object_store` names them:
    /// from the environment, every `AWS_*` variable, lower-cased (`AWS_ENDPOINT` becomes
    /// `aws_endpoint`). Unknown names are ignored; values are never logged.
    pub attachment_store_options: Vec<(String, String)>,
    /// Largest attachment, in bytes (`ATTACHMENT_MAX_BYTES`, default 25 MiB).
    pub attachment_max_bytes: u64,
    /// A client must send a request's whole header within this (`HEADER_READ_TIMEOUT_MS`,
    /// default 10 s, as HAProxy's `timeout http-request`), else its connection is closed:
    /// a slowloris trickling header bytes holds no connection longer.
    pub header_read_timeout: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &self.database_url)
            .field("redis_url", &self.redis_url)
            .field("jwt_secret", &"..")
            .field("jwt_ttl", &self.jwt_ttl)
            .field("db_pool_size", &self.db_pool_size)
            .field("limits", &self.limits)
            .field("argon2_memory_kib", &self.argon2_memory_kib)
            .field("search_language", &self.search_language)
            .field("data_dir", &self.data_dir)
            .field("attachment_store", &self.attachment_store)
            .field(
                "attachment_store_options",
                &self
                    .attachment_store_options
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("attachment_max_bytes", &self.attachment_max_bytes)
            .field("header_read_timeout", &self.header_read_timeout)
            .finish()
    }
}

/// Default largest attachment: 25 MiB.
pub const DEFAULT_ATTACHMENT_MAX_BYTES: u64 = 25 * 1024 * 1024;
/// Default for [`Config::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Default Argon2id memory cost (KiB).
pub const DEFAULT_ARGON2_MEMORY_KIB: u32 = 19_456;

impl Config {
    /// A configuration with every default except the three connection settings.
    pub fn new(database_url: &str, redis_url: &str, jwt_secret: &str) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 9000)),
            database_url: database_url.to_owned(),
            redis_url: redis_url.to_owned(),
            jwt_secret: jwt_secret.to_owned(),
            jwt_ttl: Duration::from_secs(86_400),
            db_pool_size: 16,
            limits: Limits::default(),
            argon2_memory_kib: DEFAULT_ARGON2_MEMORY_KIB,
            search_language: "simple".to_owned(),
            data_dir: PathBuf::from(".data"),
            attachment_store: None,
            attachment_store_options: Vec::new(),
            attachment_max_bytes: DEFAULT_ATTACHMENT_MAX_BYTES,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
        }
    }

    /// Reads `LISTEN`, `DATABASE_URL`, `REDIS_URL`, `JWT_SECRET`, `JWT_TTL_SECS`,
    /// `DB_POOL_SIZE`, `ARGON2_MEMORY_KIB`, `SEARCH_LANGUAGE`, `DATA_DIR`, `ATTACHMENT_STORE`,
    /// `AWS_*` (the store's settings), `ATTACHMENT_MAX_BYTES`, `HEADER_READ_TIMEOUT_MS` and the limits of `shared::limits`.
    pub fn from_env() -> anyhow::Result<Self> {
        let secret =
            std::env::var("JWT_SECRET").context("JWT_SECRET is not set (at least 32 bytes)")?;
        let mut c = Config::new(
            &env_or(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5433/chat".to_owned(),
            )?,
            &env_or("REDIS_URL", "redis://127.0.0.1:6380".to_owned())?,
            &secret,
        );
        c.listen = env_or("LISTEN", c.listen)?;
        c.jwt_ttl = Duration::from_secs(env_or("JWT_TTL_SECS", c.jwt_ttl.as_secs())?);
        c.db_pool_size = env_or("DB_POOL_SIZE", c.db_pool_size)?;
        c.limits = Limits::from_env()?;
        c.argon2_memory_kib = env_or("ARGON2_MEMORY_KIB", c.argon2_memory_kib)?;
        c.search_language = env_or("SEARCH_LANGUAGE", c.search_language)?;
        c.data_dir = env_or("DATA_DIR", c.data_dir)?;
        c.attachment_store = std::env::var("ATTACHMENT_STORE")
            .ok()
            .filter(|v| !v.is_empty());
        c.attachment_store_options = std::env::vars()
            .filter(|(k, _)| k.starts_with("AWS_"))
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        c.attachment_max_bytes = env_or("ATTACHMENT_MAX_BYTES", c.attachment_max_bytes)?;
        c.header_read_timeout = Duration::from_millis(env_or(
            "HEADER_READ_TIMEOUT_MS",
            c.header_read_timeout.as_millis() as u64,
        )?);
        Ok(c)
    }
}

//! Typed edge configuration, read once from the environment and passed down.

use std::time::Duration;

use anyhow::Context;
use shared::auth::JwtKeys;
use shared::limits::{env_or, Limits};

/// Everything an edge needs to run; tests build it directly with shortened timings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Name in `ready.edge`, metrics and presence leases. Empty: `edge-<port>`.
    pub edge_id: String,
    pub database_url: String,
    pub redis_url: String,
    pub jwt: JwtKeys,
    /// Exact browser origins allowed to open sockets; requests without `Origin` are allowed.
    pub allowed_origins: Vec<String>,
    pub db_pool_size: usize,
    pub limits: Limits,
    /// WebSocket ping interval.
    pub ping_interval: Duration,
    /// A socket silent (no pong, no frame) this long is closed.
    pub pong_timeout: Duration,
    /// Frames a socket may have queued before it is closed with 4008.
    pub out_queue_frames: usize,
    /// Bytes a socket may have queued before it is closed with 4008.
    pub out_queue_bytes: usize,
    /// Closes with 1012 are spread over this long on drain.
    pub drain_spread: Duration,
    /// How long drain waits for sockets to close before giving up.
    pub drain_timeout: Duration,
    /// How often every subscribed channel is compared with PostgreSQL's `last_seq`.
    pub catchup_interval: Duration,
    /// How long a hole in `seq` may wait for the missing publish before PostgreSQL fills it.
    pub gap_grace: Duration,
    /// Largest batch of sends committed in one transaction.
    pub send_batch_max: usize,
    /// Group-commit shards: channels are spread over this many committer tasks, each
    /// committing its batches one after another (one PostgreSQL connection each).
    pub send_workers: usize,
    /// A channel's `resume` history reads start at least this far apart: resumes arriving
    /// meanwhile share the next read (a reconnect storm costs a few reads per channel).
    pub resume_spacing: Duration,
    /// A client must send a request's whole header within this, else its connection is
    /// closed (a slowloris holds no connection longer); HAProxy's `timeout http-request`.
    pub header_read_timeout: Duration,
}

impl Config {
    /// Reads `LISTEN`-independent settings; the edge id defaults from the bound port later.
    pub fn from_env() -> anyhow::Result<Self> {
        let secret = std::env::var("JWT_SECRET").context("JWT_SECRET is not set")?;
        let jwt = JwtKeys::new(secret.as_bytes(), Duration::from_secs(86_400))?;
        let allowed_origins = std::env::var("ALLOWED_ORIGINS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let ms = |name: &str, default: u64| -> anyhow::Result<Duration> {
            Ok(Duration::from_millis(env_or(name, default)?))
        };
        Ok(Config {
            edge_id: std::env::var("EDGE_ID").unwrap_or_default(),
            database_url: env_or(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5433/chat".to_owned(),
            )?,
            redis_url: env_or("REDIS_URL", "redis://127.0.0.1:6380".to_owned())?,
            jwt,
            allowed_origins,
            db_pool_size: env_or("DB_POOL_SIZE", 16)?,
            limits: Limits::from_env()?,
            ping_interval: ms("PING_INTERVAL_MS", 25_000)?,
            pong_timeout: ms("PONG_TIMEOUT_MS", 60_000)?,
            out_queue_frames: env_or("OUT_QUEUE_FRAMES", 4096)?,
            out_queue_bytes: env_or("OUT_QUEUE_BYTES", 4 << 20)?,
            drain_spread: ms("DRAIN_SPREAD_MS", 2_000)?,
            drain_timeout: ms("DRAIN_TIMEOUT_MS", 6_000)?,
            catchup_interval: ms("CATCHUP_INTERVAL_MS", 3_000)?,
            gap_grace: ms("GAP_GRACE_MS", 30)?,
            send_batch_max: env_or("SEND_BATCH_MAX", 256)?,
            send_workers: env_or("SEND_WORKERS", 4)?,
            resume_spacing: ms("RESUME_SPACING_MS", 250)?,
            header_read_timeout: ms("HEADER_READ_TIMEOUT_MS", 10_000)?,
        })
    }

    /// A configuration for tests and embedding: defaults everywhere but the servers and secret.
    pub fn new(database_url: &str, redis_url: &str, jwt_secret: &str) -> anyhow::Result<Self> {
        Ok(Config {
            edge_id: String::new(),
            database_url: database_url.to_owned(),
            redis_url: redis_url.to_owned(),
            jwt: JwtKeys::new(jwt_secret.as_bytes(), Duration::from_secs(86_400))?,
            allowed_origins: Vec::new(),
            db_pool_size: 8,
            limits: Limits::default(),
            ping_interval: Duration::from_secs(25),
            pong_timeout: Duration::from_secs(60),
            out_queue_frames: 4096,
            out_queue_bytes: 4 << 20,
            drain_spread: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(6),
            catchup_interval: Duration::from_secs(3),
            gap_grace: Duration::from_millis(30),
            send_batch_max: 256,
            send_workers: 4,
            resume_spacing: Duration::from_millis(250),
            header_read_timeout: Duration::from_secs(10),
        })
    }
}

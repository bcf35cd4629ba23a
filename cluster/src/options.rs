//! What the launcher starts and where: read from the environment for `make run`
//! (SPEC section 2), or built directly by tests (free ports, existing databases).

use std::path::PathBuf;

/// Settings of one cluster.
#[derive(Debug, Clone)]
pub struct Options {
    /// Number of edge-servers.
    pub edges: usize,
    /// Number of api-servers.
    pub apis: usize,
    /// Address HAProxy binds (`HTTP_HOST`, default 127.0.0.1).
    pub http_host: String,
    /// Public HAProxy port; 0 picks a free one.
    pub http_port: u16,
    /// Port of the PostgreSQL the launcher starts (ignored with `database_url`); 0: free.
    pub pg_port: u16,
    /// Port of the Redis the launcher starts (ignored with `redis_url`); 0: free.
    pub redis_port: u16,
    /// First edge port (`edge-1`); the next edges take the following ports. 0: free ports.
    /// A taken port falls back to a free one.
    pub edge_base_port: u16,
    /// First api-server port, as for edges.
    pub api_base_port: u16,
    /// PostgreSQL data, Redis dir, logs, the JWT secret, `cluster.json`, the HAProxy socket.
    pub data_dir: PathBuf,
    /// Where `api-server` and `edge-server` are.
    pub bin_dir: PathBuf,
    /// Use this PostgreSQL database instead of starting a server.
    pub database_url: Option<String>,
    /// Use this Redis instead of starting a server.
    pub redis_url: Option<String>,
    /// The HS256 key; None reads or creates `$DATA_DIR/jwt_secret`.
    pub jwt_secret: Option<String>,
    /// `ALLOWED_ORIGINS` of the edges; None allows the HAProxy URL itself (the web client).
    pub allowed_origins: Option<String>,
    /// Extra environment for the api-servers and edges (e.g. `DB_POOL_SIZE`, limits).
    pub env: Vec<(String, String)>,
    /// Print a line per process as it becomes ready.
    pub announce: bool,
    /// Extra `global` lines of HAProxy's configuration (`HAPROXY_GLOBAL`, `;`-separated).
    pub haproxy_global: Vec<String>,
    /// Extra `defaults` lines (`HAPROXY_DEFAULTS`).
    pub haproxy_defaults: Vec<String>,
}

impl Options {
    /// Defaults of SPEC section 2 for a data dir and binary dir; every port fixed.
    pub fn new(data_dir: impl Into<PathBuf>, bin_dir: impl Into<PathBuf>) -> Self {
        Options {
            edges: 2,
            apis: 1,
            http_host: "127.0.0.1".into(),
            http_port: 8080,
            pg_port: 5433,
            redis_port: 6380,
            edge_base_port: 9101,
            api_base_port: 9001,
            data_dir: data_dir.into(),
            bin_dir: bin_dir.into(),
            database_url: None,
            redis_url: None,
            jwt_secret: None,
            allowed_origins: None,
            env: Vec::new(),
            announce: false,
            haproxy_global: Vec::new(),
            haproxy_defaults: Vec::new(),
        }
    }

    /// A cluster on free ports only, quiet: what tests start.
    pub fn on_free_ports(data_dir: impl Into<PathBuf>, bin_dir: impl Into<PathBuf>) -> Self {
        Options {
            http_port: 0,
            pg_port: 0,
            redis_port: 0,
            edge_base_port: 0,
            api_base_port: 0,
            ..Options::new(data_dir, bin_dir)
        }
    }

    /// `make run`: `EDGES`, `APIS`, `HTTP_HOST`, `HTTP_PORT`, `PG_PORT`, `REDIS_PORT`,
    /// `EDGE_PORT`, `API_PORT`, `DATA_DIR`, `DATABASE_URL`, `REDIS_URL`, `JWT_SECRET`,
    /// `ALLOWED_ORIGINS`; binaries next to the running executable.
    pub fn from_env() -> anyhow::Result<Self> {
        let bin_dir = std::env::current_exe()?
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut o = Options::new(var("DATA_DIR").unwrap_or_else(|| ".data".into()), bin_dir);
        o.edges = num("EDGES", o.edges)?;
        o.apis = num("APIS", o.apis)?;
        o.http_port = num("HTTP_PORT", o.http_port)?;
        o.pg_port = num("PG_PORT", o.pg_port)?;
        o.redis_port = num("REDIS_PORT", o.redis_port)?;
        o.edge_base_port = num("EDGE_PORT", o.edge_base_port)?;
        o.api_base_port = num("API_PORT", o.api_base_port)?;
        if let Some(h) = var("HTTP_HOST") {
            o.http_host = h;
        }
        o.database_url = var("DATABASE_URL");
        o.redis_url = var("REDIS_URL");
        o.jwt_secret = var("JWT_SECRET");
        o.allowed_origins = var("ALLOWED_ORIGINS");
        o.haproxy_global = crate::haproxy::split_lines(&var("HAPROXY_GLOBAL").unwrap_or_default());
        o.haproxy_defaults =
            crate::haproxy::split_lines(&var("HAPROXY_DEFAULTS").unwrap_or_default());
        o.announce = true;
        if o.edges == 0 || o.apis == 0 {
            anyhow::bail!("EDGES and APIS must be at least 1");
        }
        Ok(o)
    }
}

/// A non-empty environment variable.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn num<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a valid number")),
    }
}

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
    /// Port of the Redis the launcher starts (ignored with `redis_url`); 0: free. With
    /// `redis_shards`, the first node's port; the other nodes take the following ports.
    pub redis_port: u16,
    /// Masters of a Redis Cluster to start instead of one Redis (`REDIS_SHARDS`); 0: one plain
    /// Redis. At least 3 otherwise (what `redis-cli --cluster create` accepts).
    pub redis_shards: usize,
    /// Replicas per master of that cluster (`REDIS_REPLICAS`, 0 or 1).
    pub redis_replicas: usize,
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
            redis_shards: 0,
            redis_replicas: 0,
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
    /// `REDIS_SHARDS`, `REDIS_REPLICAS`, `EDGE_PORT`, `API_PORT`, `DATA_DIR`, `DATABASE_URL`, `REDIS_URL`, `JWT_SECRET`,
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
        o.redis_shards = num("REDIS_SHARDS", o.redis_shards)?;
        o.redis_replicas = num("REDIS_REPLICAS", o.redis_replicas)?;
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
        o.check_redis()?;
        Ok(o)
    }

    /// Rejects a Redis Cluster layout the launcher cannot start.
    pub fn check_redis(&self) -> anyhow::Result<()> {
        if self.redis_shards > 0 && self.redis_shards < 3 {
            anyhow::bail!(
                "REDIS_SHARDS={} : a Redis Cluster needs at least 3 masters (0 starts one plain Redis)",
                self.redis_shards
            );
        }
        if self.redis_replicas > 1 {
            anyhow::bail!("REDIS_REPLICAS must be 0 or 1");
        }
        if self.redis_replicas > 0 && self.redis_shards == 0 {
            anyhow::bail!("REDIS_REPLICAS needs REDIS_SHARDS (a Redis Cluster)");
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_cluster_layouts_are_checked() {
        let with = |shards, replicas| Options {
            redis_shards: shards,
            redis_replicas: replicas,
            ..Options::new(".data", ".")
        };
        assert!(with(0, 0).check_redis().is_ok());
        assert!(with(3, 0).check_redis().is_ok());
        assert!(with(5, 1).check_redis().is_ok());
        for (shards, replicas) in [(1, 0), (2, 1), (3, 2), (0, 1)] {
            assert!(
                with(shards, replicas).check_redis().is_err(),
                "{shards} {replicas}"
            );
        }
    }
}

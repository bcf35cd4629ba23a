//! The launcher behind `make run` and the end-to-end tests: starts PostgreSQL, Redis (one
//! server or a Redis Cluster), the api-servers, N edges and HAProxy (config rendered from
//! `haproxy/haproxy.cfg.tmpl`), keeps `$DATA_DIR/cluster.json` current, and stops everything it
//! started.

pub mod haproxy;
mod launcher;
pub mod options;
pub mod probe;
pub mod services;

use std::path::PathBuf;

pub use launcher::{Cluster, RedisMode, RedisNode, Role, REDIS_NODE_TIMEOUT_MS};
pub use options::Options;

/// Why starting or operating the cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{} is missing: build it first (`cargo build --release --workspace --bins`)", .0.display())]
    MissingBinary(PathBuf),
    #[error("could not start {id}: {source:#}")]
    Spawn { id: String, source: anyhow::Error },
    #[error("{id} exited during startup ({status}); last log lines:\n{log}")]
    Exited {
        id: String,
        status: String,
        log: String,
    },
    #[error("{id} not ready after {secs} s (log: {})", .log.display())]
    NotReady { id: String, secs: u64, log: PathBuf },
    #[error("no edge {0} (or it is not in the expected state)")]
    NoSuchEdge(usize),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Unexpected(e.into())
    }
}

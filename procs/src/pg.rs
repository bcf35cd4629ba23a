//! Where PostgreSQL's server binaries (`initdb`, `postgres`, `pg_isready`) are.

use std::path::PathBuf;

/// Finds a PostgreSQL binary: `$PG_BIN`, the distribution's versioned dirs (newest first),
/// then `PATH`.
pub fn pg_bin(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return PathBuf::from(dir).join(name);
    }
    (12..=20)
        .rev()
        .map(|v| PathBuf::from(format!("/usr/lib/postgresql/{v}/bin/{name}")))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

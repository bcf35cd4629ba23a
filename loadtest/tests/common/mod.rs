//! What the load test's integration tests share: the binaries cargo built, a cluster's options
//! on free ports, running the `loadtest` binary and reading its JSON report.
#![allow(dead_code, clippy::unwrap_used)]

pub mod faults;

use std::path::{Path, PathBuf};

use cluster::Options;
use tokio::process::Command;

/// Where cargo put this profile's binaries (`api-server` and `edge-server` sit next to ours).
pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_loadtest"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A cluster of `edges` edges on free ports over the given PostgreSQL and Redis, with cheap
/// password hashes and no login limit (setup speed is not what these tests measure).
pub fn options(edges: usize, database_url: String, redis_url: String) -> Options {
    let bins = bin_dir();
    for b in ["api-server", "edge-server"] {
        assert!(
            bins.join(b).exists(),
            "{} missing: run `cargo build -p api-server -p edge-server` first",
            bins.join(b).display()
        );
    }
    let dir = testkit::scratch::make("loadtest").unwrap();
    let mut o = Options::on_free_ports(&dir, &bins);
    o.edges = edges;
    o.database_url = Some(database_url);
    o.redis_url = Some(redis_url);
    o.jwt_secret = Some(testkit::JWT_SECRET.to_owned());
    o.env = vec![
        ("ARGON2_MEMORY_KIB".into(), "256".into()),
        ("LOGIN_ATTEMPTS".into(), "100000".into()),
        ("RUST_LOG".into(), "warn".into()),
    ];
    o
}

/// The `loadtest` binary with `args`, no progress bar, killed with the test.
pub fn loadtest(args: &[String]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_loadtest"));
    c.args(args).arg("--no-progress").kill_on_drop(true);
    c
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

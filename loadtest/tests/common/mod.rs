//! What the load test's integration tests share: the binaries cargo built, a cluster's options
//! on free ports, running the `loadtest` binary and reading its JSON report.
#![allow(dead_code, clippy::unwrap_used)]

pub mod faults;

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use cluster::{Cluster, Options};
use testkit::PgServer;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

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
        (
            "RUST_LOG".into(),
            std::env::var("SERVERS_LOG").unwrap_or_else(|_| "warn".into()),
        ),
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

/// `ws://` URLs of the cluster's edges, comma-separated (for `--ws-targets`).
pub fn edge_targets(cluster: &Cluster) -> String {
    let urls: Vec<String> = cluster
        .edge_addrs()
        .iter()
        .map(|a| format!("ws://{a}"))
        .collect();
    urls.join(",")
}

/// Load test flags for sockets straight to the cluster's edges (setup through its HAProxy),
/// then `rest`.
pub fn direct_to_edges(cluster: &Cluster, rest: &[&str]) -> Vec<String> {
    let mut v = strings(&[
        "--target",
        &cluster.http_url(),
        "--ws-targets",
        &edge_targets(cluster),
    ]);
    v.extend(strings(rest));
    v
}

/// Owned words.
pub fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

/// Starts `loadtest` with `args` and returns once it is sending; the rest of its stderr is
/// echoed (a failing test shows the duplicates or reorders it describes), its stdout piped.
pub async fn start_sending(args: &[String]) -> Child {
    let mut child = loadtest(args)
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let sending = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if l.contains("sending for") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(sending, "loadtest never reached its send phase");
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            eprintln!("loadtest: {l}");
        }
    });
    child
}

/// A PostgreSQL of the test's own (which it may stop), migrated, and a cluster of `edges`
/// edges over it and `redis_url`; the database's URL.
pub async fn cluster_on_own_pg(edges: usize, redis_url: String) -> (PgServer, String, Cluster) {
    let pg = tokio::task::spawn_blocking(PgServer::start)
        .await
        .unwrap()
        .unwrap();
    let db = pg.url("postgres");
    let mut c = shared::store::migrate::connect(&db).await.unwrap();
    shared::store::migrate::run(&mut c).await.unwrap();
    drop(c);
    let cluster = Cluster::start(options(edges, db.clone(), redis_url))
        .await
        .unwrap();
    (pg, db, cluster)
}

//! The real `loadtest` binary against a real cluster (edges, api-server, HAProxy started by the
//! launcher library): a healthy run exits 0 with nothing lost, and an edge killed mid-run
//! without `--resume` makes it report loss and exit non-zero.
#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use cluster::{Cluster, Options};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

/// Where cargo put this profile's binaries (`api-server` and `edge-server` sit next to ours).
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_loadtest"))
        .parent()
        .unwrap()
        .to_path_buf()
}

async fn start_cluster(edges: usize) -> Cluster {
    let bins = bin_dir();
    for b in ["api-server", "edge-server"] {
        assert!(
            bins.join(b).exists(),
            "{} missing: run `cargo build -p api-server -p edge-server` first",
            bins.join(b).display()
        );
    }
    let dir = std::env::temp_dir().join(format!("loadtest-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut o = Options::on_free_ports(&dir, &bins);
    o.edges = edges;
    o.database_url = Some(testkit::fresh_db().await.url);
    o.redis_url = Some(testkit::redis_url());
    o.jwt_secret = Some(testkit::JWT_SECRET.to_owned());
    // Cheap password hashes and no login limit: setup speed is not what these tests measure.
    o.env = vec![
        ("ARGON2_MEMORY_KIB".into(), "256".into()),
        ("LOGIN_ATTEMPTS".into(), "100000".into()),
        ("RUST_LOG".into(), "warn".into()),
    ];
    Cluster::start(o).await.unwrap()
}

fn uuid_like() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{t}", std::process::id())
}

fn loadtest(args: &[String]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_loadtest"));
    c.args(args).arg("--no-progress").kill_on_drop(true);
    c
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A 10 s chat load of 20 users in 5 channels through HAProxy (with `extra` flags): it must
/// exit 0 having delivered every acked message to its 4 members, nothing doubled or reordered.
async fn smoke(name: &str, extra: &[&str]) {
    let cluster = start_cluster(2).await;
    let json = cluster.data_dir().join(format!("{name}.json"));
    let mut args: Vec<String> = [
        "--target",
        &cluster.http_url(),
        "--scenario",
        "chat",
        "--users",
        "20",
        "--channels",
        "5",
        "--rate",
        "50",
        "--duration",
        "10s",
        "--grace",
        "10s",
        "--json",
        json.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = tokio::time::timeout(Duration::from_secs(120), loadtest(&args).output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let r = read_json(&json);
    assert_eq!(r["passed"], true);
    assert_eq!(r["connections"]["connected"], 20);
    assert_eq!(r["deliveries"]["lost"], 0);
    assert_eq!(r["deliveries"]["duplicated"], 0);
    assert_eq!(r["deliveries"]["out_of_order"], 0);
    let acked = r["sends"]["acked"].as_u64().unwrap();
    assert!(acked > 100, "only {acked} sends acked: {stdout}");
    // 5 channels of 4 members: every acked message reaches 4 sockets.
    assert_eq!(
        r["deliveries"]["expected"].as_u64().unwrap(),
        acked * 4,
        "{stdout}"
    );
    assert_eq!(
        r["deliveries"]["received"], r["deliveries"]["expected"],
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_cluster_chat_smoke_exits_zero_with_nothing_lost() {
    smoke("smoke", &[]).await;
}

/// The same through HAProxy with every socket on `chat.v1.batch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_sockets_through_haproxy_lose_nothing() {
    smoke("batch", &["--batch"]).await;
}

/// Runs a direct-to-edges chat load, SIGKILLs edge-1 two seconds into the send phase, and
/// returns the exit code and the JSON report.
async fn run_with_edge_killed(extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut cluster = start_cluster(2).await;
    let json = cluster.data_dir().join("kill.json");
    let targets: Vec<String> = cluster
        .edge_addrs()
        .iter()
        .map(|a| format!("ws://{a}"))
        .collect();
    // 5 channels over 20 users: every channel has members on both edges.
    let mut args: Vec<String> = [
        "--target",
        &cluster.http_url(),
        "--ws-targets",
        &targets.join(","),
        "--scenario",
        "chat",
        "--users",
        "20",
        "--channels",
        "5",
        "--rate",
        "50",
        "--duration",
        "8s",
        "--grace",
        "10s",
        "--json",
        json.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut child = loadtest(&args)
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Wait for the send phase, then crash edge-1 while messages keep flowing through edge-2.
    let sending = tokio::time::timeout(Duration::from_secs(60), async {
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
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.kill_edge(0, libc::SIGKILL).await.unwrap();
    // Shown if the test fails: the loadtest describes any duplicate or reorder there.
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            eprintln!("loadtest: {l}");
        }
    });
    let status = tokio::time::timeout(Duration::from_secs(90), child.wait())
        .await
        .unwrap()
        .unwrap();
    (status.code(), read_json(&json))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_killed_without_resume_is_reported_as_loss() {
    let (code, r) = run_with_edge_killed(&[]).await;
    assert_eq!(code, Some(1), "{r:#}");
    assert_eq!(r["passed"], false);
    assert!(r["deliveries"]["lost"].as_u64().unwrap() > 0, "{r:#}");
    // The 10 sockets of edge-1 were closed by the crash, none came back.
    assert_eq!(r["connections"]["disconnects"], 10, "{r:#}");
    assert_eq!(r["connections"]["reconnects"], 0, "{r:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_killed_with_resume_loses_nothing() {
    let (code, r) = run_with_edge_killed(&["--resume"]).await;
    assert_eq!(code, Some(0), "{r:#}");
    assert_eq!(r["deliveries"]["lost"], 0, "{r:#}");
    assert_eq!(r["deliveries"]["duplicated"], 0, "{r:#}");
    assert_eq!(r["deliveries"]["out_of_order"], 0, "{r:#}");
    assert_eq!(r["connections"]["disconnects"], 10, "{r:#}");
    assert_eq!(r["connections"]["reconnects"], 10, "{r:#}");
}

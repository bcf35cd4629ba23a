//! The real `loadtest` binary against a real cluster (edges, api-server, HAProxy started by the
//! launcher library): a healthy run exits 0 with nothing lost, an edge killed mid-run
//! without `--resume` makes it report loss and exit non-zero, and with `--resume` a storm of
//! 2,000 reconnects ends gap-free on far fewer PostgreSQL history reads than sockets.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use cluster::Cluster;
use common::{loadtest, read_json};

mod common;

async fn start_cluster(edges: usize) -> Cluster {
    let db = testkit::fresh_db().await.url;
    Cluster::start(common::options(edges, db, testkit::redis_url()))
        .await
        .unwrap()
}

/// A 10 s load of `scenario` by 20 users in 5 channels through HAProxy (with `extra` flags):
/// it must exit 0 having delivered every acked message (and change) to its 4 members, nothing
/// doubled or reordered; returns the report.
async fn smoke(name: &str, scenario: &str, extra: &[&str]) -> serde_json::Value {
    let cluster = start_cluster(2).await;
    let json = cluster.data_dir().join(format!("{name}.json"));
    let mut args: Vec<String> = [
        "--target",
        &cluster.http_url(),
        "--scenario",
        scenario,
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
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_cluster_chat_smoke_exits_zero_with_nothing_lost() {
    smoke("smoke", "chat", &[]).await;
}

/// The same through HAProxy with every socket on `chat.v1.batch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_sockets_through_haproxy_lose_nothing() {
    smoke("batch", "chat", &["--batch"]).await;
}

/// The mixed scenario through HAProxy: edits, reactions and deletes are acked and each reaches
/// every member socket once, in seq order, counted in the same accounting as messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_scenario_through_haproxy_delivers_every_change_once_in_order() {
    let r = smoke("mixed", "mixed", &[]).await;
    let ch = &r["sends"]["changes"];
    let n = |k: &str| ch[k].as_u64().unwrap();
    assert!(
        n("edits") > 10 && n("reactions") > 10 && n("deletes") > 3,
        "{r:#}"
    );
    assert_eq!(r["sends"]["errors"], 0, "{r:#}");
    // Every acked change's event reached the channel's 4 member sockets.
    assert_eq!(
        n("delivered"),
        (n("edits") + n("reactions") + n("deletes")) * 4,
        "{r:#}"
    );
}

/// A direct-to-edges chat load whose edge-1 is SIGKILLed `kill_after` into the send phase.
struct KillRun<'a> {
    scenario: &'a str,
    users: usize,
    sockets_per_user: usize,
    channels: usize,
    rate: u32,
    duration: &'a str,
    grace: &'a str,
    kill_after: Duration,
    extra: &'a [&'a str],
}

/// What a killed run left: the exit code, the JSON report, and the surviving edge's
/// `/metrics` read once the load test had exited.
struct Killed {
    code: Option<i32>,
    report: serde_json::Value,
    survivor_metrics: String,
}

/// 20 users in 5 channels at 50 messages/s for 8 s, edge-1 killed 2 s in: every channel has
/// members on both edges.
const SMALL_KILL: KillRun<'static> = KillRun {
    scenario: "chat",
    users: 20,
    sockets_per_user: 1,
    channels: 5,
    rate: 50,
    duration: "8s",
    grace: "10s",
    kill_after: Duration::from_secs(2),
    extra: &[],
};

/// Runs `run` against a two-edge cluster (sockets alternate between the edges) and returns
/// what it left.
async fn run_with_edge_killed(run: &KillRun<'_>) -> Killed {
    let mut cluster = start_cluster(2).await;
    let json = cluster.data_dir().join("kill.json");
    let mut args = common::direct_to_edges(
        &cluster,
        &[
            "--scenario",
            run.scenario,
            "--users",
            &run.users.to_string(),
            "--sockets-per-user",
            &run.sockets_per_user.to_string(),
            "--channels",
            &run.channels.to_string(),
            "--rate",
            &run.rate.to_string(),
            "--duration",
            run.duration,
            "--grace",
            run.grace,
            "--json",
            json.to_str().unwrap(),
        ],
    );
    args.extend(common::strings(run.extra));
    // Crash edge-1 into the send phase while messages keep flowing through edge-2.
    let mut child = common::start_sending(&args).await;
    tokio::time::sleep(run.kill_after).await;
    cluster.kill_edge(0, libc::SIGKILL).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(90), child.wait())
        .await
        .unwrap()
        .unwrap();
    let survivor = cluster.edge_addrs()[1];
    let survivor_metrics = reqwest::get(format!("http://{survivor}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    Killed {
        code: status.code(),
        report: read_json(&json),
        survivor_metrics,
    }
}

/// The value of an unlabelled-but-for-the-edge counter in a Prometheus text exposition.
fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}")) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_killed_without_resume_is_reported_as_loss() {
    let k = run_with_edge_killed(&SMALL_KILL).await;
    let r = k.report;
    assert_eq!(k.code, Some(1), "{r:#}");
    assert_eq!(r["passed"], false);
    assert!(r["deliveries"]["lost"].as_u64().unwrap() > 0, "{r:#}");
    // The 10 sockets of edge-1 were closed by the crash, none came back.
    assert_eq!(r["connections"]["disconnects"], 10, "{r:#}");
    assert_eq!(r["connections"]["reconnects"], 0, "{r:#}");
}

/// Asserts a killed run with `--resume` lost, doubled and reordered nothing, and that every
/// one of the `moved` sockets of edge-1 came back.
fn assert_gap_free(k: &Killed, moved: u64) {
    let r = &k.report;
    assert_eq!(k.code, Some(0), "{r:#}");
    assert_eq!(r["deliveries"]["lost"], 0, "{r:#}");
    assert_eq!(r["deliveries"]["duplicated"], 0, "{r:#}");
    assert_eq!(r["deliveries"]["out_of_order"], 0, "{r:#}");
    assert_eq!(r["connections"]["disconnects"], moved, "{r:#}");
    assert_eq!(r["connections"]["reconnects"], moved, "{r:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_killed_with_resume_loses_nothing() {
    let k = run_with_edge_killed(&KillRun {
        extra: &["--resume"],
        ..SMALL_KILL
    })
    .await;
    assert_gap_free(&k, 10);
}

/// The mixed scenario across an edge crash: changes in flight are resent with their ids and
/// applied once, and `resume` replays every missed event in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_scenario_with_an_edge_killed_and_resume_loses_no_change() {
    let k = run_with_edge_killed(&KillRun {
        scenario: "mixed",
        extra: &["--resume"],
        ..SMALL_KILL
    })
    .await;
    assert_gap_free(&k, 10);
    let ch = &k.report["sends"]["changes"];
    assert!(ch["edits"].as_u64().unwrap() > 0, "{:#}", k.report);
    assert!(ch["deletes"].as_u64().unwrap() > 0, "{:#}", k.report);
}

/// A reconnect storm: 4,000 sockets (400 users x 10) in 50 channels over two edges, edge-1
/// (2,000 of them) SIGKILLed while 100 messages/s keep being sent. Every socket must end
/// gap-free (the load test's exact accounting), and the survivor must serve the 2,000
/// `resume`s with far fewer PostgreSQL history reads than one per socket: concurrent resumes
/// of a channel share one read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_storm_resumes_gap_free_with_coalesced_reads() {
    let started = std::time::Instant::now();
    let moved = 2_000;
    let k = run_with_edge_killed(&KillRun {
        scenario: "chat",
        users: 400,
        sockets_per_user: 10,
        channels: 50,
        rate: 100,
        duration: "10s",
        grace: "15s",
        kill_after: Duration::from_secs(2),
        extra: &["--resume"],
    })
    .await;
    let requests = counter(&k.survivor_metrics, "edge_resume_requests_total");
    let reads = counter(&k.survivor_metrics, "edge_history_reads_total");
    let r = &k.report;
    eprintln!(
        "storm: {moved} sockets of 4000 moved, 50 channels, {} sends acked, {requests} resume \
         requests, {reads} history reads on the survivor, all resumed within {:.2} s of the first \
         disconnect, {:.1} s",
        r["sends"]["acked"],
        r["connections"]["recovery_seconds"]
            .as_f64()
            .unwrap_or(f64::NAN),
        started.elapsed().as_secs_f64()
    );
    assert_gap_free(&k, moved);
    assert!(
        r["connections"]["recovery_seconds"].as_f64().is_some(),
        "no socket completed a resume: {r:#}"
    );
    // Each moved socket resumes its one channel (more only after a truncated replay).
    assert!(
        requests >= moved,
        "{requests} resume requests for {moved} sockets"
    );
    assert!(
        reads <= moved / 10,
        "{reads} history reads for {requests} resume requests: not coalesced"
    );
}

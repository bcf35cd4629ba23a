//! Chaos under load: a 3-edge cluster under `loadtest --scenario mixed --resume --check-db`
//! while faults come one after another: an edge killed -9, Redis restarted (on a Redis
//! Cluster: a master killed and failed over), `CLIENT KILL TYPE pubsub`, PostgreSQL stopped
//! and started, an edge drained with SIGTERM, an edge frozen with SIGSTOP, the api-server
//! killed. The load test's history check (its sockets' own records, and every acked seq looked
//! up in PostgreSQL afterwards) must count 0 acked-not-stored, 0 gaps, 0 duplicates and 0 out
//! of order; the test prints the latency through each fault and the time to recover.
//!
//! The short form runs in `make test`; `make chaos` sets `CHAOS_LONG=1`: 15 s between faults
//! and the edge frozen for 20 s.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use common::{
    faults::{fault, Pace, Redis, Target, FAULTS},
    read_json,
};
use testkit::{RedisCluster, RedisServer};

mod common;

async fn chaos(name: &str, mut redis: Redis) {
    let pace = Pace::from_env();
    let (mut pg, db, mut cluster) = common::cluster_on_own_pg(3, redis.url()).await;
    let json = cluster.data_dir().join(format!("{name}.json"));
    // Every fault, the freeze, the time the faults themselves take (restarts, the drain, the
    // stopped database: about 20 s), and some calm before and after.
    let sending = pace.between * (FAULTS.len() as u32 + 2) + pace.frozen + Duration::from_secs(20);
    let args = common::direct_to_edges(
        &cluster,
        &[
            "--scenario",
            "mixed",
            "--resume",
            "--max-reconnects",
            "1000",
            "--users",
            "30",
            "--sockets-per-user",
            "2",
            "--channels",
            "6",
            "--rate",
            "60",
            "--duration",
            &format!("{}s", sending.as_secs()),
            "--grace",
            "40s",
            "--check-db",
            &db,
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let mut child = common::start_sending(&args).await;
    let t0 = Instant::now();
    let mut at = Vec::new();
    let mut target = Target {
        cluster: &mut cluster,
        edges: 3,
        redis: &mut redis,
        pg: &mut pg,
    };
    for (i, what) in FAULTS.iter().enumerate() {
        tokio::time::sleep(pace.between).await;
        at.push(t0.elapsed());
        eprintln!("chaos {name}: {:>5.1} s {what}", t0.elapsed().as_secs_f64());
        fault(i, &mut target, &pace).await;
    }
    let status = tokio::time::timeout(sending + Duration::from_secs(120), child.wait())
        .await
        .unwrap()
        .unwrap();
    let stdout = {
        use tokio::io::AsyncReadExt;
        let mut s = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut s)
            .await
            .unwrap();
        s
    };
    let r = read_json(&json);
    eprintln!("{stdout}\n{}", through_faults(&r, &at));
    assert_eq!(status.code(), Some(0), "{stdout}");
    let h = &r["history"];
    for k in ["acked_not_stored", "gaps", "duplicates", "out_of_order"] {
        assert_eq!(h[k], 0, "{k}: {stdout}");
    }
    let acked = r["sends"]["acked"].as_u64().unwrap();
    assert!(acked > 500, "only {acked} acked: {stdout}");
    assert!(
        r["connections"]["reconnects"].as_u64().unwrap() > 0,
        "{stdout}"
    );
    cluster.stop();
}

/// A table: each fault, when it came, the longest send-to-delivery latency until the next,
/// and how long deliveries/s took to come back to 80 % of the calm before the first fault.
fn through_faults(r: &serde_json::Value, at: &[Duration]) -> String {
    let series: Vec<(u64, u64, u64)> = r["throughput"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let n = |k: &str| s[k].as_u64().unwrap_or(0);
            (n("t"), n("deliveries"), n("max_latency_us"))
        })
        .collect();
    let first = at.first().map_or(0, |d| d.as_secs());
    let mut calm: Vec<u64> = series
        .iter()
        .filter(|s| s.0 > 1 && s.0 <= first)
        .map(|s| s.1)
        .collect();
    calm.sort_unstable();
    let base = calm.get(calm.len() / 2).copied().unwrap_or(0);
    let mut out = format!(
        "calm deliveries/s {base}\n{:<32} {:>6} {:>14} {:>12}\n",
        "fault", "at s", "max latency ms", "recovered s"
    );
    for (i, t) in at.iter().enumerate() {
        let from = t.as_secs();
        let to = at.get(i + 1).map_or(u64::MAX, |d| d.as_secs());
        let window: Vec<_> = series.iter().filter(|s| s.0 > from && s.0 <= to).collect();
        let max = window.iter().map(|s| s.2).max().unwrap_or(0);
        // The first second at or above 80 % of calm after the fault's own second.
        let back = window
            .iter()
            .skip(1)
            .find(|s| s.1 * 5 >= base * 4)
            .map_or("not within".to_owned(), |s| format!("{}", s.0 - from));
        out.push_str(&format!(
            "{:<32} {:>6} {:>14.1} {:>12}\n",
            FAULTS[i],
            from,
            max as f64 / 1000.0,
            back
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_on_a_single_redis_keeps_every_acked_event_once_and_in_order() {
    let redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap()
        .unwrap();
    chaos("single", Redis::Single(redis)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_on_a_redis_cluster_keeps_every_acked_event_once_and_in_order() {
    let redis = tokio::task::spawn_blocking(|| RedisCluster::start(3, 1))
        .await
        .unwrap()
        .unwrap();
    chaos("cluster", Redis::Cluster(redis)).await;
}

//! The soak, run by hand (`make soak`, ignored by `make test`): 2 edges, 2,000 sockets under
//! steady fanout with `--resume --check-db` for `SOAK_MINUTES` (30), the chaos faults one at a
//! time every `SOAK_FAULT_SECS` (240). Each minute it samples the RSS and open file descriptors
//! of every process, Redis's connected clients and PostgreSQL's client connections, then writes
//! `soak.csv` and `soak.svg` to `SOAK_OUT` (default `target/soak`). It passes when the history
//! check counts 0 on all four figures and nothing grows: after the warm-up, the processes
//! together end with at most 40 more file descriptors and 30 % (and 32 MiB) more RSS than they
//! had (sockets move between edges with the faults), and the connection counts stay put.
#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use cluster::Cluster;
use common::{
    faults::{fault, Pace, Redis, Target, FAULTS},
    loadtest, read_json,
};
use testkit::{PgServer, RedisServer};

mod common;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One minute's sample: per process `(rss KiB, open fds)`, then the connection counts.
#[derive(Debug, Default, Clone)]
struct Sample {
    minute: u64,
    procs: BTreeMap<String, (u64, u64)>,
    redis_clients: u64,
    pg_connections: u64,
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Every process of the run by name, with its pid now (edges change pid when restarted).
fn pids(cluster: &Cluster, redis: &RedisServer, pg: &PgServer, lt: u32) -> Vec<(String, u32)> {
    let state = read_json(&cluster.data_dir().join("cluster.json"));
    let mut v: Vec<(String, u32)> = state["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?.to_owned(), p["pid"].as_u64()? as u32)))
        .collect();
    v.extend(redis.pid().map(|p| ("redis".to_owned(), p)));
    v.extend(pg.pid().map(|p| ("postgres".to_owned(), p)));
    v.push(("loadtest".to_owned(), lt));
    v
}

async fn sample(minute: u64, who: &[(String, u32)], redis: &RedisServer, db: &str) -> Sample {
    let procs = who
        .iter()
        .filter_map(|(n, p)| Some((n.clone(), (rss_kib(*p)?, open_fds(*p)?))))
        .collect();
    let redis_clients = redis
        .command(&["INFO", "clients"])
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("connected_clients:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0);
    let pg_connections = match shared::store::migrate::connect(db).await {
        Ok(c) => c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'",
                &[],
            )
            .await
            .map(|r| (r.get::<_, i64>(0) as u64).saturating_sub(1))
            .unwrap_or(0),
        Err(_) => 0,
    };
    Sample {
        minute,
        procs,
        redis_clients,
        pg_connections,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "30 minutes: run by hand with `make soak`"]
async fn soak() {
    let minutes = env_u64("SOAK_MINUTES", 30);
    let fault_every = Duration::from_secs(env_u64("SOAK_FAULT_SECS", 240));
    let out = std::env::var_os("SOAK_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::bin_dir().join("../soak"));
    std::fs::create_dir_all(&out).unwrap();
    let pace = Pace {
        between: fault_every,
        frozen: Duration::from_secs(20),
    };
    let redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap()
        .unwrap();
    let mut redis = Redis::Single(redis);
    let (mut pg, db, mut cluster) = common::cluster_on_own_pg(2, redis.url()).await;
    let json = out.join("soak.json");
    let args = common::direct_to_edges(
        &cluster,
        &[
            "--scenario",
            "fanout",
            "--resume",
            "--max-reconnects",
            "100000",
            "--users",
            "200",
            "--sockets-per-user",
            "10",
            "--channels",
            "10",
            "--rate",
            "20",
            "--duration",
            &format!("{minutes}m"),
            "--grace",
            "60s",
            "--check-db",
            &db,
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let mut child = loadtest(&args)
        .stderr(Stdio::inherit())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lt_pid = child.id().unwrap();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(minutes * 60);
    let mut samples = Vec::new();
    let mut next_sample = t0 + Duration::from_secs(60);
    let mut next_fault = t0 + fault_every;
    // `SOAK_FIRST_FAULT`: start the cycle at another fault (to reproduce one).
    let mut faults = env_u64("SOAK_FIRST_FAULT", 0) as usize;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = Instant::now();
        if now >= next_sample {
            let Redis::Single(r) = &redis else {
                unreachable!()
            };
            let who = pids(&cluster, r, &pg, lt_pid);
            let minute = (now - t0).as_secs() / 60;
            let s = sample(minute, &who, r, &db).await;
            eprintln!("soak: minute {minute}: {s:?}");
            samples.push(s);
            next_sample += Duration::from_secs(60);
        }
        if now >= next_fault && now + Duration::from_secs(90) < end {
            eprintln!("soak: {:?} {}", now - t0, FAULTS[faults % FAULTS.len()]);
            let mut t = Target {
                cluster: &mut cluster,
                edges: 2,
                redis: &mut redis,
                pg: &mut pg,
            };
            fault(faults, &mut t, &pace).await;
            faults += 1;
            next_fault += fault_every;
        }
    }
    let status = tokio::time::timeout(Duration::from_secs(300), child.wait())
        .await
        .unwrap()
        .unwrap();
    let r = read_json(&json);
    write_csv(&out.join("soak.csv"), &samples);
    std::fs::write(out.join("soak.svg"), svg(&samples, minutes)).unwrap();
    eprintln!("soak: wrote {}", out.join("soak.svg").display());
    assert_eq!(status.code(), Some(0), "{r:#}");
    for k in ["acked_not_stored", "gaps", "duplicates", "out_of_order"] {
        assert_eq!(r["history"][k], 0, "{k}: {r:#}");
    }
    assert_flat(&samples);
    cluster.stop();
}

/// After the warm-up (the third sample), nothing may grow. Sockets move between the edges
/// when one is killed or drained, so files and memory are compared over all processes.
fn assert_flat(samples: &[Sample]) {
    let (Some(first), Some(last)) = (samples.get(2), samples.last()) else {
        panic!("too few samples: {}", samples.len());
    };
    let total = |s: &Sample| {
        s.procs
            .values()
            .fold((0, 0), |(r, f), &(rss, fds)| (r + rss, f + fds))
    };
    let ((rss0, fds0), (rss, fds)) = (total(first), total(last));
    assert!(
        fds <= fds0 + 40,
        "open files {fds0} -> {fds}: {first:?} {last:?}"
    );
    assert!(
        rss <= (rss0 * 13 / 10).max(rss0 + 32 * 1024),
        "RSS {rss0} -> {rss} KiB: {first:?} {last:?}"
    );
    assert!(
        last.redis_clients <= first.redis_clients + 2,
        "{first:?} {last:?}"
    );
    assert!(
        last.pg_connections <= first.pg_connections + 5,
        "{first:?} {last:?}"
    );
}

fn write_csv(path: &Path, samples: &[Sample]) {
    let mut s = String::from("minute,process,rss_kib,open_fds\n");
    for x in samples {
        for (n, (rss, fds)) in &x.procs {
            let _ = writeln!(s, "{},{n},{rss},{fds}", x.minute);
        }
        let _ = writeln!(s, "{},redis_clients,{},", x.minute, x.redis_clients);
        let _ = writeln!(s, "{},pg_connections,{},", x.minute, x.pg_connections);
    }
    std::fs::write(path, s).unwrap();
}

/// Four panels over the minutes: RSS (MiB) and open files per process, Redis clients,
/// PostgreSQL connections.
fn svg(samples: &[Sample], minutes: u64) -> String {
    const W: f64 = 460.0;
    const H: f64 = 220.0;
    const COLORS: [&str; 8] = [
        "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
    ];
    let names: Vec<String> = samples
        .iter()
        .flat_map(|s| s.procs.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    type Series = Vec<(String, Vec<(u64, f64)>)>;
    let per_proc = |f: &dyn Fn(&(u64, u64)) -> f64| -> Series {
        names
            .iter()
            .map(|n| {
                let pts = samples
                    .iter()
                    .filter_map(|s| s.procs.get(n).map(|v| (s.minute, f(v))))
                    .collect();
                (n.clone(), pts)
            })
            .collect()
    };
    let panels: [(&str, Series); 4] = [
        ("RSS, MiB", per_proc(&|v| v.0 as f64 / 1024.0)),
        ("open file descriptors", per_proc(&|v| v.1 as f64)),
        (
            "Redis connected clients",
            vec![(
                "redis".into(),
                samples
                    .iter()
                    .map(|s| (s.minute, s.redis_clients as f64))
                    .collect(),
            )],
        ),
        (
            "PostgreSQL client connections",
            vec![(
                "postgres".into(),
                samples
                    .iter()
                    .map(|s| (s.minute, s.pg_connections as f64))
                    .collect(),
            )],
        ),
    ];
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">"#,
        2.0 * W + 160.0,
        2.0 * H + 40.0
    );
    s.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (i, (title, series)) in panels.iter().enumerate() {
        let (ox, oy) = ((i % 2) as f64 * W + 40.0, (i / 2) as f64 * H + 20.0);
        let (pw, ph) = (W - 110.0, H - 50.0);
        let ymax = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|x| x.1))
            .fold(1.0f64, f64::max)
            * 1.15;
        let x = |m: u64| ox + pw * m as f64 / minutes.max(1) as f64;
        let y = |v: f64| oy + ph - ph * v / ymax;
        let _ = write!(
            s,
            r##"<text x="{ox}" y="{}" font-weight="bold">{title}</text><rect x="{ox}" y="{oy}" width="{pw}" height="{ph}" fill="none" stroke="#999"/><text x="{}" y="{}" text-anchor="end">{ymax:.0}</text><text x="{}" y="{}" text-anchor="end">0</text><text x="{}" y="{}" text-anchor="end">{minutes} min</text>"##,
            oy - 5.0,
            ox - 3.0,
            oy + 10.0,
            ox - 3.0,
            oy + ph,
            ox + pw,
            oy + ph + 14.0
        );
        for (k, (name, pts)) in series.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let line: Vec<String> = pts
                .iter()
                .map(|&(m, v)| format!("{:.1},{:.1}", x(m), y(v)))
                .collect();
            let _ = write!(
                s,
                r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
                line.join(" ")
            );
            if series.len() > 1 {
                let _ = write!(
                    s,
                    r#"<text x="{}" y="{}" fill="{color}">{name}</text>"#,
                    ox + pw + 4.0,
                    oy + 12.0 + 12.0 * k as f64
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

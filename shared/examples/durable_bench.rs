//! Durable sends per second against a real PostgreSQL with fsync on: one commit per message
//! versus group commit, side by side in one run, with PostgreSQL's CPU per stored message;
//! then the latency of one single-message send at a time (light load).
//!
//! `cargo run --release -p shared --example durable_bench -- [senders] [seconds] [single sends]`
//!
//! PostgreSQL CPU is `utime + stime` from `/proc/<pid>/stat`, read before and after each
//! measured phase and divided by the messages stored in that phase: of the client backends, and
//! of all of PostgreSQL (the postmaster, every child of it: backends, WAL writer, checkpointer,
//! autovacuum, ..., and the `cutime + cstime` of children it has reaped). `msgs/call` is the
//! mean batch: stored messages per `send_messages` call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::metrics::Metrics;
use shared::protocol::Message;
use shared::store::{GroupCommit, GroupCommitConfig, NewMessage, OnStored, SendOutcome, Store};

/// `(ppid, utime + stime, cutime + cstime)` in clock ticks from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(u32, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields follow the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): ppid is field 4, utime..cstime fields 14..17.
    let num = |i: usize| f.get(i - 3).and_then(|s| s.parse::<u64>().ok());
    Some((num(4)? as u32, num(14)? + num(15)?, num(16)? + num(17)?))
}

/// CPU seconds used so far by PostgreSQL: `(client backends, everything)`, where everything is
/// the postmaster `pm` and all its children (WAL writer, checkpointer, autovacuum, ...), live
/// and reaped. Client backends are the children whose title is not a background process's
/// (`postgres: <user> <db> <host> ...`).
fn pg_cpu_seconds(pm: u32, ticks: f64) -> (f64, f64) {
    let mut all = proc_stat(pm)
        .map(|(_, own, reaped)| own + reaped)
        .unwrap_or(0);
    let mut backends = 0;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some((ppid, own, _)) = proc_stat(pid) {
                if ppid == pm {
                    all += own;
                    let title = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    if title.starts_with(b"postgres: postgres ") {
                        backends += own;
                    }
                }
            }
        }
    }
    (backends as f64 / ticks, all as f64 / ticks)
}

/// `(client backends, all PostgreSQL)` CPU microseconds per message between two readings.
fn per_message(before: (f64, f64), after: (f64, f64), messages: u64) -> (f64, f64) {
    let n = messages.max(1) as f64;
    (
        (after.0 - before.0) * 1e6 / n,
        (after.1 - before.1) * 1e6 / n,
    )
}

/// Clock ticks per second (`getconf CLK_TCK`), 100 if that fails.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The number of `send_messages` calls the committer made: `chat_group_commit_batch_size`'s
/// count in the Prometheus text.
fn batches(metrics: &Metrics) -> f64 {
    metrics
        .render()
        .lines()
        .find(|l| l.starts_with("chat_group_commit_batch_size_count"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let senders: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(256);
    let secs: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let singles: u64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let pg = testkit::PgServer::start_durable()?;
    let url = testkit::create_db(&pg.url("postgres"), "bench").await?;
    let store = Store::connect(&url, 16)?;
    // The postmaster is the parent of any backend.
    let probe = shared::store::migrate::connect(&url).await?;
    let backend: i32 = probe
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    let pm = proc_stat(backend as u32)
        .map(|(ppid, _, _)| ppid)
        .ok_or_else(|| anyhow::anyhow!("cannot read /proc/{backend}/stat"))?;
    drop(probe);
    let ticks = clock_ticks();
    let user = store.create_user("bench", "x").await?;
    let mut channels = Vec::new();
    for i in 0..64 {
        channels.push(store.create_channel(&format!("c{i}"), user.id).await?.id);
    }
    println!("PostgreSQL fsync=on synchronous_commit=on; {senders} concurrent senders over 64 channels, {secs}s per mode");
    println!("PG CPU per stored message: client backends / all PostgreSQL processes (incl. WAL writer, autovacuum)");
    println!(
        "{:<24} {:>14} {:>10} {:>16} {:>14} {:>10}",
        "mode", "acked sends/s", "total", "backends us/msg", "all PG us/msg", "msgs/call"
    );
    for mode in ["one commit per message", "group commit"] {
        let metrics = Metrics::default();
        let hook: OnStored = Arc::new(|_: &Message| {});
        let gc = GroupCommit::spawn_with_hook(
            store.clone(),
            GroupCommitConfig::default(),
            &metrics,
            hook,
        );
        let count = Arc::new(AtomicU64::new(0));
        let attempts = Arc::new(AtomicU64::new(0));
        let cpu = pg_cpu_seconds(pm, ticks);
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for s in 0..senders {
            let (store, gc) = (store.clone(), gc.clone());
            let (count, attempts) = (count.clone(), attempts.clone());
            let ch = channels[s % channels.len()];
            let group = mode == "group commit";
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let m = NewMessage {
                        channel_id: ch,
                        sender_id: user.id,
                        content: format!("message {s}-{n}"),
                        client_msg_id: Some(format!("{s}-{n}-{group}")),
                        reply_to: None,
                        attachments: Vec::new(),
                    };
                    let r = if group {
                        gc.send(m).await
                    } else {
                        store.send(m).await
                    };
                    attempts.fetch_add(1, Ordering::Relaxed);
                    if let Ok(SendOutcome::Stored(_)) = r {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
            }));
        }
        let started = Instant::now();
        for t in tasks {
            t.await?;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let total = count.load(Ordering::Relaxed);
        let (be, all) = per_message(cpu, pg_cpu_seconds(pm, ticks), total);
        let calls = if mode == "group commit" {
            batches(&metrics)
        } else {
            attempts.load(Ordering::Relaxed) as f64
        };
        let per_call = total as f64 / calls.max(1.0);
        let rate = total as f64 / elapsed;
        println!("{mode:<24} {rate:>14.0} {total:>10} {be:>16.1} {all:>14.1} {per_call:>10.1}");
    }
    // Light load: one single-message send at a time (one call, one commit each).
    let cpu = pg_cpu_seconds(pm, ticks);
    let mut times = Vec::with_capacity(singles as usize);
    for n in 0..singles {
        let m = NewMessage {
            channel_id: channels[(n % 64) as usize],
            sender_id: user.id,
            content: format!("single {n}"),
            client_msg_id: Some(format!("single-{n}")),
            reply_to: None,
            attachments: Vec::new(),
        };
        let t = Instant::now();
        store.send(m).await?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (be, all) = per_message(cpu, pg_cpu_seconds(pm, ticks), singles);
    let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
    times.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        times
            .get(((times.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "single sends, sequential: {singles} calls, mean {mean:.3} ms, p50 {:.3} ms, p99 {:.3} ms; PG CPU per call: backends {be:.1} us, all {all:.1} us",
        pct(0.5),
        pct(0.99),
    );
    Ok(())
}

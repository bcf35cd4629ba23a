//! Durable sends per second against a real PostgreSQL with fsync on: one commit per message
//! versus group commit, side by side in one run.
//!
//! `cargo run --release -p shared --example durable_bench -- [senders] [seconds]`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::store::{GroupCommit, GroupCommitConfig, NewMessage, Store};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let senders: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(256);
    let secs: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let pg = testkit::PgServer::start_durable()?;
    let url = testkit::create_db(&pg.url("postgres"), "bench").await?;
    let store = Store::connect(&url, 16)?;
    let user = store.create_user("bench", "x").await?;
    let mut channels = Vec::new();
    for i in 0..64 {
        channels.push(store.create_channel(&format!("c{i}"), user.id).await?.id);
    }
    println!("PostgreSQL fsync=on synchronous_commit=on; {senders} concurrent senders over 64 channels, {secs}s per mode");
    println!("{:<28} {:>14} {:>12}", "mode", "acked sends/s", "total");
    for mode in ["one commit per message", "group commit"] {
        let gc = GroupCommit::spawn(store.clone(), GroupCommitConfig::default());
        let count = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for s in 0..senders {
            let (store, gc, count) = (store.clone(), gc.clone(), count.clone());
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
                    };
                    let r = if group {
                        gc.send(m).await
                    } else {
                        store.send(m).await
                    };
                    if r.is_ok() {
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
        let total = count.load(Ordering::Relaxed);
        let rate = total as f64 / started.elapsed().as_secs_f64();
        println!("{mode:<28} {rate:>14.0} {total:>12}");
    }
    Ok(())
}

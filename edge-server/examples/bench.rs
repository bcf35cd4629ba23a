//! Throughput of one edge on this machine: sends acked per second and deliveries per second.
//!
//! `cargo run -p edge-server --release --example bench -- [senders] [receivers] [seconds]`
//! Starts PostgreSQL and Redis through testkit (or uses `DATABASE_URL` / `REDIS_URL`), one
//! edge in-process, `senders` sockets sending back to back (each waits for its ack) and
//! `receivers` more sockets, all in one channel, and counts every frame that comes back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use shared::auth::JwtKeys;
use shared::protocol::ServerFrame;
use shared::store::Store;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let senders = args.first().copied().unwrap_or(50);
    let receivers = args.get(1).copied().unwrap_or(50);
    let secs = args.get(2).copied().unwrap_or(10) as u64;

    let db = testkit::fresh_db().await;
    let store = Store::connect(&db.url, 4).unwrap();
    let keys = JwtKeys::new(testkit::JWT_SECRET.as_bytes(), Duration::from_secs(3600)).unwrap();
    let mut users = Vec::new();
    for i in 0..senders + receivers {
        users.push(store.create_user(&format!("u{i}"), "x").await.unwrap());
    }
    let ch = store.create_channel("bench", users[0].id).await.unwrap();
    for u in &users[1..] {
        store.join(ch.id, u.id).await.unwrap();
    }

    let mut config =
        edge_server::Config::new(&db.url, &testkit::redis_url(), testkit::JWT_SECRET).unwrap();
    config.limits.send_rate_per_sec = 1e9;
    config.limits.send_burst = 1e9;
    config.db_pool_size = 16;
    config.send_workers = shared::limits::env_or("SEND_WORKERS", config.send_workers).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let edge = tokio::spawn(edge_server::run(config, listener, stop.clone()));

    let acks = Arc::new(AtomicU64::new(0));
    let deliveries = Arc::new(AtomicU64::new(0));
    let done = CancellationToken::new();
    let mut tasks = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let token = keys.issue(u.id, &u.username).unwrap().0;
        let url = format!("ws://{addr}/ws?token={token}");
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
            .await
            .unwrap();
        let _ready = ws.next().await;
        let (acks, deliveries, done) = (acks.clone(), deliveries.clone(), done.clone());
        let sending = i < senders;
        tasks.push(tokio::spawn(async move {
            let (mut tx, mut rx) = ws.split();
            let mut n = 0u64;
            let send = |n: u64| {
                WsMessage::text(
                    serde_json::json!({"type":"send","channel_id":ch.id,"content":"benchmark message","client_msg_id":format!("s{i}-{n}")})
                        .to_string(),
                )
            };
            if sending {
                tx.send(send(n)).await.unwrap();
            }
            loop {
                let m = tokio::select! {
                    _ = done.cancelled() => return,
                    m = rx.next() => m,
                };
                let Some(Ok(WsMessage::Text(t))) = m else { return };
                match serde_json::from_str::<ServerFrame>(&t) {
                    Ok(ServerFrame::Message { .. }) => {
                        deliveries.fetch_add(1, Relaxed);
                    }
                    Ok(ServerFrame::Ack { .. }) => {
                        acks.fetch_add(1, Relaxed);
                        n += 1;
                        if tx.send(send(n)).await.is_err() {
                            return;
                        }
                    }
                    Ok(ServerFrame::Error { message, .. }) => panic!("error: {message}"),
                    _ => {}
                }
            }
        }));
    }
    // Warm up, then measure.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (a0, d0, t0) = (acks.load(Relaxed), deliveries.load(Relaxed), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (a1, d1, dt) = (acks.load(Relaxed), deliveries.load(Relaxed), t0.elapsed());
    done.cancel();
    for t in tasks {
        let _ = t.await;
    }
    stop.cancel();
    let _ = edge.await;
    let s = dt.as_secs_f64();
    println!(
        "senders={senders} receivers={receivers} seconds={s:.1} sends_acked_per_sec={:.0} deliveries_per_sec={:.0}",
        (a1 - a0) as f64 / s,
        (d1 - d0) as f64 / s
    );
}

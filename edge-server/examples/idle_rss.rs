//! Memory per idle socket of a real `edge-server` process.
//!
//! `cargo build -p edge-server --release && cargo run -p edge-server --release --example idle_rss -- [sockets]`
//! Starts the release binary on testkit's PostgreSQL and Redis, opens `sockets` idle sockets
//! (one user each, each in one channel), and prints the growth of the edge's RSS per socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use shared::auth::JwtKeys;
use shared::store::Store;

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().unwrap())
        .unwrap_or(2000);
    let db = testkit::fresh_db().await;
    let store = Store::connect(&db.url, 4).unwrap();
    let keys = JwtKeys::new(testkit::JWT_SECRET.as_bytes(), Duration::from_secs(3600)).unwrap();
    let first = store.create_user("u0", "x").await.unwrap();
    let ch = store.create_channel("idle", first.id).await.unwrap();
    let mut users = vec![first];
    for i in 1..n {
        let u = store.create_user(&format!("u{i}"), "x").await.unwrap();
        store.join(ch.id, u.id).await.unwrap();
        users.push(u);
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("edge-server");
    let port = testkit::free_port();
    let mut child = Command::new(bin)
        .env("LISTEN", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", &db.url)
        .env("REDIS_URL", testkit::redis_url())
        .env("JWT_SECRET", testkit::JWT_SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("build the release binary first: cargo build -p edge-server --release");
    let addr = format!("127.0.0.1:{port}");
    while tokio::net::TcpStream::connect(&addr).await.is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Warm up allocator and pools with a few sockets, then measure.
    let mut socks = Vec::new();
    let open = |u: &shared::protocol::User| {
        let token = keys.issue(u.id, &u.username).unwrap().0;
        let url = format!("ws://{addr}/ws?token={token}");
        async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
            let _ready = ws.next().await;
            ws
        }
    };
    for u in &users[..10] {
        socks.push(open(u).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(child.id());
    for u in &users[10..] {
        socks.push(open(u).await);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(child.id());
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / (n - 10) as f64;
    println!(
        "sockets={} rss_before_kib={before} rss_after_kib={after} bytes_per_idle_socket={per:.0}",
        n - 10
    );
    drop(socks);
    let _ = child.kill();
    let _ = child.wait();
}

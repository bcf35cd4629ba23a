//! The real `edge-server` binary: SIGTERM drains with 1012 and exits within 10 s.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// `target/debug/edge-server`, next to this test's `deps/` directory; built when missing.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let bin = dir.join("edge-server");
    if !bin.exists() {
        let ok = Command::new(env!("CARGO"))
            .args(["build", "-p", "edge-server", "--bin", "edge-server"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "cargo build -p edge-server");
    }
    bin
}

#[tokio::test]
async fn drain_on_sigterm_gives_1012_and_exits_within_10s() {
    let env = Env::new().await;
    let a = env.user("alice").await;
    let port = testkit::free_port();
    let mut child = Command::new(binary())
        .env("LISTEN", format!("127.0.0.1:{port}"))
        .env("EDGE_ID", "edge-sigterm")
        .env("DATABASE_URL", &env.db_url)
        .env("REDIS_URL", &env.redis_url)
        .env("JWT_SECRET", testkit::JWT_SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "edge-server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut c = Client::connect(addr, &env.token(&a)).await;
    let sent = Instant::now();
    // SAFETY-free: libc::kill on our own child's pid.
    let rc = unsafe_free_kill(child.id());
    assert_eq!(rc, 0);
    assert_eq!(c.closed().await, Some(1012));
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "edge did not exit within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}

/// Sends SIGTERM through the `kill` command (no unsafe code in tests).
fn unsafe_free_kill(pid: u32) -> i32 {
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .map(|s| s.code().unwrap_or(-1))
        .unwrap_or(-1)
}

//! The real `edge-server` binary: SIGTERM drains with 1012 and exits within 10 s.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// `target/<profile>/edge-server`, next to this test's `deps/` directory, (re)built first so
/// the test never runs a stale binary.
fn binary() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    BUILT.call_once(|| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "edge-server", "--bin", "edge-server"]);
        if dir.ends_with("release") {
            cmd.arg("--release");
        }
        assert!(
            cmd.status().unwrap().success(),
            "cargo build -p edge-server"
        );
    });
    dir.join("edge-server")
}

#[tokio::test]
async fn drain_on_sigterm_gives_1012_and_exits_within_10s() {
    let env = Env::new().await;
    let a = env.user("alice").await;
    let (mut child, addr) = spawn_edge(&env, "edge-sigterm");
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

/// Starts the built binary as an edge of `env`.
pub fn spawn_edge(env: &Env, id: &str) -> (std::process::Child, std::net::SocketAddr) {
    let port = testkit::free_port();
    let child = Command::new(binary())
        .env("LISTEN", format!("127.0.0.1:{port}"))
        .env("EDGE_ID", id)
        .env("DATABASE_URL", &env.db_url)
        .env("REDIS_URL", &env.redis_url)
        .env("JWT_SECRET", testkit::JWT_SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    (child, format!("127.0.0.1:{port}").parse().unwrap())
}

#[tokio::test]
async fn presence_is_cluster_wide_a_dead_edges_users_go_offline_within_60s() {
    // Built first: the build blocks this test's runtime, and an edge of this runtime waiting
    // that long for pongs would close bob's socket (1008).
    binary();
    // A Redis of its own: presence keys are cluster-wide, and on the shared Redis an edge of
    // another test (another database) may win the sweep of the dead edge and announce the
    // user offline to that test's channels instead of this one's.
    let redis = testkit::RedisServer::start().unwrap();
    let env = Env::with(testkit::fresh_db().await.url, redis.url()).await;
    let (a, b) = (env.user("alice").await, env.user("bob").await);
    env.channel("general", &[&a, &b]).await;
    let watcher = env.edge().await;
    let mut cb = env.connect(&watcher, &b).await;
    let id = format!("edge-doomed-{}", std::process::id());
    let (mut child, addr) = spawn_edge(&env, &id);
    let deadline = Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "edge-server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ca = Client::connect(addr, &env.token(&a)).await;
    let online = shared::protocol::ServerFrame::Presence {
        user_id: a.id,
        status: shared::protocol::PresenceStatus::Online,
    };
    cb.until(|f| (f == &online).then_some(())).await;
    // SIGKILL: no drain, no release; only the lease expiry tells the others.
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    let offline = shared::protocol::ServerFrame::Presence {
        user_id: a.id,
        status: shared::protocol::PresenceStatus::Offline,
    };
    loop {
        // `frame` waits at most 10 s; bob's socket gets pongs meanwhile.
        cb.send_json(serde_json::json!({"type": "ping"})).await;
        if let Got::Frame(f) = cb.next().await {
            if f == offline {
                break;
            }
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "alice still online after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

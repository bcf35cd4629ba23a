//! `loadtest --protocol socketio` against the real peer: one Node process of
//! bench/peers/socketio (after `npm ci` there when its `node_modules` is missing) on the
//! testkit's PostgreSQL and Redis; a short fanout delivers every acked message to every
//! socket, once and in order. Skipped, with a message, only when `node` is not installed.
#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/peers/socketio")
}

fn have_node() -> bool {
    Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `npm ci` unless a complete install is there (npm writes `.package-lock.json` last).
fn npm_ci(dir: &Path) {
    if dir.join("node_modules/.package-lock.json").exists() {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .expect("run npm (installed with node)");
    assert!(
        out.status.success(),
        "npm ci in {} failed:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The peer process; stopped on drop (and killed by the kernel if the test process dies).
struct Peer {
    child: Child,
    log: PathBuf,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = procs::signal(&self.child, libc::SIGTERM);
        if !procs::wait_for_exit(&mut self.child, Duration::from_secs(6)).unwrap_or(false) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Peer {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Creates the peer's database next to the testkit's and starts one server process.
async fn start_peer(dir: &Path, work: &Path) -> (Peer, u16) {
    let test_db = testkit::fresh_db().await.url;
    let (server, _) = test_db.rsplit_once('/').unwrap();
    let db_url = format!("{server}/peer_{}", std::process::id());
    let init = Command::new("node")
        .arg("init.js")
        .env("DATABASE_URL", &db_url)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "init.js failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let port = testkit::free_port();
    let log = work.join("peer.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new("node");
    // One PostgreSQL connection: the peer emits each message when it learns of its commit, so
    // two overlapping transactions of one channel may be emitted out of seq order on a busy
    // machine (BENCHMARKS.md, "Peer"). Serialized, they cannot; this test checks the loadtest's
    // Socket.IO path, not that property of the peer.
    cmd.arg("server.js")
        .env("PORT", port.to_string())
        .env("PG_POOL_MAX", "1")
        .env("DATABASE_URL", &db_url)
        .env("REDIS_URL", testkit::redis_url())
        .current_dir(dir)
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    let peer = Peer {
        child: procs::spawn(cmd, procs::Group::Parent).unwrap(),
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !peer.log().contains("listening on") {
        assert!(
            Instant::now() < deadline,
            "the peer did not start within 30 s:\n{}",
            peer.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (peer, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_against_the_socketio_peer_delivers_everything() {
    if !have_node() {
        eprintln!("SKIPPED: `node` is not installed, so the Socket.IO peer cannot run");
        return;
    }
    let dir = peer_dir();
    npm_ci(&dir);
    let work = std::env::temp_dir().join(format!("loadtest-sio-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let (peer, port) = start_peer(&dir, &work).await;
    let json = work.join("fanout.json");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args([
            "--protocol",
            "socketio",
            "--ws-targets",
            &format!("ws://127.0.0.1:{port}"),
            "--scenario",
            "fanout",
            "--users",
            "20",
            "--sockets-per-user",
            "5",
            "--channels",
            "1",
            "--rate",
            "20",
            "--duration",
            "5s",
            "--grace",
            "10s",
            "--no-progress",
            "--json",
            json.to_str().unwrap(),
        ])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!(
        "stdout:\n{stdout}\nstderr:\n{stderr}\npeer:\n{}",
        peer.log()
    );
    assert_eq!(out.status.code(), Some(0), "{context}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["passed"], true, "{context}");
    assert_eq!(r["protocol"], "socketio");
    assert_eq!(r["connections"]["connected"], 100, "{context}");
    let acked = r["sends"]["acked"].as_u64().unwrap();
    assert!(acked >= 80, "only {acked} sends acked: {context}");
    assert_eq!(r["sends"]["errors"], 0, "{context}");
    // One channel of 100 sockets: every acked message reaches all of them, the sender too.
    let d = &r["deliveries"];
    assert_eq!(d["expected"].as_u64().unwrap(), acked * 100, "{context}");
    assert_eq!(d["received"], d["expected"], "{context}");
    assert_eq!(
        (&d["lost"], &d["duplicated"], &d["out_of_order"]),
        (&0.into(), &0.into(), &0.into()),
        "{context}"
    );
    drop(peer);
    let _ = std::fs::remove_dir_all(&work);
}

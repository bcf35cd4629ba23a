//! The JavaScript client (`clients/js`) against a real cluster: two edges behind HAProxy,
//! started here, and `node --test clients/js/test/` run with the cluster's URL (`CHAT_URL`),
//! its JWT secret (`CHAT_JWT_SECRET`, to sign short-lived tokens) and a control URL
//! (`CHAT_CONTROL_URL`) through which the JavaScript tests freeze, kill and restart edges.
//! Skipped, saying so, only where `node` is not installed.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

use common::{TestCluster, WAIT};

/// Bound on the whole JavaScript suite.
const NODE_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_client_passes_its_tests_against_a_real_cluster() {
    let Some(version) = node_version() else {
        eprintln!(
            "skipped: `node` is not installed (the clients/js tests need Node 20.10 or later)"
        );
        return;
    };
    assert!(
        at_least(&version, (20, 10)),
        "node {version} is too old: the clients/js tests need 20.10 or later (WebSocket)"
    );
    let t = common::start(2).await;
    let chat_url = t.cluster.http_url();
    let secret = t.cluster.jwt_secret().to_owned();
    let cluster = Arc::new(Mutex::new(t));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control_url = format!("http://{}", listener.local_addr().unwrap());
    let control = tokio::spawn(serve_control(listener, cluster.clone()));

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../clients/js");
    let started = Instant::now();
    let run = tokio::process::Command::new("node")
        .args([
            "--experimental-websocket",
            "--test",
            "--test-concurrency=1",
            "--test-reporter=spec",
            "test/",
        ])
        .current_dir(&dir)
        .env("CHAT_URL", &chat_url)
        .env("CHAT_CONTROL_URL", &control_url)
        .env("CHAT_JWT_SECRET", &secret)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(NODE_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| panic!("node --test did not finish within {NODE_TIMEOUT:?}"))
        .unwrap();
    let took = started.elapsed();
    control.abort();
    let _ = control.await;
    drop(cluster);

    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("node {version}, clients/js tests in {took:.1?}:\n{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "node --test failed ({}) after {took:.1?}:\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("skipped 0"),
        "some clients/js tests were skipped:\n{stdout}"
    );
}

/// `node --version`, or None when there is no `node`.
fn node_version() -> Option<String> {
    let out = std::process::Command::new("node")
        .arg("--version")
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether `v20.11.1` is at least `(major, minor)`.
fn at_least(version: &str, want: (u32, u32)) -> bool {
    let mut parts = version.trim_start_matches('v').split('.');
    let mut next = || {
        parts
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0)
    };
    (next(), next()) >= want
}

/// A minimal HTTP server for the JavaScript tests: `POST /edges/edge-N/{stop,kill,term,start}`.
async fn serve_control(listener: TcpListener, cluster: Arc<Mutex<TestCluster>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &cluster).await {
                eprintln!("control: {e}");
            }
        });
    }
}

/// Reads one request head, runs it, answers 200 with what happened or 500 with why not.
async fn answer(mut stream: TcpStream, cluster: &Mutex<TestCluster>) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or_default();
    let (status, body) = match operate(path, cluster).await {
        Ok(done) => ("200 OK", done),
        Err(why) => ("500 Internal Server Error", why),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

/// `/edges/edge-N/stop` freezes edge N (SIGSTOP), `/kill` kills it (SIGKILL) and `/term`
/// drains it (SIGTERM), each waiting for its exit; `/start` starts it again and waits until
/// HAProxy has it UP.
async fn operate(path: &str, cluster: &Mutex<TestCluster>) -> Result<String, String> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let ["edges", name, action] = parts[..] else {
        return Err(format!("no such control path {path}"));
    };
    let i = name
        .strip_prefix("edge-")
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|n| n.checked_sub(1))
        .ok_or_else(|| format!("no such edge {name}"))?;
    let mut t = cluster.lock().await;
    match action {
        "stop" => {
            let pid = t
                .cluster
                .edge_pid(i)
                .ok_or_else(|| format!("{name} is not running"))?;
            let status = std::process::Command::new("kill")
                .args(["-STOP", &pid.to_string()])
                .status()
                .map_err(|e| e.to_string())?;
            status
                .success()
                .then(|| format!("{name} stopped"))
                .ok_or_else(|| format!("kill -STOP {pid}: {status}"))
        }
        "kill" | "term" => {
            let signal = match action {
                "kill" => libc::SIGKILL,
                _ => libc::SIGTERM,
            };
            let exited = t
                .cluster
                .kill_edge(i, signal)
                .await
                .map_err(|e| e.to_string())
                .map(|s| format!("{name} exited: {s}"))?;
            // Until HAProxy has noticed, its status is still the old UP: a `start` right away
            // would take that for the new process's, and new sockets would not reach it.
            wait_not_up(&t, name).await?;
            Ok(exited)
        }
        "start" => {
            t.cluster.start_edge(i).await.map_err(|e| e.to_string())?;
            t.cluster
                .wait_haproxy_status("edges", name, "UP", WAIT)
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!("{name} up"))
        }
        _ => Err(format!("no such action {action}")),
    }
}

/// Waits until HAProxy no longer has edge `name` UP.
async fn wait_not_up(t: &TestCluster, name: &str) -> Result<(), String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = t
            .cluster
            .haproxy_status("edges", name)
            .map_err(|e| e.to_string())?;
        if !status.as_deref().is_some_and(|s| s.starts_with("UP")) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "HAProxy still has {name} {status:?} after {WAIT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

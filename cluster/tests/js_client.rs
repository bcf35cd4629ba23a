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

use tokio::sync::Mutex;

/// Bound on the whole JavaScript suite.
const NODE_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_client_passes_its_tests_against_a_real_cluster() {
    let Some(version) = common::control::node_version() else {
        eprintln!(
            "skipped: `node` is not installed (the clients/js tests need Node 20.10 or later)"
        );
        return;
    };
    assert!(
        common::control::at_least(&version, (20, 10)),
        "node {version} is too old: the clients/js tests need 20.10 or later (WebSocket)"
    );
    let t = common::start(2).await;
    let chat_url = t.cluster.http_url();
    let secret = t.cluster.jwt_secret().to_owned();
    let cluster = Arc::new(Mutex::new(t));
    let (control_url, control) = common::control::start(cluster.clone()).await;

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

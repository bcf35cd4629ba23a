//! The JavaScript client (`clients/js`) against a real cluster: two edges behind HAProxy,
//! started here, and `node --test clients/js/test/` run with the cluster's URL (`CHAT_URL`),
//! its JWT secret (`CHAT_JWT_SECRET`, to sign short-lived tokens) and a control URL
//! (`CHAT_CONTROL_URL`) through which the JavaScript tests freeze, kill and restart edges.
//! Skipped, saying so, only where `node` is not installed.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

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
    let secret = t.cluster.jwt_secret().to_owned();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../clients/js");
    let args = [
        "--experimental-websocket",
        "--test",
        "--test-concurrency=1",
        "--test-reporter=spec",
        "test/",
    ];
    let env = [("CHAT_JWT_SECRET", secret.as_str())];
    let run = common::control::run_node(t, &dir, &args, &env, NODE_TIMEOUT).await;
    run.print_and_check(&format!("node {version}, the clients/js tests"));
    assert!(
        run.stdout.contains("skipped 0"),
        "some clients/js tests were skipped:\n{}",
        run.stdout
    );
}

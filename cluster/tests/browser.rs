//! The web client in a real browser: a cluster (two edges behind HAProxy) started here, and
//! `clients/js/test-browser/chat.mjs` run against it: Debian's `chromium` driven by
//! `playwright-core` (both installed by `scripts/install-deps.sh`), two users in two browser
//! contexts on two edges, chat, edit, react, thread, DM and mention, then one user's edge
//! killed (-9) under them. Screenshots of each step go to `<target>/browser-test/`.
//! Skipped, saying so, only where `node` is not installed.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bound on the browser script (it takes well under a minute).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_chat_in_chromium_across_an_edge_kill() {
    let Some(version) = common::control::node_version() else {
        eprintln!("skipped: `node` is not installed (the browser test needs Node 18 or later)");
        return;
    };
    assert!(
        common::control::at_least(&version, (18, 0)),
        "node {version} is too old: playwright-core needs 18 or later"
    );
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../clients/js/test-browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "no {chromium}: run scripts/install-deps.sh (installs Debian's chromium), or set CHROMIUM"
    );
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "no playwright-core in {}: run scripts/install-deps.sh (npm ci there)",
        dir.display()
    );
    let out = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|d| d.parent())
        .and_then(|d| d.parent())
        .unwrap()
        .join("browser-test");
    let _ = std::fs::remove_dir_all(&out);

    let t = common::start(2).await;
    let env = [
        ("CHROMIUM", chromium.as_str()),
        ("OUT_DIR", out.to_str().unwrap()),
    ];
    let run = common::control::run_node(t, &dir, &["chat.mjs"], &env, SCRIPT_TIMEOUT).await;
    run.print_and_check(&format!(
        "node {version}, the browser test (screenshots in {})",
        out.display()
    ));
    assert!(
        run.stdout.contains("passed:"),
        "the script did not finish:\n{}",
        run.stdout
    );
}

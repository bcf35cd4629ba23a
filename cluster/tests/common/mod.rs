//! End-to-end harness: a launcher-started cluster on free ports (sharing testkit's PostgreSQL
//! and Redis), REST helpers, and chat members (`chat-client`) that reconnect through HAProxy
//! and resume.
#![allow(clippy::unwrap_used, dead_code)]

pub mod control;
pub mod member;

use std::path::PathBuf;
use std::time::Duration;

use cluster::{Cluster, Options};
use serde_json::{json, Value};

pub use member::Member;

/// Generous bound for anything that should happen "soon".
pub const WAIT: Duration = Duration::from_secs(20);

/// A started cluster and its data dir, removed after the stop.
pub struct TestCluster {
    pub cluster: Cluster,
    dir: PathBuf,
    http: reqwest::Client,
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.cluster.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where cargo put the workspace binaries: `target/debug` above this test's `deps/`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf()
}

/// Clusters of parallel tests start one at a time: on two cores, five clusters booting at
/// once (15 edges in debug builds) can starve a process past its own startup timeouts.
static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts a cluster with `edges` edges through the launcher library.
pub async fn start(edges: usize) -> TestCluster {
    let db = testkit::fresh_db().await;
    let dir = std::env::temp_dir().join(format!("e2e-{}", uuid::Uuid::new_v4().simple()));
    let mut o = Options::on_free_ports(&dir, bin_dir());
    o.edges = edges;
    o.database_url = Some(db.url);
    o.redis_url = Some(testkit::redis_url());
    o.jwt_secret = Some(testkit::JWT_SECRET.into());
    o.env = [
        ("DB_POOL_SIZE", "4"),
        ("LOGIN_ATTEMPTS", "100000"),
        ("ARGON2_MEMORY_KIB", "8192"),
        ("RUST_LOG", "warn"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let starting = STARTING.lock().await;
    let cluster = Cluster::start(o)
        .await
        .unwrap_or_else(|e| panic!("start cluster: {e}"));
    drop(starting);
    TestCluster {
        cluster,
        dir,
        http: reqwest::Client::new(),
    }
}

impl TestCluster {
    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.cluster.http_url()))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Registers and logs in `name` through HAProxy; returns `(user id, token)`.
    pub async fn user(&self, name: &str) -> (i64, String) {
        let body = json!({"username": name, "password": "correct-horse-9"});
        let (status, user) = self.post("/api/register", None, body.clone()).await;
        assert_eq!(status, 201, "register {name}: {user}");
        let (status, login) = self.post("/api/login", None, body).await;
        assert_eq!(status, 200, "login {name}: {login}");
        (
            user["id"].as_i64().unwrap(),
            login["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates a channel as `token`'s user; returns its id.
    pub async fn channel(&self, token: &str, name: &str) -> i64 {
        let (status, ch) = self
            .post("/api/channels", Some(token), json!({ "name": name }))
            .await;
        assert_eq!(status, 201, "create channel: {ch}");
        ch["id"].as_i64().unwrap()
    }

    pub async fn join(&self, token: &str, channel: i64) {
        let (status, body) = self
            .post(
                &format!("/api/channels/{channel}/join"),
                Some(token),
                json!({}),
            )
            .await;
        assert!(status == 200 || status == 204, "join: {status} {body}");
    }

    /// `n` users, all members of one new channel, each connected through HAProxy in turn.
    pub async fn room(&self, prefix: &str, n: usize) -> (i64, Vec<Member>) {
        let mut tokens = Vec::new();
        for i in 0..n {
            tokens.push(self.user(&format!("{prefix}{i}")).await.1);
        }
        let channel = self.channel(&tokens[0], &format!("{prefix}-room")).await;
        for t in &tokens[1..] {
            self.join(t, channel).await;
        }
        let mut members = Vec::new();
        for (i, t) in tokens.into_iter().enumerate() {
            members.push(Member::connect(&self.cluster.ws_url(), format!("{prefix}{i}"), t).await);
        }
        (channel, members)
    }
}

/// Waits until every member holds every acked message of `channel` (seqs 1..=last acked).
pub async fn assert_all_delivered(members: &[Member], channel: i64) {
    let acked: std::collections::BTreeSet<i64> =
        members.iter().flat_map(|m| m.acked_seqs(channel)).collect();
    let last = acked.iter().next_back().copied().unwrap_or(0);
    assert!(last > 0, "nothing was acked");
    assert_eq!(
        acked.len() as i64,
        last,
        "acked seqs must be exactly 1..={last} (one stored message per client_msg_id)"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let behind: Vec<String> = members
            .iter()
            .filter(|m| !m.has_all(channel, last))
            .map(|m| format!("{} ({:?})", m.name, m.missing(channel, last)))
            .collect();
        if behind.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "acked messages missing after {WAIT:?}: {behind:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let replayed: usize = members.iter().map(Member::replayed).sum();
    if replayed > 0 {
        eprintln!("note: {replayed} messages came again in a resume replay (allowed)");
    }
    for m in members {
        let v = m.violations();
        assert!(v.is_empty(), "{}: {v:?}", m.name);
    }
}

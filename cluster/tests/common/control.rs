//! A control server for test scripts run outside Rust (the JavaScript client's tests, the
//! browser test): plain HTTP `POST`s that freeze, kill, drain and restart edges of the
//! cluster under test, and take them in and out of HAProxy's rotation.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

use super::{TestCluster, WAIT};

/// Serves the control API on a free port; returns its URL (`http://127.0.0.1:PORT`) and the
/// task, to abort when the script is done.
pub async fn start(cluster: Arc<Mutex<TestCluster>>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (url, tokio::spawn(serve_control(listener, cluster)))
}

/// What a script printed, and how long it ran.
pub struct NodeRun {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl NodeRun {
    /// Prints what the script printed, headed by `what`; panics when it failed.
    pub fn print_and_check(&self, what: &str) {
        let (stdout, stderr, took) = (&self.stdout, &self.stderr, self.took);
        println!("{what} in {took:.1?}:\n{stdout}\n{stderr}");
        assert!(
            self.status.success(),
            "{what} failed ({}) after {took:.1?}:\n{stdout}\n{stderr}",
            self.status
        );
    }
}

/// Runs `node args` in `dir` against `cluster`, with its URL (`CHAT_URL`), the URL of a
/// control server started for the run (`CHAT_CONTROL_URL`) and `envs`; panics when it takes
/// longer than `timeout`. The cluster is stopped afterwards.
pub async fn run_node(
    cluster: TestCluster,
    dir: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    timeout: Duration,
) -> NodeRun {
    let chat_url = cluster.cluster.http_url();
    let cluster = Arc::new(Mutex::new(cluster));
    let (control_url, control) = start(cluster.clone()).await;
    let started = Instant::now();
    let run = tokio::process::Command::new("node")
        .args(args)
        .current_dir(dir)
        .env("CHAT_URL", &chat_url)
        .env("CHAT_CONTROL_URL", &control_url)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(timeout, run)
        .await
        .unwrap_or_else(|_| panic!("node {args:?} did not finish within {timeout:?}"))
        .unwrap();
    let took = started.elapsed();
    control.abort();
    let _ = control.await;
    drop(cluster);
    NodeRun {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took,
    }
}

/// `node --version`, or None when there is no `node`.
pub fn node_version() -> Option<String> {
    let out = std::process::Command::new("node")
        .arg("--version")
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether `v20.11.1` is at least `(major, minor)`.
pub fn at_least(version: &str, want: (u32, u32)) -> bool {
    let mut parts = version.trim_start_matches('v').split('.');
    let mut next = || {
        parts
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0)
    };
    (next(), next()) >= want
}

/// A minimal HTTP server: `POST /edges/edge-N/{stop,kill,term,start}` and
/// `POST /haproxy/edge-N/{drain,ready}`.
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
    let (kind, name, action) = match parts[..] {
        [kind @ ("edges" | "haproxy"), name, action] => (kind, name, action),
        _ => return Err(format!("no such control path {path}")),
    };
    let i = name
        .strip_prefix("edge-")
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|n| n.checked_sub(1))
        .ok_or_else(|| format!("no such edge {name}"))?;
    let mut t = cluster.lock().await;
    if kind == "haproxy" {
        return rotation(&t, name, action).await;
    }
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

/// `drain`: HAProxy sends edge `name` no new sockets (those open stay); `ready`: it does
/// again. Answers once HAProxy reports the new state.
async fn rotation(t: &TestCluster, name: &str, action: &str) -> Result<String, String> {
    let want = match action {
        "drain" => "DRAIN",
        "ready" => "UP",
        _ => return Err(format!("no such action {action}")),
    };
    t.cluster
        .haproxy_command(&format!("set server edges/{name} state {action}"))
        .map_err(|e| e.to_string())?;
    t.cluster
        .wait_haproxy_status("edges", name, want, WAIT)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!("{name} {want}"))
}

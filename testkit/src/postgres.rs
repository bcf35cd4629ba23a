//! A real PostgreSQL server (initdb into a temp dir, free port), which tests may stop and
//! start again, plus the template-database helpers.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use procs::{pg_bin, User};
use shared::store::migrate::connect;

/// A PostgreSQL server owned by the test; stopped on drop, its directory removed.
#[derive(Debug)]
pub struct PgServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    owner: Option<User>,
    /// fsync and synchronous commit on, as in production.
    durable: bool,
}

impl PgServer {
    /// Runs initdb into a fresh temp dir and starts the server on a free port, with fsync off
    /// (tests lose nothing they need when the machine crashes).
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(false)
    }

    /// Like [`PgServer::start`] with fsync and synchronous commit on, for benchmarks of
    /// durable writes.
    pub fn start_durable() -> anyhow::Result<Self> {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> anyhow::Result<Self> {
        let dir = crate::scratch::make("chat-pg")?;
        let owner = procs::drop_to("postgres");
        if let Some(user) = owner {
            user.chown(&dir)?;
        }
        let out = procs::initdb(&dir.join("data"), owner)
            .arg("--no-sync")
            .output()
            .context("run initdb (is PostgreSQL installed?)")?;
        if !out.status.success() {
            anyhow::bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let mut s = PgServer {
            port: crate::free_port(),
            dir,
            child: None,
            owner,
            durable,
        };
        s.start_again()?;
        Ok(s)
    }

    /// The postmaster's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Starts the server (again) on the same port and data and waits until it accepts.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        let mut cmd = Command::new(pg_bin("postgres"));
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(&self.dir)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "max_connections=400", "-c", "shared_buffers=64MB"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if !self.durable {
            cmd.args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
                .args(["-c", "full_page_writes=off"]);
        }
        if let Some(user) = self.owner {
            user.apply(&mut cmd);
        }
        self.child = Some(procs::spawn(cmd, procs::Group::Parent).context("spawn postgres")?);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ok = Command::new(pg_bin("pg_isready"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-q",
                ])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        anyhow::bail!("postgres on port {} did not become ready", self.port)
    }

    /// Stops the server (fast shutdown) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = procs::signal(&c, libc::SIGINT);
            if procs::wait_for_exit(&mut c, Duration::from_secs(10)).unwrap_or(false) {
                return;
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl PgServer {
    /// Kills the server at once (no shutdown checkpoint) and removes its directory: for
    /// process exit, where nothing it holds is needed again.
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Replaces the database name of a `postgres://` URL.
pub fn with_dbname(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // postgres://user@host:port/db -> keep up to the third '/'.
    let prefix = match base.match_indices('/').nth(2) {
        Some((i, _)) => &base[..i],
        None => base,
    };
    match query {
        Some(q) => format!("{prefix}/{db}?{q}"),
        None => format!("{prefix}/{db}"),
    }
}

/// Creates `template` and applies the migrations to it.
pub async fn make_template(admin_url: &str, template: &str) -> anyhow::Result<()> {
    let admin = connect(admin_url).await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {template}"))
        .await?;
    let mut t = connect(&with_dbname(admin_url, template)).await?;
    shared::store::migrate::run(&mut t).await?;
    Ok(())
}

/// Clones `template` into a new database `name`.
pub async fn clone_template(admin_url: &str, template: &str, name: &str) -> anyhow::Result<()> {
    let admin = connect(admin_url).await?;
    // Concurrent clones of one template can collide on its lock: retry briefly.
    let mut last = None;
    for _ in 0..50 {
        match admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .await
        {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last
        .map(anyhow::Error::from)
        .unwrap_or_else(|| anyhow::anyhow!("create database")))
}

/// Makes user and channel ids of the database start at `offset`.
pub async fn offset_ids(url: &str, offset: i64) -> anyhow::Result<()> {
    let c = connect(url).await?;
    c.batch_execute(&format!(
        "ALTER SEQUENCE users_id_seq RESTART WITH {offset};
         ALTER SEQUENCE channels_id_seq RESTART WITH {offset};"
    ))
    .await?;
    Ok(())
}

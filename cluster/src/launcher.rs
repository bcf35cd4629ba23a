//! [`Cluster`]: starts PostgreSQL, Redis (one server or a Redis Cluster), the api-servers, the
//! edges and HAProxy in that order, waits for each to be healthy, records them in
//! `cluster.json`, and stops them in reverse (edges first, with SIGTERM so they drain).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::haproxy::{self, HaproxyConfig, Server};
use crate::options::Options;
use crate::{probe, services, Error};

mod control;
mod redis;

pub use redis::{RedisMode, RedisNode, NODE_TIMEOUT_MS as REDIS_NODE_TIMEOUT_MS};

/// How long a process may take to become healthy.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an edge may drain after SIGTERM before it is killed (SPEC: exits within 10 s).
const EDGE_GRACE: Duration = Duration::from_secs(12);
const OTHER_GRACE: Duration = Duration::from_secs(10);
/// Attempts to start an api-server or edge that exits during startup.
const START_ATTEMPTS: u32 = 3;

/// What a process is in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Postgres,
    Redis,
    Api,
    Edge,
    Haproxy,
}

/// One process the launcher started.
#[derive(Debug)]
struct Proc {
    role: Role,
    id: String,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// A row of `cluster.json`.
#[derive(Debug, Serialize)]
struct Entry<'a> {
    role: Role,
    id: &'a str,
    pid: u32,
    port: u16,
}

/// A running cluster. Dropping it stops everything it started.
#[derive(Debug)]
pub struct Cluster {
    opts: Options,
    database_url: String,
    redis_url: String,
    redis_mode: RedisMode,
    /// The Redis Cluster nodes the launcher started (cluster mode only).
    redis_nodes: Vec<RedisNode>,
    jwt_secret: String,
    http_port: u16,
    socket: PathBuf,
    /// Every started process, in start order.
    procs: Vec<Proc>,
}

impl Cluster {
    /// Starts the whole topology and returns once HAProxy answers `/health`.
    pub async fn start(opts: Options) -> Result<Cluster, Error> {
        let data_dir = absolute(&opts.data_dir)?;
        std::fs::create_dir_all(data_dir.join("logs"))
            .with_context(|| format!("create {}", data_dir.display()))?;
        let opts = Options { data_dir, ..opts };
        opts.check_redis()?;
        for bin in ["api-server", "edge-server"] {
            let path = opts.bin_dir.join(bin);
            if !path.exists() {
                return Err(Error::MissingBinary(path));
            }
        }
        let jwt_secret = match &opts.jwt_secret {
            Some(s) => s.clone(),
            None => services::jwt_secret(&opts.data_dir.join("jwt_secret"))?,
        };
        let mut c = Cluster {
            database_url: String::new(),
            redis_url: String::new(),
            redis_mode: RedisMode::Single,
            redis_nodes: Vec::new(),
            jwt_secret,
            http_port: fixed_or_free(opts.http_port)?,
            socket: opts.data_dir.join("haproxy.sock"),
            procs: Vec::new(),
            opts,
        };
        c.start_stateful().await?;
        for i in 0..c.opts.apis {
            let port = probe::pick_port(next_port(c.opts.api_base_port, i))?;
            c.spawn_server(Role::Api, format!("api-{}", i + 1), port)
                .await?;
        }
        for i in 0..c.opts.edges {
            let port = probe::pick_port(next_port(c.opts.edge_base_port, i))?;
            c.spawn_server(Role::Edge, format!("edge-{}", i + 1), port)
                .await?;
        }
        c.start_haproxy().await?;
        Ok(c)
    }

    async fn start_stateful(&mut self) -> Result<(), Error> {
        let dir = self.opts.data_dir.clone();
        self.database_url = match self.opts.database_url.clone() {
            Some(url) => {
                services::migrate(&url).await?;
                self.announce("postgres", &format!("using {url}"));
                url
            }
            None => {
                let owner = procs::drop_to("postgres");
                let pg_dir = dir.join("pg");
                if let Some(user) = owner {
                    self.let_postgres_reach(user, &pg_dir)?;
                }
                if services::init_pg(&pg_dir, owner)? {
                    self.announce("postgres", &format!("initdb into {}", pg_dir.display()));
                }
                let port = fixed_or_free(self.opts.pg_port)?;
                let cmd = services::pg_command(&pg_dir, port, owner);
                self.spawn(Role::Postgres, "postgres".into(), port, cmd)?;
                let url = tokio::select! {
                    r = services::prepare_pg(port, READY_TIMEOUT) => r?,
                    e = self.exited_during_start("postgres") => return Err(e),
                };
                self.announce("postgres", &format!("ready on 127.0.0.1:{port} ({url})"));
                url
            }
        };
        self.redis_url = self.start_redis().await?;
        Ok(())
    }

    /// Run as root, PostgreSQL runs as the `postgres` user, which must pass through every
    /// directory above its data (a `DATA_DIR` made by `mktemp -d` is 0700): adds the search bit
    /// where it is missing, and says so.
    fn let_postgres_reach(&self, user: procs::User, pg_dir: &Path) -> Result<(), Error> {
        let dir = pg_dir.parent().unwrap_or(pg_dir);
        let grants = user
            .grant_traverse(dir)
            .with_context(|| format!("let the postgres user reach {}", pg_dir.display()))?;
        if !grants.is_empty() {
            let list: Vec<String> = grants.iter().map(ToString::to_string).collect();
            self.announce(
                "postgres",
                &format!(
                    "chmod {} (search bit only, so the postgres user can reach {})",
                    list.join(", "),
                    pg_dir.display()
                ),
            );
        }
        Ok(())
    }

    /// The command of an api-server or edge listening on `port`.
    fn server_command(&self, role: Role, id: &str, port: u16) -> Command {
        let bin = match role {
            Role::Edge => "edge-server",
            _ => "api-server",
        };
        let mut cmd = Command::new(self.opts.bin_dir.join(bin));
        cmd.env("LISTEN", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", &self.database_url)
            .env("REDIS_URL", &self.redis_url)
            .env("JWT_SECRET", &self.jwt_secret);
        if role == Role::Edge {
            let origins = self.opts.allowed_origins.clone().unwrap_or_else(|| {
                let p = self.http_port;
                format!("http://127.0.0.1:{p},http://localhost:{p}")
            });
            cmd.env("EDGE_ID", id).env("ALLOWED_ORIGINS", origins);
        } else {
            // Attachments go to `{DATA_DIR}/attachments`: one directory all api-servers share.
            cmd.env("DATA_DIR", &self.opts.data_dir);
        }
        cmd.envs(self.opts.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Starts an api-server or edge and waits for its `/health`. A process that exits during
    /// startup (e.g. a dependency answering too slowly on a loaded machine) is started again,
    /// up to [`START_ATTEMPTS`] times in all, each failure reported on stderr.
    async fn spawn_server(&mut self, role: Role, id: String, port: u16) -> Result<(), Error> {
        let mut attempt = 1;
        loop {
            let cmd = self.server_command(role, &id, port);
            self.spawn(role, id.clone(), port, cmd)?;
            match self.wait_healthy(&id, port).await {
                Ok(()) => break,
                Err(e @ Error::Exited { .. }) if attempt < START_ATTEMPTS => {
                    eprintln!("[retry] {id:<9} attempt {attempt} failed: {e}");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
        self.announce(&id, &format!("ready on 127.0.0.1:{port}"));
        self.write_state()?;
        Ok(())
    }

    async fn wait_healthy(&mut self, id: &str, port: u16) -> Result<(), Error> {
        let addr = local(port);
        self.wait_until(id, || async move {
            probe::http_status(addr, "/health").await == Some(200)
        })
        .await
    }

    async fn start_haproxy(&mut self) -> Result<(), Error> {
        let cfg_path = self.opts.data_dir.join("haproxy.cfg");
        std::fs::write(&cfg_path, haproxy::render(&self.haproxy_config()))
            .context("write haproxy.cfg")?;
        let _ = std::fs::remove_file(&self.socket);
        let mut cmd = Command::new("haproxy");
        cmd.arg("-db").arg("-f").arg(&cfg_path);
        let port = self.http_port;
        self.spawn(Role::Haproxy, "haproxy".into(), port, cmd)?;
        let addr = local(port);
        self.wait_until("haproxy", || async move {
            probe::http_status(addr, "/health").await == Some(200)
        })
        .await?;
        self.announce(
            "haproxy",
            &format!("ready on {}:{port}", self.opts.http_host),
        );
        self.write_state()?;
        Ok(())
    }

    /// The HAProxy settings for this cluster's processes.
    pub fn haproxy_config(&self) -> HaproxyConfig {
        let servers = |role| {
            self.procs
                .iter()
                .filter(|p| p.role == role)
                .map(|p| Server::new(p.id.clone(), format!("127.0.0.1:{}", p.port)))
                .collect()
        };
        HaproxyConfig {
            bind: format!("{}:{}", self.opts.http_host, self.http_port),
            stats_socket: self.socket.display().to_string(),
            maxconn: haproxy::DEFAULT_MAXCONN,
            edges: servers(Role::Edge),
            apis: servers(Role::Api),
            global: self.opts.haproxy_global.clone(),
            defaults: self.opts.haproxy_defaults.clone(),
        }
    }

    fn spawn(&mut self, role: Role, id: String, port: u16, cmd: Command) -> Result<(), Error> {
        let log = self.opts.data_dir.join("logs").join(format!("{id}.log"));
        let child = services::spawn_logged(cmd, &log).map_err(|source| Error::Spawn {
            id: id.clone(),
            source,
        })?;
        match self.procs.iter_mut().find(|p| p.id == id) {
            Some(p) => {
                p.child = Some(child);
                p.port = port;
            }
            None => self.procs.push(Proc {
                role,
                id,
                port,
                log,
                child: Some(child),
            }),
        }
        Ok(())
    }

    /// Polls `ready` until it holds; fails when the process exits or the timeout passes.
    async fn wait_until<F, Fut>(&mut self, id: &str, mut ready: F) -> Result<(), Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if ready().await {
                return Ok(());
            }
            if let Some(e) = self.exit_error(id) {
                return Err(e);
            }
            if Instant::now() >= deadline {
                let log = self.proc(id).map(|p| p.log.clone()).unwrap_or_default();
                return Err(Error::NotReady {
                    id: id.to_owned(),
                    secs: READY_TIMEOUT.as_secs(),
                    log,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Resolves when process `id` exits (used while something else waits for it).
    async fn exited_during_start(&self, id: &str) -> Error {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Some(p) = self.proc(id) {
                if let Some(pid) = p.child.as_ref().map(Child::id) {
                    if !running(pid) {
                        return Error::Exited {
                            id: id.to_owned(),
                            status: "exited".into(),
                            log: tail(&p.log),
                        };
                    }
                }
            }
        }
    }

    fn exit_error(&mut self, id: &str) -> Option<Error> {
        let p = self.procs.iter_mut().find(|p| p.id == id)?;
        let status = p.child.as_mut()?.try_wait().ok()??;
        p.child = None;
        Some(Error::Exited {
            id: id.to_owned(),
            status: status.to_string(),
            log: tail(&p.log),
        })
    }

    fn proc(&self, id: &str) -> Option<&Proc> {
        self.procs.iter().find(|p| p.id == id)
    }

    fn announce(&self, id: &str, what: &str) {
        if self.opts.announce {
            println!("[ready] {id:<9} {what}");
        }
    }

    /// Rewrites `$DATA_DIR/cluster.json` with every running process.
    pub fn write_state(&self) -> Result<(), Error> {
        let rows: Vec<Entry> = self
            .procs
            .iter()
            .filter_map(|p| {
                p.pid().map(|pid| Entry {
                    role: p.role,
                    id: &p.id,
                    pid,
                    port: p.port,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "http_url": self.http_url(),
            "data_dir": self.opts.data_dir,
            "haproxy_socket": self.socket,
            "processes": rows,
            "redis_mode": self.redis_mode,
            "redis_url": self.redis_url,
            "redis_nodes": self.redis_nodes,
        });
        let path = self.opts.data_dir.join("cluster.json");
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(&doc).context("serialize cluster.json")?;
        std::fs::write(&tmp, text + "\n").context("write cluster.json")?;
        std::fs::rename(&tmp, &path).context("write cluster.json")?;
        Ok(())
    }
}

fn next_port(base: u16, i: usize) -> u16 {
    if base == 0 {
        return 0;
    }
    u16::try_from(usize::from(base) + i).unwrap_or(0)
}

/// `port` as given (a server that cannot bind it fails loudly), or a free one for 0.
fn fixed_or_free(port: u16) -> Result<u16, Error> {
    if port != 0 {
        return Ok(port);
    }
    Ok(probe::pick_port(0)?)
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn absolute(p: &Path) -> Result<PathBuf, Error> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("current directory")?
        .join(p))
}

/// True while `pid` exists and has not exited (an unreaped child is a zombie, state `Z`).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    })
}

/// The last lines of a log file, for error messages.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

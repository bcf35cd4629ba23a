//! Operating a running [`Cluster`]: addresses, killing and restarting edges and api-servers, the HAProxy
//! runtime API, watching for exits, and the ordered stop.

use std::net::SocketAddr;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use super::{local, Cluster, Role, EDGE_GRACE, OTHER_GRACE};
use crate::{haproxy, Error};

impl Cluster {
    /// `http://host:port` of HAProxy, the public entry point.
    pub fn http_url(&self) -> String {
        let host = match self.opts.http_host.as_str() {
            "0.0.0.0" | "" | "*" => "127.0.0.1",
            h => h,
        };
        format!("http://{host}:{}", self.http_port)
    }

    /// `ws://host:port/ws` through HAProxy.
    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.http_url().replacen("http", "ws", 1))
    }

    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// Direct addresses of the edges, in order (`edge-1` first).
    pub fn edge_addrs(&self) -> Vec<SocketAddr> {
        self.ports(Role::Edge).into_iter().map(local).collect()
    }

    /// Direct addresses of the api-servers.
    pub fn api_addrs(&self) -> Vec<SocketAddr> {
        self.ports(Role::Api).into_iter().map(local).collect()
    }

    /// The name of edge `i` (0-based) in HAProxy, `ready.edge` and `cluster.json`.
    pub fn edge_name(&self, i: usize) -> String {
        format!("edge-{}", i + 1)
    }

    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    pub fn redis_url(&self) -> &str {
        &self.redis_url
    }

    pub fn jwt_secret(&self) -> &str {
        &self.jwt_secret
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.opts.data_dir
    }

    /// Port of the Redis this cluster uses, when it started it.
    pub fn redis_port(&self) -> Option<u16> {
        self.ports(Role::Redis).first().copied()
    }

    /// Pid of edge `i` while it runs.
    pub fn edge_pid(&self, i: usize) -> Option<u32> {
        self.proc(&self.edge_name(i)).and_then(|p| p.pid())
    }

    fn ports(&self, role: Role) -> Vec<u16> {
        self.procs
            .iter()
            .filter(|p| p.role == role)
            .map(|p| p.port)
            .collect()
    }

    /// Sends `signal` to edge `i` (0-based) and waits for it to exit: SIGTERM drains, SIGKILL
    /// crashes. Returns its exit status.
    pub async fn kill_edge(&mut self, i: usize, signal: i32) -> Result<ExitStatus, Error> {
        self.kill_server(self.edge_name(i), signal, EDGE_GRACE)
            .await?
            .ok_or(Error::NoSuchEdge(i))
    }

    /// Starts edge `i` again on its port and waits until its `/health` answers 200.
    pub async fn start_edge(&mut self, i: usize) -> Result<(), Error> {
        let id = self.edge_name(i);
        let port = self.stopped_port(&id).ok_or(Error::NoSuchEdge(i))?;
        self.spawn_server(Role::Edge, id, port).await
    }

    /// Sends `signal` to api-server `i` (0-based) and waits for it to exit; `None` when there
    /// is no such api-server running.
    pub async fn kill_api(&mut self, i: usize, signal: i32) -> Result<Option<ExitStatus>, Error> {
        self.kill_server(format!("api-{}", i + 1), signal, OTHER_GRACE)
            .await
    }

    /// Starts api-server `i` again on its port and waits until it answers.
    pub async fn start_api(&mut self, i: usize) -> Result<(), Error> {
        let id = format!("api-{}", i + 1);
        let port = self.stopped_port(&id).ok_or(Error::NoSuchEdge(i))?;
        self.spawn_server(Role::Api, id, port).await
    }

    /// The port of server `id` when it is not running.
    fn stopped_port(&self, id: &str) -> Option<u16> {
        self.proc(id).filter(|p| p.child.is_none()).map(|p| p.port)
    }

    /// Sends `signal` to server `id` and waits up to `grace` (and 3 s more) for it to exit,
    /// then kills it. `None` when it is not running.
    async fn kill_server(
        &mut self,
        id: String,
        signal: i32,
        grace: Duration,
    ) -> Result<Option<ExitStatus>, Error> {
        let Some(p) = self.procs.iter_mut().find(|p| p.id == id) else {
            return Ok(None);
        };
        let Some(mut child) = p.child.take() else {
            return Ok(None);
        };
        procs::signal(&child, signal).map_err(|source| Error::Spawn {
            id: id.clone(),
            source: source.into(),
        })?;
        let deadline = Instant::now() + grace + Duration::from_secs(3);
        loop {
            if let Some(status) = child.try_wait().map_err(anyhow::Error::from)? {
                self.write_state()?;
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.write_state()?;
                return Err(Error::NotReady {
                    id: format!("{id} exit"),
                    secs: deadline.elapsed().as_secs(),
                    log: self.proc(&id).map(|p| p.log.clone()).unwrap_or_default(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends one command to HAProxy's runtime API (`set server edges/edge-2 state drain`).
    pub fn haproxy_command(&self, cmd: &str) -> Result<String, Error> {
        haproxy::command(&self.socket, cmd).map_err(|e| Error::Unexpected(e.into()))
    }

    /// HAProxy's status of `backend/server` from `show stat` (`UP`, `DOWN`, `DRAIN`, `MAINT`,
    /// or a transition such as `DOWN 1/2`).
    pub fn haproxy_status(&self, backend: &str, server: &str) -> Result<Option<String>, Error> {
        let csv = self.haproxy_command("show stat")?;
        Ok(csv.lines().find_map(|line| {
            let cols: Vec<&str> = line.split(',').collect();
            (cols.len() > 17 && cols[0] == backend && cols[1] == server)
                .then(|| cols[17].to_owned())
        }))
    }

    /// Waits until HAProxy reports `backend/server` with exactly `status`.
    pub async fn wait_haproxy_status(
        &self,
        backend: &str,
        server: &str,
        status: &str,
        timeout: Duration,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.haproxy_status(backend, server)?.as_deref() == Some(status) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::NotReady {
                    id: format!("{backend}/{server} {status}"),
                    secs: timeout.as_secs(),
                    log: self.opts.data_dir.join("logs").join("haproxy.log"),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Processes that exited on their own since the last call: `(id, status)`.
    pub fn poll_exits(&mut self) -> Vec<(String, ExitStatus)> {
        let mut out = Vec::new();
        for p in &mut self.procs {
            if let Some(c) = p.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    out.push((p.id.clone(), status));
                    p.child = None;
                }
            }
        }
        if !out.is_empty() {
            let _ = self.write_state();
        }
        out
    }

    /// Stops everything: edges first with SIGTERM (they drain, all at once), then the
    /// api-servers, HAProxy, Redis and PostgreSQL. Idempotent.
    pub fn stop(&mut self) {
        let order = [
            (Role::Edge, libc::SIGTERM, EDGE_GRACE),
            (Role::Api, libc::SIGTERM, OTHER_GRACE),
            (Role::Haproxy, libc::SIGTERM, OTHER_GRACE),
            (Role::Redis, libc::SIGTERM, OTHER_GRACE),
            // SIGINT is PostgreSQL's fast shutdown.
            (Role::Postgres, libc::SIGINT, Duration::from_secs(30)),
        ];
        for (role, sig, grace) in order {
            let mut group: Vec<_> = self
                .procs
                .iter_mut()
                .filter(|p| p.role == role)
                .filter_map(|p| p.child.take().map(|c| (p.id.clone(), c)))
                .collect();
            for (_, c) in &group {
                let _ = procs::signal(c, sig);
            }
            for (id, c) in &mut group {
                let outcome = procs::wait_for_exit(c, grace)
                    .ok()
                    .filter(|exited| *exited)
                    .map(|_| "stopped")
                    .unwrap_or_else(|| {
                        let _ = c.kill();
                        let _ = c.wait();
                        "killed after the grace period"
                    });
                if self.opts.announce {
                    println!("[stop]  {id:<9} {outcome}");
                }
            }
        }
        let _ = self.write_state();
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

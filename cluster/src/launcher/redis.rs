//! The Redis a [`Cluster`] uses: an external one (`REDIS_URL`), one plain server, or a Redis
//! Cluster of `REDIS_SHARDS` masters with `REDIS_REPLICAS` replicas each (`procs::redis`
//! knows the commands; this starts, announces and records them).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use super::{fixed_or_free, local, next_port, Cluster, Role};
use crate::{probe, Error};

/// Node timeout of a launched Redis Cluster: a killed master's replica takes over after about
/// this long.
pub const NODE_TIMEOUT_MS: u64 = 5000;

/// Which Redis the servers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// `REDIS_URL` given: not started by the launcher.
    External,
    /// One `redis-server`.
    Single,
    /// A Redis Cluster (`REDIS_SHARDS`).
    Cluster,
}

/// A node of a launched Redis Cluster, as it was when the cluster was created (a failover
/// later swaps a master and its replica).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedisNode {
    /// `redis-1`, `redis-2`, ...: its log is `logs/<id>.log`, its dir `redis/<id>`.
    pub id: String,
    pub port: u16,
    /// The cluster bus port.
    pub bus_port: u16,
    /// `master` or `replica`.
    pub role: String,
    /// Slot ranges it serves (masters), inclusive.
    pub slots: Vec<(u16, u16)>,
    /// Id of its master (replicas).
    pub master: Option<String>,
}

impl Cluster {
    /// Starts (or takes) the Redis of the cluster and returns its URL.
    pub(super) async fn start_redis(&mut self) -> Result<String, Error> {
        if let Some(url) = self.opts.redis_url.clone() {
            self.announce("redis", &format!("using {url}"));
            self.redis_mode = RedisMode::External;
            return Ok(url);
        }
        let redis_dir = self.opts.data_dir.join("redis");
        if self.opts.redis_shards > 0 {
            return self.start_redis_cluster(&redis_dir).await;
        }
        let port = fixed_or_free(self.opts.redis_port)?;
        std::fs::create_dir_all(&redis_dir).context("create redis dir")?;
        let cmd = procs::redis::server_command(&redis_dir, port);
        self.spawn(Role::Redis, "redis".into(), port, cmd)?;
        let addr = local(port);
        self.wait_until("redis", || probe::redis_ping(addr)).await?;
        self.announce("redis", &format!("ready on 127.0.0.1:{port}"));
        self.redis_mode = RedisMode::Single;
        Ok(format!("redis://127.0.0.1:{port}"))
    }

    /// `REDIS_SHARDS` masters and their replicas on ports from `REDIS_PORT` upward (free ports
    /// for 0), each in `redis/redis-<n>`, made one cluster afresh: Redis holds nothing to keep,
    /// so an old `nodes.conf` (another run's cluster) is removed first.
    async fn start_redis_cluster(&mut self, redis_dir: &Path) -> Result<String, Error> {
        let shards = self.opts.redis_shards;
        let replicas = self.opts.redis_replicas;
        let mut taken = Vec::new();
        let mut nodes = Vec::new();
        for i in 0..shards * (1 + replicas) {
            let id = format!("redis-{}", i + 1);
            let port = match next_port(self.opts.redis_port, i) {
                0 => distinct_free_port(&mut taken)?,
                p => p,
            };
            let bus_port = match self.opts.redis_port {
                0 => distinct_free_port(&mut taken)?,
                _ => procs::redis::bus_port(port, || distinct_free_port(&mut taken))?,
            };
            taken.extend([port, bus_port]);
            let dir = redis_dir.join(&id);
            std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            match std::fs::remove_file(dir.join("nodes.conf")) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(anyhow::Error::from(e)
                        .context("remove old nodes.conf")
                        .into())
                }
                _ => {}
            }
            let cmd = procs::redis::cluster_node_command(&dir, port, bus_port, NODE_TIMEOUT_MS);
            self.spawn(Role::Redis, id.clone(), port, cmd)?;
            nodes.push((id, port, bus_port));
        }
        for (id, port, _) in &nodes {
            let addr = local(*port);
            self.wait_until(id, || probe::redis_ping(addr)).await?;
        }
        let ports: Vec<u16> = nodes.iter().map(|n| n.1).collect();
        let create = ports.clone();
        tokio::task::spawn_blocking(move || procs::redis::create_cluster(&create, replicas))
            .await
            .context("redis cluster creation panicked")?
            .context("create the redis cluster")?;
        self.redis_nodes = describe(&nodes)?;
        for n in &self.redis_nodes {
            let what = match &n.master {
                Some(m) => format!("replica of {m} on 127.0.0.1:{}", n.port),
                None => format!(
                    "master of slots {} on 127.0.0.1:{}",
                    ranges(&n.slots),
                    n.port
                ),
            };
            self.announce(&n.id, &what);
        }
        let url = procs::redis::cluster_url(&ports);
        self.announce(
            "redis",
            &format!("cluster ok: {shards} masters, {replicas} replica(s) each: {url}"),
        );
        self.redis_mode = RedisMode::Cluster;
        self.redis_url = url.clone();
        self.write_state()?;
        Ok(url)
    }

    /// The nodes of the Redis Cluster the launcher started (empty in the other modes).
    pub fn redis_nodes(&self) -> &[RedisNode] {
        &self.redis_nodes
    }

    pub fn redis_mode(&self) -> RedisMode {
        self.redis_mode
    }
}

/// Each node's role and slots, by its own `CLUSTER NODES` line.
fn describe(nodes: &[(String, u16, u16)]) -> anyhow::Result<Vec<RedisNode>> {
    let me: Vec<procs::redis::Node> = nodes
        .iter()
        .map(|n| procs::redis::myself(n.1))
        .collect::<anyhow::Result<_>>()?;
    let id_of = |node_id: &str| {
        me.iter()
            .zip(nodes)
            .find(|(m, _)| m.id == node_id)
            .map(|(_, n)| n.0.clone())
    };
    Ok(me
        .iter()
        .zip(nodes)
        .map(|(m, (id, port, bus_port))| RedisNode {
            id: id.clone(),
            port: *port,
            bus_port: *bus_port,
            role: if m.is_master() { "master" } else { "replica" }.into(),
            slots: m.slots.clone(),
            master: m.master_id.as_deref().and_then(id_of),
        })
        .collect())
}

fn ranges(slots: &[(u16, u16)]) -> String {
    let parts: Vec<String> = slots.iter().map(|(a, b)| format!("{a}-{b}")).collect();
    parts.join(",")
}

/// A free port not in `taken` (the kernel may hand the same one out twice in a row).
fn distinct_free_port(taken: &mut Vec<u16>) -> std::io::Result<u16> {
    for _ in 0..100 {
        let p = probe::pick_port(0)?;
        if !taken.contains(&p) {
            taken.push(p);
            return Ok(p);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(std::io::Error::other("no distinct free port"))
}

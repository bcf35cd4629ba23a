//! A real Redis Cluster (masters, optional replicas) on free ports, which tests may break:
//! kill a node, restart it, fail over. Started and inspected through `procs::redis`.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use procs::redis;

/// Node timeout of test clusters: failure detection and failover take about this long.
pub const NODE_TIMEOUT_MS: u64 = 1000;

/// How long a failover, a restart or a rejoin may take.
const SETTLE: Duration = Duration::from_secs(30);

/// The Redis Cluster slot of `key` (CRC16 of the key, or of its first non-empty `{hash tag}`,
/// modulo 16384), as `CLUSTER KEYSLOT` computes it.
pub fn slot_of(key: &str) -> u16 {
    fred::util::redis_keyslot(key.as_bytes())
}

#[derive(Debug)]
struct ClusterNode {
    port: u16,
    bus_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// A Redis Cluster owned by the test; every node is killed and its dir removed on drop.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<ClusterNode>,
    root: PathBuf,
}

impl RedisCluster {
    /// Starts `masters` masters (at least 3) with `replicas_per_master` replicas each, every
    /// node on a free port with its own dir, and waits until the cluster is `ok`.
    pub fn start(masters: usize, replicas_per_master: usize) -> anyhow::Result<Self> {
        let root = crate::scratch::make("redis-cluster")?;
        let mut c = RedisCluster {
            nodes: Vec::new(),
            root,
        };
        for i in 0..masters * (1 + replicas_per_master) {
            let dir = c.root.join(format!("node-{}", i + 1));
            std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            let port = crate::free_port();
            let bus_port = crate::free_port();
            c.nodes.push(ClusterNode {
                port,
                bus_port,
                dir,
                child: None,
            });
            c.spawn(port)?;
        }
        for n in &c.nodes {
            redis::wait_ping(n.port, SETTLE)?;
        }
        redis::create_cluster(&c.ports(), replicas_per_master)?;
        Ok(c)
    }

    /// `redis-cluster://...` naming every node.
    pub fn url(&self) -> String {
        redis::cluster_url(&self.ports())
    }

    /// Every node's port, running or not, in start order (masters first at creation).
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// Ports of the running nodes.
    pub fn running(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect()
    }

    /// Running nodes that are masters by their own account.
    pub fn masters(&self) -> Vec<u16> {
        self.with_role(redis::Node::is_master)
    }

    /// Running nodes that are replicas by their own account.
    pub fn replicas(&self) -> Vec<u16> {
        self.with_role(redis::Node::is_replica)
    }

    fn with_role(&self, role: fn(&redis::Node) -> bool) -> Vec<u16> {
        self.running()
            .into_iter()
            .filter(|p| redis::myself(*p).is_ok_and(|n| role(&n)))
            .collect()
    }

    /// The running master that serves `slot` by its own account.
    pub fn master_for(&self, slot: u16) -> anyhow::Result<u16> {
        self.running()
            .into_iter()
            .find(|p| redis::myself(*p).is_ok_and(|n| n.is_master() && n.serves(slot)))
            .with_context(|| format!("no running master serves slot {slot}"))
    }

    /// A running replica of the node on `master_port`, by the replica's own account.
    pub fn replica_of(&self, master_port: u16) -> Option<u16> {
        let master = redis::myself(master_port).ok()?;
        self.running().into_iter().find(|p| {
            redis::myself(*p).is_ok_and(|n| n.master_id.as_deref() == Some(master.id.as_str()))
        })
    }

    /// Kills the node on `port` at once (SIGKILL).
    pub fn kill(&mut self, port: u16) -> anyhow::Result<()> {
        let node = self.node_mut(port)?;
        let mut child = node
            .child
            .take()
            .with_context(|| format!("node {port} is not running"))?;
        let _ = child.kill();
        child.wait().context("reap redis-server")?;
        Ok(())
    }

    /// Starts the killed node on `port` again (same port, dir and `nodes.conf`, so the same
    /// node id) and waits until it answers and the cluster, it included, is `ok`.
    pub fn restart(&mut self, port: u16) -> anyhow::Result<()> {
        if self.node_mut(port)?.child.is_some() {
            anyhow::bail!("node {port} is running");
        }
        self.spawn(port)?;
        redis::wait_ping(port, SETTLE)?;
        self.wait_ok(SETTLE)
    }

    /// `CLUSTER FAILOVER` on the replica on `replica_port`; waits until it is a master and the
    /// cluster is `ok`.
    pub fn failover(&self, replica_port: u16) -> anyhow::Result<()> {
        self.command(replica_port, &["CLUSTER", "FAILOVER"])?;
        self.wait_master(replica_port, SETTLE)?;
        self.wait_ok(SETTLE)
    }

    /// Waits up to `timeout` until the node on `port` is a master by its own account (e.g. a
    /// replica promoted after its master was killed).
    pub fn wait_master(&self, port: u16, timeout: Duration) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        while !redis::myself(port).is_ok_and(|n| n.is_master()) {
            if std::time::Instant::now() >= deadline {
                anyhow::bail!("node {port} not a master after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Waits up to `timeout` until every running node reports the cluster `ok` with all slots
    /// served and sees every other running node healthy.
    pub fn wait_ok(&self, timeout: Duration) -> anyhow::Result<()> {
        redis::wait_cluster_ok(&self.running(), timeout)
    }

    /// Runs a command on the node on `port`; the reply as text (see `procs::redis::command`).
    pub fn command(&self, port: u16, words: &[&str]) -> anyhow::Result<String> {
        redis::command(port, words)
    }

    fn node_mut(&mut self, port: u16) -> anyhow::Result<&mut ClusterNode> {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .with_context(|| format!("no node on port {port}"))
    }

    fn spawn(&mut self, port: u16) -> anyhow::Result<()> {
        let node = self.node_mut(port)?;
        let mut cmd = redis::cluster_node_command(&node.dir, port, node.bus_port, NODE_TIMEOUT_MS);
        cmd.args(["--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = procs::spawn(cmd, procs::Group::Parent)
            .context("spawn redis-server (is it installed?)")?;
        node.child = Some(child);
        Ok(())
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The cluster shared by every test of this process (3 masters, no replicas), started on first
/// use; or `REDIS_CLUSTER_URL` when set.
/// The cluster is taken and dropped at exit (a static is never dropped).
static SHARED: OnceLock<(String, Mutex<Option<RedisCluster>>)> = OnceLock::new();

/// Kills the process-wide cluster and removes its directory; registered with `atexit`.
extern "C" fn drop_shared_cluster() {
    let c = SHARED
        .get()
        .and_then(|(_, c)| c.try_lock().ok().and_then(|mut g| g.take()));
    drop(c);
}

/// URL of the process-wide Redis Cluster: `REDIS_CLUSTER_URL` when set, else a 3-master
/// cluster started once per test process (tests must not break it: start their own
/// [`RedisCluster`] for that).
pub fn redis_cluster_url() -> String {
    SHARED
        .get_or_init(|| match std::env::var("REDIS_CLUSTER_URL") {
            Ok(url) if !url.is_empty() => (url, Mutex::new(None)),
            // From a plain thread: the caller may be inside a runtime.
            _ => std::thread::spawn(|| {
                let c = RedisCluster::start(3, 0).expect("start the shared Redis Cluster");
                procs::at_exit(drop_shared_cluster);
                (c.url(), Mutex::new(Some(c)))
            })
            .join()
            .expect("Redis Cluster start panicked"),
        })
        .0
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_of_agrees_with_cluster_keyslot() {
        let url = redis_cluster_url();
        let port: u16 = url
            .trim_start_matches("redis-cluster://127.0.0.1:")
            .split('?')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in the cluster URL");
        for key in [
            "channel-5",
            "foo",
            "{user1000}.following",
            "a{}b",
            "{}x",
            "x{y",
        ] {
            let real: u16 = redis::command(port, &["CLUSTER", "KEYSLOT", key])
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(slot_of(key), real, "{key}");
        }
        // Known values (Redis Cluster specification): the tag alone decides.
        assert_eq!(slot_of("foo"), 12182);
        assert_eq!(slot_of("{user1000}.following"), slot_of("user1000"));
    }
}

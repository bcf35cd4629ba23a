//! Redis servers for the launcher and the test harness: the `redis-server` command of a plain
//! server and of a Redis Cluster node, cluster creation (`redis-cli --cluster create`), the
//! cluster's state (`CLUSTER INFO`, `CLUSTER NODES`), and the `redis-cluster://` URL.

mod resp;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

pub use resp::command;

/// Slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// How long [`create_cluster`] waits for every node to report `cluster_state:ok`.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(30);

/// The `redis-server` command of a plain server on 127.0.0.1:`port`, working dir `dir`, in the
/// foreground, without persistence (Redis only carries pub/sub and presence leases; PostgreSQL
/// is the source of truth). Stdout and stderr are left to the caller.
pub fn server_command(dir: &Path, port: u16) -> Command {
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir)
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .args(["--maxclients", "10000"]);
    cmd
}

/// The `redis-server` command of a Redis Cluster node: [`server_command`] plus cluster mode,
/// its cluster bus on `bus_port` (the default, port + 10000, does not exist for ports above
/// 55535, where free ports usually are), its `nodes.conf` in `dir` (so a restarted node keeps
/// its identity and rejoins, as a replica when its slots moved meanwhile), and a node timeout
/// of `node_timeout_ms` (failure detection and failover take about that long).
///
/// The cluster keeps serving what it can when slots are down (`cluster-require-full-coverage
/// no`, reads and sharded pub/sub allowed when down), and a replica takes over however long it
/// was cut off from its master (`cluster-replica-validity-factor 0`): without persistence
/// there is nothing better to wait for.
pub fn cluster_node_command(dir: &Path, port: u16, bus_port: u16, node_timeout_ms: u64) -> Command {
    let mut cmd = server_command(dir, port);
    cmd.args(["--cluster-enabled", "yes"])
        .args(["--cluster-config-file", "nodes.conf"])
        .args(["--cluster-port", &bus_port.to_string()])
        .args(["--cluster-node-timeout", &node_timeout_ms.to_string()])
        .args(["--cluster-require-full-coverage", "no"])
        .args(["--cluster-allow-reads-when-down", "yes"])
        .args(["--cluster-allow-pubsubshard-when-down", "yes"])
        .args(["--cluster-replica-validity-factor", "0"]);
    cmd
}

/// The bus port of the node on `port`: Redis's default (port + 10000) when it exists, else
/// whatever `free` picks.
pub fn bus_port(port: u16, free: impl FnOnce() -> std::io::Result<u16>) -> std::io::Result<u16> {
    match port.checked_add(10000) {
        Some(p) => Ok(p),
        None => free(),
    }
}

/// True when the Redis on `port` answers `PING`.
pub fn ping(port: u16) -> bool {
    command(port, &["PING"]).is_ok_and(|r| r == "PONG")
}

/// Waits up to `timeout` until the Redis on `port` answers `PING`.
pub fn wait_ping(port: u16, timeout: Duration) -> anyhow::Result<()> {
    poll(timeout, || ping(port))
        .with_context(|| format!("redis on port {port} did not answer PING"))
}

/// Makes the fresh cluster nodes on `ports` one cluster with `replicas` replicas per master
/// (`redis-cli --cluster create`, which needs at least 3 masters: `ports.len()` must be
/// `masters * (1 + replicas)` with `masters >= 3`), then waits up to [`CREATE_TIMEOUT`] for
/// [`cluster_ok`] on every node. The first `masters` ports become the masters.
pub fn create_cluster(ports: &[u16], replicas: usize) -> anyhow::Result<()> {
    let masters = ports.len() / (1 + replicas);
    if masters < 3 || masters * (1 + replicas) != ports.len() {
        anyhow::bail!(
            "a Redis Cluster needs at least 3 masters and {} nodes per master; got {} nodes",
            1 + replicas,
            ports.len()
        );
    }
    let mut cmd = Command::new("redis-cli");
    cmd.args(["--cluster", "create"])
        .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
        .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
        .stdin(Stdio::null());
    let out = cmd
        .output()
        .context("run redis-cli --cluster create (is redis-tools installed?)")?;
    if !out.status.success() {
        anyhow::bail!(
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    wait_cluster_ok(ports, CREATE_TIMEOUT)
}

/// Waits up to `timeout` until [`cluster_ok`] holds for `ports`.
pub fn wait_cluster_ok(ports: &[u16], timeout: Duration) -> anyhow::Result<()> {
    poll(timeout, || cluster_ok(ports).unwrap_or(false)).with_context(|| {
        let states: Vec<String> = ports
            .iter()
            .map(|p| {
                let info = cluster_info(*p, "cluster_state").unwrap_or_else(|e| format!("{e:#}"));
                format!("{p}: {info}")
            })
            .collect();
        format!(
            "redis cluster not ok after {timeout:?} ({})",
            states.join(", ")
        )
    })
}

/// True when every node on `ports` reports `cluster_state:ok` with all 16384 slots assigned
/// and none failing, and sees every other of `ports` as a healthy member (no `fail`, `fail?`,
/// `handshake` or `noaddr` flag).
pub fn cluster_ok(ports: &[u16]) -> anyhow::Result<bool> {
    for &port in ports {
        let info = command(port, &["CLUSTER", "INFO"])?;
        let field = |name| info_field(&info, name);
        let slots = SLOTS.to_string();
        if field("cluster_state") != Some("ok")
            || field("cluster_slots_assigned") != Some(slots.as_str())
            || field("cluster_slots_ok") != Some(slots.as_str())
        {
            return Ok(false);
        }
        let nodes = cluster_nodes(port)?;
        for &other in ports {
            if !nodes.iter().any(|n| n.port == other && n.healthy()) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The value of `name` in the `CLUSTER INFO` of the node on `port`.
pub fn cluster_info(port: u16, name: &str) -> anyhow::Result<String> {
    let info = command(port, &["CLUSTER", "INFO"])?;
    info_field(&info, name)
        .map(str::to_owned)
        .with_context(|| format!("no {name} in CLUSTER INFO of port {port}"))
}

fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .filter_map(|l| l.trim_end().split_once(':'))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// One line of `CLUSTER NODES`: a node as some node of the cluster sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub port: u16,
    /// `myself`, `master`, `slave`, `fail?`, `fail`, `handshake`, `noaddr`, `nofailover`, ...
    pub flags: Vec<String>,
    /// The id of its master, for a replica.
    pub master_id: Option<String>,
    /// Link to the node: `connected` or `disconnected`.
    pub connected: bool,
    /// Slot ranges it serves, inclusive.
    pub slots: Vec<(u16, u16)>,
}

impl Node {
    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    pub fn is_master(&self) -> bool {
        self.has("master")
    }

    pub fn is_replica(&self) -> bool {
        self.has("slave")
    }

    /// The line the node wrote about itself.
    pub fn is_myself(&self) -> bool {
        self.has("myself")
    }

    /// Not suspected, failed, unknown or being introduced.
    pub fn healthy(&self) -> bool {
        !["fail", "fail?", "handshake", "noaddr"]
            .iter()
            .any(|f| self.has(f))
    }

    pub fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(a, b)| a <= slot && slot <= b)
    }
}

/// `CLUSTER NODES` of the node on `port`: the whole cluster as that node sees it.
pub fn cluster_nodes(port: u16) -> anyhow::Result<Vec<Node>> {
    Ok(parse_nodes(&command(port, &["CLUSTER", "NODES"])?))
}

/// The node on `port` as it sees itself (its `myself` line).
pub fn myself(port: u16) -> anyhow::Result<Node> {
    cluster_nodes(port)?
        .into_iter()
        .find(Node::is_myself)
        .with_context(|| format!("no myself line in CLUSTER NODES of port {port}"))
}

/// Parses `CLUSTER NODES` output:
/// `<id> <ip:port@cport[,host]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`.
/// Lines it cannot read are skipped, as are migrating / importing entries (`[...]`).
pub fn parse_nodes(text: &str) -> Vec<Node> {
    text.lines().filter_map(parse_node).collect()
}

fn parse_node(line: &str) -> Option<Node> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 8 {
        return None;
    }
    let addr = f[1].split(['@', ',']).next()?;
    let port = addr.rsplit(':').next()?.parse().ok()?;
    let slots = f[8..]
        .iter()
        .filter(|s| !s.starts_with('['))
        .filter_map(|s| match s.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => s.parse().ok().map(|n| (n, n)),
        })
        .collect();
    Some(Node {
        id: f[0].to_owned(),
        port,
        flags: f[2].split(',').map(str::to_owned).collect(),
        master_id: (f[3] != "-").then(|| f[3].to_owned()),
        connected: f[7] == "connected",
        slots,
    })
}

/// `redis-cluster://127.0.0.1:P1?node=127.0.0.1:P2&node=...`: every node, the form fred's
/// `Config::from_url` reads (any node serves to discover the cluster; all are listed so that
/// a client can start while some are down).
pub fn cluster_url(ports: &[u16]) -> String {
    let mut url = String::from("redis-cluster://");
    for (i, p) in ports.iter().enumerate() {
        let sep = match i {
            0 => "",
            1 => "?node=",
            _ => "&node=",
        };
        url.push_str(&format!("{sep}127.0.0.1:{p}"));
    }
    url
}

/// Calls `done` every 50 ms until it holds or `timeout` passes.
fn poll(timeout: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master,fail - 0 1426238318243 3 disconnected 10923-16383
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 [5461->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1] 7
";

    #[test]
    fn parses_cluster_nodes() {
        let nodes = parse_nodes(NODES);
        assert_eq!(nodes.len(), 4);
        let replica = &nodes[0];
        assert_eq!(replica.port, 30004);
        assert!(replica.is_replica() && !replica.is_master() && replica.healthy());
        assert_eq!(
            replica.master_id.as_deref(),
            Some("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca")
        );
        assert!(nodes[1].serves(5461) && nodes[1].serves(10922) && !nodes[1].serves(10923));
        assert!(!nodes[2].healthy() && !nodes[2].connected);
        let me = &nodes[3];
        assert!(me.is_myself() && me.is_master() && me.master_id.is_none());
        assert_eq!(me.slots, vec![(0, 5460), (7, 7)]);
    }

    #[test]
    fn cluster_url_lists_every_node() {
        assert_eq!(cluster_url(&[7000]), "redis-cluster://127.0.0.1:7000");
        assert_eq!(
            cluster_url(&[7000, 7001, 7002]),
            "redis-cluster://127.0.0.1:7000?node=127.0.0.1:7001&node=127.0.0.1:7002"
        );
    }

    #[test]
    fn bus_port_is_port_plus_10000_when_it_exists() {
        assert_eq!(bus_port(6380, || Ok(1)).ok(), Some(16380));
        assert_eq!(bus_port(60000, || Ok(1)).ok(), Some(1));
    }

    #[test]
    fn cluster_node_command_enables_cluster_mode_on_its_bus_port() {
        let cmd = cluster_node_command(Path::new("/d"), 7000, 17001, 1000);
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let after = |flag: &str| {
            let i = args.iter().position(|a| a == flag);
            i.and_then(|i| args.get(i + 1)).map(String::as_str)
        };
        assert_eq!(after("--port"), Some("7000"));
        assert_eq!(after("--dir"), Some("/d"));
        assert_eq!(after("--cluster-enabled"), Some("yes"));
        assert_eq!(after("--cluster-port"), Some("17001"));
        assert_eq!(after("--cluster-node-timeout"), Some("1000"));
        assert_eq!(after("--appendonly"), Some("no"));
    }
}

//! The faults of the chaos and soak runs, made to happen one at a time on a running cluster:
//! an edge killed -9 and restarted, Redis restarted (on a Redis Cluster: a master killed and
//! failed over), `CLIENT KILL TYPE pubsub`, PostgreSQL stopped for 3 s, an edge drained with
//! SIGTERM and restarted, an edge frozen with SIGSTOP, the api-server killed and restarted.

use std::time::Duration;

use cluster::Cluster;
use testkit::{PgServer, RedisCluster, RedisServer};

/// The Redis the cluster runs on, as the faults need it.
pub enum Redis {
    Single(RedisServer),
    Cluster(RedisCluster),
}

impl Redis {
    pub fn url(&self) -> String {
        match self {
            Redis::Single(r) => r.url(),
            Redis::Cluster(c) => c.url(),
        }
    }

    /// Single: killed and started empty. Cluster: a master killed (its replica takes over),
    /// then started again (it rejoins as a replica).
    pub fn restart(&mut self) {
        match self {
            Redis::Single(r) => {
                r.kill();
                std::thread::sleep(Duration::from_millis(500));
                r.restart().unwrap();
            }
            Redis::Cluster(c) => {
                let master = c.masters()[0];
                let replica = c.replica_of(master).unwrap();
                c.kill(master).unwrap();
                c.wait_master(replica, Duration::from_secs(30)).unwrap();
                c.restart(master).unwrap();
            }
        }
    }

    /// Every Redis drops its pub/sub connections.
    pub fn kill_pubsub_clients(&self) {
        let kill = ["CLIENT", "KILL", "TYPE", "pubsub"];
        match self {
            Redis::Single(r) => drop(r.command(&kill).unwrap()),
            Redis::Cluster(c) => {
                for port in c.running() {
                    c.command(port, &kill).unwrap();
                }
            }
        }
    }
}

/// How long the faults take.
pub struct Pace {
    /// From one fault to the next.
    pub between: Duration,
    /// How long an edge stays frozen (SIGSTOP).
    pub frozen: Duration,
}

impl Pace {
    pub fn from_env() -> Self {
        if std::env::var_os("CHAOS_LONG").is_some() {
            Pace {
                between: Duration::from_secs(15),
                frozen: Duration::from_secs(20),
            }
        } else {
            Pace {
                between: Duration::from_secs(3),
                frozen: Duration::from_secs(5),
            }
        }
    }
}

pub const FAULTS: [&str; 7] = [
    "an edge killed -9, restarted",
    "Redis restarted",
    "CLIENT KILL TYPE pubsub",
    "PostgreSQL stopped 3 s",
    "an edge drained (SIGTERM), restarted",
    "an edge frozen (SIGSTOP), SIGCONT",
    "api-server killed, restarted",
];

/// Where the faults happen.
pub struct Target<'a> {
    pub cluster: &'a mut Cluster,
    /// How many edges it has: the edge faults go to edge 1, 2 and 3 in turn (modulo this).
    pub edges: usize,
    pub redis: &'a mut Redis,
    pub pg: &'a mut PgServer,
}

/// Makes fault `i % FAULTS.len()` happen (and undoes it).
pub async fn fault(i: usize, t: &mut Target<'_>, p: &Pace) {
    let (cluster, redis, pg) = (&mut *t.cluster, &mut *t.redis, &mut *t.pg);
    let edge = |k: usize| k % t.edges;
    match i % FAULTS.len() {
        0 => {
            cluster.kill_edge(edge(0), libc::SIGKILL).await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            cluster.start_edge(edge(0)).await.unwrap();
        }
        1 => tokio::task::block_in_place(|| redis.restart()),
        2 => redis.kill_pubsub_clients(),
        3 => {
            tokio::task::block_in_place(|| pg.stop());
            tokio::time::sleep(Duration::from_secs(3)).await;
            tokio::task::block_in_place(|| pg.start_again()).unwrap();
        }
        4 => {
            cluster.kill_edge(edge(1), libc::SIGTERM).await.unwrap();
            cluster.start_edge(edge(1)).await.unwrap();
        }
        5 => {
            let pid = cluster.edge_pid(edge(2)).unwrap().to_string();
            signal("-STOP", &pid).await;
            tokio::time::sleep(p.frozen).await;
            signal("-CONT", &pid).await;
        }
        _ => {
            cluster.kill_api(0, libc::SIGKILL).await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            cluster.start_api(0).await.unwrap();
        }
    }
}

async fn signal(sig: &str, pid: &str) {
    let ok = tokio::process::Command::new("kill")
        .args([sig, pid])
        .status()
        .await
        .unwrap();
    assert!(ok.success(), "kill {sig} {pid}");
}

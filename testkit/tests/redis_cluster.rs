//! `RedisCluster` against real `redis-server` processes: a killed master is replaced by its
//! replica, comes back as that replica's replica, and a manual failover swaps them back.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use testkit::{slot_of, RedisCluster, NODE_TIMEOUT_MS};

#[test]
fn killed_master_is_replaced_by_its_replica_and_rejoins_as_replica() {
    let mut c = RedisCluster::start(3, 1).unwrap();
    assert_eq!(c.ports().len(), 6);
    let mut masters = c.masters();
    masters.sort_unstable();
    let mut first_three = c.ports()[..3].to_vec();
    first_three.sort_unstable();
    assert_eq!(masters, first_three, "the first nodes are the masters");
    assert_eq!(c.replicas().len(), 3);
    assert!(c.url().starts_with("redis-cluster://127.0.0.1:"));
    assert_eq!(c.url().matches("node=127.0.0.1:").count(), 5);

    // A key written through the master of its slot is on that master.
    let slot = slot_of("channel-5");
    let master = c.master_for(slot).unwrap();
    assert_eq!(c.command(master, &["SET", "channel-5", "x"]).unwrap(), "OK");
    let replica = c.replica_of(master).unwrap();
    let moved = c.command(replica, &["SET", "channel-5", "y"]).unwrap_err();
    assert!(format!("{moved:#}").contains("MOVED"), "{moved:#}");

    // Kill the master: its replica takes over the slot, the cluster is ok without it.
    c.kill(master).unwrap();
    c.wait_master(
        replica,
        Duration::from_secs(10 + 5 * NODE_TIMEOUT_MS / 1000),
    )
    .unwrap();
    c.wait_ok(Duration::from_secs(30)).unwrap();
    assert_eq!(c.master_for(slot).unwrap(), replica);
    assert!(!c.running().contains(&master));
    assert_eq!(c.masters().len(), 3);

    // Back with the same node id: a replica of the node that took its slots.
    c.restart(master).unwrap();
    assert!(c.replicas().contains(&master), "{:?}", c.replicas());
    assert_eq!(c.replica_of(replica), Some(master));
    assert_eq!(c.master_for(slot).unwrap(), replica);

    // A manual failover gives the slot back to the original master.
    c.failover(master).unwrap();
    assert_eq!(c.master_for(slot).unwrap(), master);
    assert_eq!(c.replica_of(master), Some(replica));
    assert_eq!(
        c.command(master, &["CLUSTER", "INFO"])
            .unwrap()
            .lines()
            .find(|l| l.starts_with("cluster_state:"))
            .map(str::trim),
        Some("cluster_state:ok")
    );
}

#[test]
fn a_cluster_needs_three_masters() {
    let err = RedisCluster::start(2, 0).unwrap_err();
    assert!(format!("{err:#}").contains("at least 3 masters"), "{err:#}");
}

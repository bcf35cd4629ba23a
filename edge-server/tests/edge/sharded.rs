//! SPEC section 5 on a Redis Cluster of three shards, where channel and user topics are shard
//! channels (`SSUBSCRIBE` / `SPUBLISH`): the cross-edge, gap-fill (of messages and events),
//! membership and presence tests of single-Redis mode, the number of subscribed edges per
//! shard channel, and the faults of a cluster: a shard killed and brought back, a failover to
//! a replica under traffic, every subscriber connection killed.

use std::time::Duration;

use fred::interfaces::ClientLike;
use fred::types::{ClusterHash, CustomCommand, Value};
use testkit::RedisCluster;

use crate::common::*;
use crate::{changes, delivery, faults, membership};

/// A test's environment on the process-wide 3-shard cluster.
async fn on_cluster() -> Env {
    Env::with(testkit::fresh_db().await.url, testkit::redis_cluster_url()).await
}

#[tokio::test]
async fn sharded_gap_free_order_two_senders_on_two_edges_same_order_everywhere() {
    delivery::gap_free_order(on_cluster().await).await;
}

#[tokio::test]
async fn sharded_exactly_once_in_order_when_publishes_are_lost_reordered_and_doubled() {
    delivery::exactly_once_through_a_lossy_bus(on_cluster().await).await;
}

#[tokio::test]
async fn sharded_events_lost_by_the_bus_are_filled_from_postgres_in_order() {
    changes::events_through_a_lossy_bus(on_cluster().await).await;
}

#[tokio::test]
async fn sharded_membership_is_live_join_and_leave_reach_every_socket_of_the_user() {
    membership::membership_is_live(on_cluster().await).await;
}

#[tokio::test]
async fn sharded_presence_is_cluster_wide() {
    membership::presence_across_edges(on_cluster().await).await;
}

/// `PUBSUB SHARDNUMSUB topic`, asked of the shard that owns the topic's slot.
async fn shardnumsub(r: &Redis, topic: &str) -> i64 {
    let slot = fred::util::redis_keyslot(topic.as_bytes());
    let cmd = CustomCommand::new("PUBSUB SHARDNUMSUB", ClusterHash::Custom(slot), false);
    let v: Value = r.custom(cmd, vec![topic.to_owned()]).await.unwrap();
    let pairs: Vec<(String, i64)> = v.convert().unwrap();
    pairs.first().map(|(_, n)| *n).unwrap_or(0)
}

#[tokio::test]
async fn sharded_shardnumsub_is_the_number_of_edges_with_a_member_online() {
    let env = on_cluster().await;
    let (a, b) = (env.user("alice").await, env.user("bob").await);
    let ch = env.channel("general", &[&a, &b]).await;
    let (e1, e2) = (env.edge().await, env.edge().await);
    let r = redis_client(&env.redis_url).await;
    assert!(r.is_clustered());
    let topic = shared::topics::Topic::Channel(ch.id).name();
    let wait = |want: i64| {
        let (r, topic) = (&r, &topic);
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                let n = shardnumsub(r, topic).await;
                if n == want {
                    return;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "shardnumsub {topic} = {n}, want {want}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    wait(0).await;
    let ca = env.connect(&e1, &a).await;
    let cb = env.connect(&e2, &b).await;
    wait(2).await;
    drop(ca);
    wait(1).await;
    drop(cb);
    wait(0).await;
}

/// The port of the master that owns channel `id`'s topic.
fn owner(cluster: &RedisCluster, id: i64) -> u16 {
    let topic = shared::topics::Topic::Channel(id).name();
    cluster
        .master_for(fred::util::redis_keyslot(topic.as_bytes()))
        .unwrap()
}

/// Runs a blocking step on the cluster off the runtime, so traffic keeps flowing meanwhile.
async fn off_runtime(
    cluster: RedisCluster,
    step: impl FnOnce(&mut RedisCluster) + Send + 'static,
) -> RedisCluster {
    tokio::task::spawn_blocking(move || {
        let mut c = cluster;
        step(&mut c);
        c
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn sharded_shard_killed_and_restarted_every_socket_keeps_the_full_sequence() {
    let cluster = RedisCluster::start(3, 0).unwrap();
    let url = cluster.url();
    faults::full_sequence_through(url, 60, Duration::from_millis(20), |ch| async move {
        let port = owner(&cluster, ch);
        off_runtime(cluster, move |c| {
            c.kill(port).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            c.restart(port).unwrap();
        })
        .await
    })
    .await;
}

#[tokio::test]
async fn sharded_failover_to_a_replica_under_traffic_every_socket_keeps_the_full_sequence() {
    let cluster = RedisCluster::start(3, 1).unwrap();
    let url = cluster.url();
    // 80 messages over ~3.5 s (within the send rate limit): the master of the channel's shard
    // dies 0.4 s in and its replica takes over while the sends go on.
    faults::full_sequence_through(url, 80, Duration::from_millis(40), |ch| async move {
        let port = owner(&cluster, ch);
        let replica = cluster.replica_of(port).unwrap();
        off_runtime(cluster, move |c| {
            c.kill(port).unwrap();
            c.wait_master(replica, Duration::from_secs(20)).unwrap();
        })
        .await
    })
    .await;
}

#[tokio::test]
async fn sharded_subscriber_connections_killed_every_socket_keeps_the_full_sequence() {
    let cluster = RedisCluster::start(3, 0).unwrap();
    let url = cluster.url();
    faults::full_sequence_through(url, 60, Duration::from_millis(20), |_| async move {
        let mut killed = 0;
        for port in cluster.masters() {
            let out = cluster
                .command(port, &["CLIENT", "KILL", "TYPE", "pubsub"])
                .unwrap();
            killed += out.trim().parse::<u32>().unwrap();
        }
        // Each edge holds a subscriber connection on every shard where it subscribed a topic.
        assert!(killed >= 2, "killed {killed} subscriber connections");
        cluster
    })
    .await;
}

//! Redis subscriptions follow local members; membership and presence are live across edges.

use std::time::Duration;

use fred::interfaces::PubsubInterface;
use shared::protocol::{PresenceStatus, ServerFrame};
use shared::topics::Topic;

use crate::common::*;

async fn numsub(r: &Redis, topic: &str) -> i64 {
    let v: Vec<(String, i64)> = r.pubsub_numsub(topic).await.unwrap();
    v.first().map(|(_, n)| *n).unwrap_or(0)
}

/// Polls until `numsub(topic) == want` (generous deadline).
async fn wait_numsub(r: &Redis, topic: &str, want: i64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let n = numsub(r, topic).await;
        if n == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "numsub {topic} = {n}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn pubsub_numsub_is_the_number_of_edges_with_a_member_online() {
    let env = Env::new().await;
    let (a, b) = (env.user("alice").await, env.user("bob").await);
    let ch = env.channel("general", &[&a, &b]).await;
    let (e1, e2) = (env.edge().await, env.edge().await);
    let r = redis_client(&env.redis_url).await;
    let topic = shared::topics::Topic::Channel(ch.id).name();
    assert_eq!(numsub(&r, &topic).await, 0);
    let ca = env.connect(&e1, &a).await;
    let ca2 = env.connect(&e1, &a).await;
    let cb = env.connect(&e2, &b).await;
    wait_numsub(&r, &topic, 2).await;
    drop(ca);
    // Alice still has a socket on edge 1.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(numsub(&r, &topic).await, 2);
    drop(ca2);
    wait_numsub(&r, &topic, 1).await;
    drop(cb);
    wait_numsub(&r, &topic, 0).await;
}

#[tokio::test]
async fn membership_is_live_join_and_leave_reach_every_socket_of_the_user() {
    membership_is_live(Env::new().await).await;
}

/// A join and a leave reach every socket of the user on every edge, and its subscriptions.
pub async fn membership_is_live(env: Env) {
    let (a, b) = (env.user("alice").await, env.user("bob").await);
    let ch = env.channel("general", &[&a]).await;
    let (e1, e2) = (env.edge().await, env.edge().await);
    let mut sa = env.connect(&e1, &a).await;
    let mut b1 = env.connect(&e1, &b).await;
    let mut b2 = env.connect(&e2, &b).await;
    sa.send(ch.id, "before", "c0").await;

    // Bob joins, as the api-server does it: commit, then publish the events.
    env.store.join(ch.id, b.id).await.unwrap();
    let mine = env.store.my_channel(b.id, ch.id).await.unwrap().unwrap();
    // Published through the bus, as the servers do (on a Redis Cluster: on the topics' shards).
    let bus = bus(&env.redis_url).await;
    let added = ServerFrame::ChannelAdded {
        channel: mine.clone(),
    };
    bus.publish(Topic::User(b.id), &added);
    let joined = ServerFrame::MemberJoined {
        channel_id: ch.id,
        user_id: b.id,
        username: b.username.clone(),
    };
    bus.publish(Topic::Channel(ch.id), &joined);
    for s in [&mut b1, &mut b2] {
        assert_eq!(s.reply().await, added);
    }
    assert_eq!(sa.reply().await, joined);
    let m = sa.send(ch.id, "after join", "c1").await;
    for s in [&mut b1, &mut b2] {
        assert_eq!(s.messages(ch.id, 1).await, vec![m.clone()]);
    }
    // Bob can send there now, from either edge.
    b2.send(ch.id, "hi", "b1").await;

    // Bob leaves.
    env.store.leave(ch.id, b.id).await.unwrap();
    let removed = ServerFrame::ChannelRemoved { channel_id: ch.id };
    bus.publish(Topic::User(b.id), &removed);
    for s in [&mut b1, &mut b2] {
        // `member_joined` may or may not reach bob's own sockets first, depending on when
        // each edge subscribed: skip it.
        let f = s
            .until(|f| match f {
                ServerFrame::MemberJoined { .. } | ServerFrame::Message { .. } => None,
                f => Some(f.clone()),
            })
            .await;
        assert_eq!(f, removed);
    }
    sa.send(ch.id, "after leave", "c2").await;
    for s in [&mut b1, &mut b2] {
        s.no_message_within(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn presence_is_cluster_wide() {
    presence_across_edges(Env::new().await).await;
}

/// Online at a user's first socket in the cluster, offline at the last, whichever edges hold
/// them.
pub async fn presence_across_edges(env: Env) {
    let (a, b) = (env.user("alice").await, env.user("bob").await);
    env.channel("general", &[&a, &b]).await;
    let (e1, e2) = (env.edge().await, env.edge().await);
    let mut cb = env.connect(&e2, &b).await;
    let online = ServerFrame::Presence {
        user_id: a.id,
        status: PresenceStatus::Online,
    };
    let offline = ServerFrame::Presence {
        user_id: a.id,
        status: PresenceStatus::Offline,
    };
    let ca = env.connect(&e1, &a).await;
    cb.until(|f| (f == &online).then_some(())).await;
    // A second socket of alice on the other edge: no new event; closing one keeps her online.
    let ca2 = env.connect(&e2, &a).await;
    drop(ca);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = cb.sync().await;
    assert!(!seen.contains(&offline), "{seen:?}");
    drop(ca2);
    cb.until(|f| (f == &offline).then_some(())).await;
}

#[tokio::test]
async fn typing_and_read_reach_the_other_members() {
    let env = Env::new().await;
    let (a, b) = (env.user("alice").await, env.user("bob").await);
    let ch = env.channel("general", &[&a, &b]).await;
    let (e1, e2) = (env.edge().await, env.edge().await);
    let mut ca = env.connect(&e1, &a).await;
    let mut cb = env.connect(&e2, &b).await;
    let m = ca.send(ch.id, "hi", "c1").await;
    assert_eq!(cb.messages(ch.id, 1).await, vec![m]);

    ca.send_json(serde_json::json!({"type": "typing", "channel_id": ch.id}))
        .await;
    let typing = ServerFrame::Typing {
        channel_id: ch.id,
        user_id: a.id,
        username: "alice".into(),
    };
    assert_eq!(cb.reply().await, typing);

    cb.send_json(serde_json::json!({"type": "read", "channel_id": ch.id, "seq": 1}))
        .await;
    let read = ServerFrame::Read {
        channel_id: ch.id,
        user_id: b.id,
        seq: 1,
    };
    assert_eq!(ca.reply().await, read);
    let mine = env.store.my_channel(b.id, ch.id).await.unwrap().unwrap();
    assert_eq!((mine.last_read_seq, mine.unread), (1, 0));
    // The typing user's own sockets do not get their `typing` back.
    let seen = ca.sync().await;
    assert!(!seen.contains(&typing), "{seen:?}");
}

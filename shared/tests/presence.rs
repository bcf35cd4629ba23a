//! Presence leases against a real Redis: a live edge's users are online, a dead edge's users
//! are swept offline exactly once.

#![allow(clippy::unwrap_used)]

use fred::prelude::*;
use shared::presence;
use shared::topics::Topic;

async fn redis() -> Client {
    testkit::redis_client(&testkit::redis_url()).await.unwrap()
}

#[tokio::test]
async fn presence_follows_sockets_and_leases() {
    let r = redis().await;
    let (e1, e2) = (
        format!("e1-{}", std::process::id()),
        format!("e2-{}", std::process::id()),
    );
    let (u1, u2) = (910_000_001, 910_000_002);
    presence::refresh_lease(&r, &e1).await.unwrap();
    presence::refresh_lease(&r, &e2).await.unwrap();
    assert_eq!(presence::socket_opened(&r, &e1, u1).await.unwrap(), 1);
    assert_eq!(presence::socket_opened(&r, &e1, u1).await.unwrap(), 2);
    presence::socket_opened(&r, &e2, u2).await.unwrap();
    let on = presence::online_users(&r).await.unwrap();
    assert!(on.contains(&u1) && on.contains(&u2));

    assert_eq!(presence::socket_closed(&r, &e1, u1).await.unwrap(), 1);
    assert!(presence::online_users(&r).await.unwrap().contains(&u1));
    assert_eq!(presence::socket_closed(&r, &e1, u1).await.unwrap(), 0);
    assert!(!presence::online_users(&r).await.unwrap().contains(&u1));

    // Edge 2 dies: its lease disappears (as if expired). Its user is offline at once for
    // readers, and exactly one sweeper claims it.
    let _: i64 = r.del(presence::lease_key(&e2)).await.unwrap();
    assert!(!presence::online_users(&r).await.unwrap().contains(&u2));
    let swept = presence::sweep_dead_edges(&r).await.unwrap();
    assert!(swept.contains(&u2));
    assert!(!presence::sweep_dead_edges(&r).await.unwrap().contains(&u2));
    let _ = presence::release(&r, &e1).await.unwrap();
}

/// The last socket of a user closing on one edge while a new one opens on another, for many
/// users at once: every user ends online, and each either saw no event or `offline` then
/// `online` (never a lone `offline` for a user who is online).
#[tokio::test]
async fn racing_close_and_open_on_two_edges_leave_the_user_online() {
    use shared::presence::PresenceEvent;
    use shared::protocol::PresenceStatus;
    use std::collections::HashMap;

    let r = redis().await;
    let (e1, e2) = (
        format!("race1-{}", std::process::id()),
        format!("race2-{}", std::process::id()),
    );
    presence::refresh_lease(&r, &e1).await.unwrap();
    presence::refresh_lease(&r, &e2).await.unwrap();
    let users: Vec<i64> = (0..200).map(|i| 920_000_000 + i).collect();
    for &u in &users {
        presence::socket_change(&r, &e1, u, 1, &[1]).await.unwrap();
    }

    let sub = Builder::from_config(Config::from_url(&testkit::redis_url()).unwrap())
        .with_performance_config(|p| p.broadcast_channel_capacity = 1 << 12)
        .build_subscriber_client()
        .unwrap();
    sub.init().await.unwrap();
    let mut rx = sub.message_rx();
    sub.subscribe(Topic::Presence.name()).await.unwrap();
    // Read as they come (the client's broadcast buffer is small), until the end marker.
    let collector = tokio::spawn(async move {
        let mut texts = Vec::new();
        loop {
            let m = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
                .await
                .expect("the end marker within 10 s")
                .unwrap();
            let text: String = m.value.convert().unwrap();
            if text == "end" {
                return texts;
            }
            texts.push(text);
        }
    });

    let races = users.iter().map(|&u| {
        let (r, e1, e2) = (r.clone(), e1.clone(), e2.clone());
        async move {
            let close = presence::socket_change(&r, &e1, u, -1, &[1]);
            let open = presence::socket_change(&r, &e2, u, 1, &[1]);
            let (c, o) = tokio::join!(close, open);
            assert_eq!((c.unwrap(), o.unwrap()), (0, 1));
        }
    });
    futures_util::future::join_all(races).await;
    // A marker published after every change: everything before it has been received.
    let _: i64 = r.publish(Topic::Presence.name(), "end").await.unwrap();

    let mut seen: HashMap<i64, Vec<PresenceStatus>> = HashMap::new();
    for text in collector.await.unwrap() {
        let ev: PresenceEvent = serde_json::from_str(&text).unwrap();
        if users.contains(&ev.user_id) {
            seen.entry(ev.user_id).or_default().push(ev.status);
        }
    }
    let online = presence::online_users(&r).await.unwrap();
    for &u in &users {
        assert!(online.contains(&u), "user {u} is not online");
        let evs = seen.remove(&u).unwrap_or_default();
        assert!(
            evs.is_empty() || evs == [PresenceStatus::Offline, PresenceStatus::Online],
            "user {u} saw {evs:?}"
        );
    }
    let _ = sub.quit().await;
    let _ = presence::release(&r, &e1).await.unwrap();
    let _ = presence::release(&r, &e2).await.unwrap();
}

//! Presence leases against a real Redis: a live edge's users are online, a dead edge's users
//! are swept offline exactly once.

#![allow(clippy::unwrap_used)]

use fred::prelude::*;
use shared::presence;

async fn redis() -> Client {
    let c = Client::new(
        Config::from_url(&testkit::redis_url()).unwrap(),
        None,
        None,
        None,
    );
    c.init().await.unwrap();
    c
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

//! Channel moderation through the api-server, seen on the edges: an admin removes a member,
//! whose sockets on every edge get `channel_removed` within a second and nothing of the channel
//! after it; who may remove whom.

use std::time::{Duration, Instant};

use shared::protocol::ServerFrame;
use tokio_util::sync::CancellationToken;

use crate::common::*;
use crate::transports::api_server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_by_an_admin_stops_receiving_the_channel_on_every_edge_within_1s() {
    let env = Env::new().await;
    let (owner, admin) = (env.user("olga").await, env.user("adam").await);
    let (bob, carol) = (env.user("bob").await, env.user("carol").await);
    let ch = env
        .channel("general", &[&owner, &admin, &bob, &carol])
        .await;
    let (e1, e2) = (env.edge().await, env.edge().await);
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    let api = api_server(&env, &stop).await;
    let http = reqwest::Client::new();
    let members = |id: i64| format!("{api}/api/channels/{}/members/{id}", ch.id);
    let r = http
        .put(format!("{}/role", members(admin.id)))
        .bearer_auth(env.token(&owner))
        .json(&serde_json::json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let remove = |by: &shared::protocol::User, id: i64| {
        http.delete(members(id)).bearer_auth(env.token(by)).send()
    };
    let mut so = env.connect(&e1, &owner).await;
    let (mut b1, mut b2) = (env.connect(&e1, &bob).await, env.connect(&e2, &bob).await);

    // A member removes no one; an admin neither the owner.
    assert_eq!(remove(&bob, carol.id).await.unwrap().status(), 403);
    assert_eq!(remove(&admin, owner.id).await.unwrap().status(), 403);

    let asked = Instant::now();
    assert_eq!(remove(&admin, bob.id).await.unwrap().status(), 204);
    let removed = ServerFrame::ChannelRemoved { channel_id: ch.id };
    for s in [&mut b1, &mut b2] {
        s.until(|f| (f == &removed).then_some(())).await;
    }
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "channel_removed after {:?}",
        asked.elapsed()
    );
    so.send(ch.id, "after the removal", "x1").await;
    for s in [&mut b1, &mut b2] {
        s.no_message_within(Duration::from_millis(300)).await;
    }
    // Bob can no longer send there; a second removal changes nothing.
    b1.send_json(serde_json::json!({
        "type": "send", "channel_id": ch.id, "content": "still here?", "client_msg_id": "b"
    }))
    .await;
    match b1.reply().await {
        ServerFrame::Error { code, .. } => {
            assert_eq!(code, shared::protocol::ErrorCode::Forbidden)
        }
        f => panic!("{f:?}"),
    }
    assert_eq!(remove(&admin, bob.id).await.unwrap().status(), 204);
    assert!(!env.store.is_member(ch.id, bob.id).await.unwrap());
}

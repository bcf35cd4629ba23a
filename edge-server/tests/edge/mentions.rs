//! Mentions, live and counted: a message naming a member (`@username`) sends a `mention` to
//! each of their sockets on every edge (not to the sender's, not for a stranger), and
//! `GET /api/me/channels` counts the unread ones until a read marker passes them.

use std::time::Duration;

use shared::protocol::ServerFrame;
use tokio_util::sync::CancellationToken;

use crate::common::*;
use crate::transports::api_server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_reaches_every_socket_of_the_member_named_and_counts_until_read() {
    let env = Env::new().await;
    let (alice, bob, eve) = (
        env.user("alice").await,
        env.user("bob").await,
        env.user("eve").await,
    );
    let ch = env.channel("general", &[&alice, &bob]).await;
    let (e1, e2) = (env.edge().await, env.edge().await);
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    let api = api_server(&env, &stop).await;
    let mut sa = env.connect(&e1, &alice).await;
    let (mut b1, mut b2) = (env.connect(&e1, &bob).await, env.connect(&e2, &bob).await);

    // Eve is no member: naming her is no mention. Alice names herself: stored, but no
    // `mention` for her and nothing counted for her.
    let m = sa.send(ch.id, "@eve @alice hi @Bob, see this.", "m1").await;
    assert_eq!(m.mentions, vec![alice.id, bob.id]);
    for s in [&mut b1, &mut b2] {
        let got = s
            .until(|f| matches!(f, ServerFrame::Mention { .. }).then(|| f.clone()))
            .await;
        assert_eq!(
            got,
            ServerFrame::Mention {
                channel_id: ch.id,
                seq: m.seq,
                message_id: m.id,
                sender_id: alice.id,
                sender: "alice".into(),
            }
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mine = sa.sync().await;
    assert!(
        !mine
            .iter()
            .any(|f| matches!(f, ServerFrame::Mention { .. })),
        "{mine:?}"
    );
    let _ = eve;
    let of = |token: String| {
        let api = api.clone();
        async move {
            let body = api_get(&api, &token, "/api/me/channels").await;
            body["channels"][0]["mentions"].as_i64().unwrap()
        }
    };
    assert_eq!(of(env.token(&alice)).await, 0, "her own mention of herself");

    assert_eq!(of(env.token(&bob)).await, 1);
    sa.send(ch.id, "no names here", "m2").await;
    let again = sa.send(ch.id, "@bob again", "m3").await;
    assert_eq!(of(env.token(&bob)).await, 2);
    b1.send_json(serde_json::json!({"type": "read", "channel_id": ch.id, "seq": m.seq}))
        .await;
    b1.sync().await;
    assert_eq!(of(env.token(&bob)).await, 1, "the first one is read");
    b1.send_json(serde_json::json!({"type": "read", "channel_id": ch.id, "seq": again.seq}))
        .await;
    b1.sync().await;
    assert_eq!(of(env.token(&bob)).await, 0);
}

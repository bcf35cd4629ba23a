//! The socket's session: slow work (a `resume` replay waiting on PostgreSQL) runs beside the
//! socket's loop, so live events and pings keep flowing, and replies keep their order; and
//! what one send leaves in `/metrics`.

use std::time::Duration;

use futures_util::StreamExt;
use shared::protocol::ServerFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::common::*;

/// Bob missed message 1; his `resume` must read it from PostgreSQL, where another session
/// holds the messages table locked. Meanwhile Alice's typing reaches him and the edge pings
/// him. Once the lock goes, the replay arrives, then `resumed`, then the `pong` he asked for
/// after the resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_up_resume_holds_up_neither_live_events_nor_pings() {
    let env = Env::new().await;
    let (a, b) = (env.user("alice").await, env.user("bob").await);
    let ch = env.channel("general", &[&a, &b]).await;
    let edge = env
        .edge_with(|c| c.ping_interval = Duration::from_millis(200))
        .await;
    let mut sa = env.connect(&edge, &a).await;
    sa.send(ch.id, "m1", "c1").await;
    let mut rb = env.connect(&edge, &b).await;

    let (locker, conn) = tokio_postgres::connect(&env.db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    locker
        .batch_execute("BEGIN; LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    rb.send_json(serde_json::json!({"type": "resume", "channels": {ch.id.to_string(): 0}}))
        .await;
    rb.send_json(serde_json::json!({"type": "ping"})).await;
    sa.send_json(serde_json::json!({"type": "typing", "channel_id": ch.id}))
        .await;

    let (mut typing, mut pings) = (false, 0);
    while !(typing && pings >= 2) {
        let m = tokio::time::timeout(WAIT, rb.ws.next())
            .await
            .expect("live traffic stopped while the resume waited")
            .unwrap()
            .unwrap();
        match m {
            WsMessage::Ping(_) => pings += 1,
            WsMessage::Text(t) => match serde_json::from_str::<ServerFrame>(&t).unwrap() {
                ServerFrame::Typing { user_id, .. } if user_id == a.id => typing = true,
                ServerFrame::Presence { .. } => {}
                f => panic!("{f:?} arrived while the replay was held up"),
            },
            _ => {}
        }
    }

    locker.batch_execute("COMMIT").await.unwrap();
    let mut after = Vec::new();
    while after.last() != Some(&ServerFrame::Pong) {
        match rb.frame().await {
            ServerFrame::Presence { .. } => {}
            f => after.push(f),
        }
    }
    let seqs: Vec<i64> = after
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Message { message } => Some(message.seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [1], "{after:?}");
    assert_eq!(
        after[1..],
        [ServerFrame::Resumed, ServerFrame::Pong],
        "replies in the order asked"
    );
}

/// The group committer records into the edge's own recorder: one send shows up in the batch
/// size and commit time histograms of `/metrics`, labelled with the edge.
#[tokio::test]
async fn metrics_show_group_commit_histograms_after_a_send() {
    let env = Env::new().await;
    let a = env.user("alice").await;
    let ch = env.channel("general", &[&a]).await;
    let edge = env.edge().await;
    let mut sa = env.connect(&edge, &a).await;
    sa.send(ch.id, "hi", "c1").await;
    let (status, text) = http_get(&edge.url("/metrics"), &[]).await;
    assert_eq!(status, 200);
    for series in [
        "chat_group_commit_batch_size_bucket{edge=\"",
        "chat_group_commit_seconds_bucket{edge=\"",
        "edge_sends_acked_total{edge=\"",
    ] {
        assert!(text.contains(series), "{series} missing:\n{text}");
    }
    let count = testkit::metric(&text, "chat_group_commit_batch_size_count");
    assert_eq!(count, Some(1.0), "{text}");
}

//! A client that knows only `message` frames (and ignores every other type, as SPEC 4 clients
//! do) keeps working in a channel whose log interleaves events with messages: it gets every
//! message once, in seq order (with gaps where events are), live and through `resume`.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::common::*;

/// A socket read as plain JSON: the `message` frames' seqs of channel `ch` until `n` of them,
/// counting the frames of other types it skipped.
async fn plain_messages(ws: &mut Ws, ch: i64, n: usize) -> (Vec<i64>, usize) {
    let (mut seqs, mut skipped) = (Vec::new(), 0);
    while seqs.len() < n {
        let m = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
        let Some(Ok(WsMessage::Text(t))) = m else {
            panic!("socket closed: {m:?}");
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        match v["type"].as_str() {
            Some("message") if v["message"]["channel_id"] == ch => {
                seqs.push(v["message"]["seq"].as_i64().unwrap());
            }
            Some("error") => panic!("{v}"),
            _ => skipped += 1,
        }
    }
    (seqs, skipped)
}

#[tokio::test]
async fn a_client_that_knows_only_messages_keeps_working_between_events() {
    let env = Env::new().await;
    let (a, b) = (env.user("alice").await, env.user("bob").await);
    let ch = env.channel("general", &[&a, &b]).await;
    let edge = env.edge().await;
    let mut sa = env.connect(&edge, &a).await;
    let url = format!("ws://{}/ws?token={}", edge.addr, env.token(&b));
    let (mut plain, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let change = |m: &shared::Message, kind: &str, key: &str| {
        json!({"type": kind, "channel_id": ch.id, "message_id": m.id.to_string(),
               "emoji": "👍", "content": "edited", "client_msg_id": key})
    };
    let m1 = sa.send(ch.id, "one", "m1").await;
    sa.send_json(change(&m1, "react", "r1")).await;
    sa.send_json(change(&m1, "edit", "e1")).await;
    sa.sync().await;
    let m2 = sa.send(ch.id, "two", "m2").await;
    let (seqs, skipped) = plain_messages(&mut plain, ch.id, 2).await;
    assert_eq!(seqs, [m1.seq, m2.seq]);
    assert_eq!((m1.seq, m2.seq), (1, 4));
    // `ready` and the two events, ignored.
    assert!(skipped >= 3, "{skipped}");
    // It sends as before, and a resume from its last message gets what it missed.
    plain
        .send(WsMessage::text(
            json!({"type": "send", "channel_id": ch.id, "content": "hi", "client_msg_id": "p1"})
                .to_string(),
        ))
        .await
        .unwrap();
    let hi = loop {
        let Some(Ok(WsMessage::Text(t))) = plain.next().await else {
            panic!("socket closed");
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        if v["type"] == "ack" {
            break v["message"]["seq"].as_i64().unwrap();
        }
    };
    drop(plain);
    sa.send_json(change(&m2, "delete", "d1")).await;
    // Replies leave in the order frames came: after the pong, the delete is recorded.
    sa.sync().await;
    let m3 = sa.send(ch.id, "three", "m3").await;
    let (mut plain, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    plain
        .send(WsMessage::text(
            json!({"type": "resume", "channels": {ch.id.to_string(): m2.seq}}).to_string(),
        ))
        .await
        .unwrap();
    // Its own message, the delete (skipped), the next message.
    let (seqs, _) = plain_messages(&mut plain, ch.id, 2).await;
    assert_eq!(seqs, [hi, m3.seq]);
    assert_eq!(m3.seq, hi + 2);
}

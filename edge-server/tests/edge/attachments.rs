//! Attachments over WebSocket: a `send` frame carries the ids of files uploaded over REST; its
//! `ack`, every member's `message` and the history show them. Someone else's file, a file of
//! another channel or an unknown id is refused with a `validation` error, and nothing is sent.

use std::time::Duration;

use serde_json::{json, Value};
use shared::protocol::{ErrorCode, ServerFrame};
use tokio_util::sync::CancellationToken;

use crate::common::*;
use crate::transports::api_server;

async fn upload(api: &str, token: &str, channel: i64, name: &str, body: &[u8]) -> Value {
    let r = reqwest::Client::new()
        .post(format!(
            "{api}/api/channels/{channel}/attachments?name={name}"
        ))
        .bearer_auth(token)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_send_carries_attachments_uploaded_over_rest() {
    let env = Env::new().await;
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let ch = env.channel("general", &[&alice, &bob]).await;
    let other = env.channel("other", &[&alice]).await;
    let edge = env.edge().await;
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    let api = api_server(&env, &stop).await;
    let (at, bt) = (env.token(&alice), env.token(&bob));
    let pdf = upload(&api, &at, ch.id, "report.pdf", b"%PDF-1.7\nbody").await;
    let txt = upload(&api, &at, ch.id, "notes.txt", b"some notes").await;
    let bobs = upload(&api, &bt, ch.id, "bob.txt", b"bob's").await;
    let elsewhere = upload(&api, &at, other.id, "x.txt", b"x").await;

    let mut sa = env.connect(&edge, &alice).await;
    let mut sb = env.connect(&edge, &bob).await;
    sa.send_json(json!({
        "type": "send", "channel_id": ch.id, "content": "two files", "client_msg_id": "a1",
        "attachments": [pdf["id"], txt["id"]]
    }))
    .await;
    let acked = sa
        .until(|f| match f {
            ServerFrame::Ack {
                client_msg_id,
                message,
                ..
            } if client_msg_id.as_deref() == Some("a1") => Some(message.clone()),
            ServerFrame::Error { message, .. } => panic!("refused: {message}"),
            _ => None,
        })
        .await;
    assert_eq!(
        serde_json::to_value(&acked.attachments).unwrap(),
        json!([pdf, txt])
    );
    let live = sb.messages(ch.id, 1).await.remove(0);
    assert_eq!((live.id, &live.attachments), (acked.id, &acked.attachments));

    // Bob's file, a file of another channel, an unknown id, one id twice: refused.
    let bad = [
        json!([bobs["id"]]),
        json!([elsewhere["id"]]),
        json!(["nope"]),
        json!([pdf["id"], pdf["id"]]),
    ];
    for (i, ids) in bad.into_iter().enumerate() {
        let cmid = format!("bad-{i}");
        sa.send_json(json!({
            "type": "send", "channel_id": ch.id, "content": "no", "client_msg_id": cmid,
            "attachments": ids
        }))
        .await;
        let code = sa
            .until(|f| match f {
                ServerFrame::Error {
                    client_msg_id,
                    code,
                    ..
                } if client_msg_id.as_deref() == Some(cmid.as_str()) => Some(*code),
                ServerFrame::Ack { .. } => panic!("{cmid} was sent"),
                _ => None,
            })
            .await;
        assert_eq!(code, ErrorCode::Validation, "{cmid}");
    }
    // The socket is still open and nothing more reached Bob.
    sb.no_message_within(Duration::from_millis(300)).await;
    let again = sa.send(ch.id, "still here", "a2").await;
    assert!(again.attachments.is_empty());

    // The history shows the files on the message.
    let h = api_get(&api, &bt, &format!("/api/channels/{}/messages", ch.id)).await;
    let first = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["seq"] == json!(acked.seq))
        .cloned()
        .unwrap();
    assert_eq!(first["attachments"], json!([pdf, txt]));
}

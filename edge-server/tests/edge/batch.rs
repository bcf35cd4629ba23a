//! Batched delivery (subprotocol `chat.v1.batch`): a batch socket gets the same server frames
//! as a plain one, in the same order, several to a WebSocket frame.

use chat_client::{Connection, WebSocketConfig};

use crate::common::*;

/// The channel events a socket read, as text, once `messages` messages have come.
async fn events_until(conn: &mut Connection, messages: usize) -> Vec<String> {
    let mut got = Vec::new();
    let mut seen = 0;
    while seen < messages {
        let text = tokio::time::timeout(WAIT, conn.next_text())
            .await
            .expect("a frame in time")
            .expect("socket open");
        let v: serde_json::Value = serde_json::from_str(&text).expect("each frame is JSON");
        match v["type"].as_str() {
            Some("message") => seen += 1,
            Some("typing" | "read") => {}
            _ => continue, // presence and the like: per socket, not compared
        }
        got.push(text.to_string());
    }
    got
}

#[tokio::test]
async fn a_batched_and_a_plain_client_get_the_same_events_in_the_same_order() {
    let env = Env::new().await;
    let (alice, bob, carol) = (
        env.user("alice").await,
        env.user("bob").await,
        env.user("carol").await,
    );
    let ch = env.channel("general", &[&alice, &bob, &carol]).await;
    let edge = env
        .edge_with(|c| {
            c.limits.send_rate_per_sec = 10_000.0;
            c.limits.send_burst = 10_000.0;
        })
        .await;
    let url = |u: &shared::protocol::User| format!("ws://{}/ws?token={}", edge.addr, env.token(u));

    // A plain socket: one frame per event.
    let (mut plain, _) = Connection::open(&url(&bob), None, WebSocketConfig::default(), false)
        .await
        .expect("bob connects");
    assert!(!plain.batched());
    // Carol's receive buffer is tiny and she does not read while alice sends: the edge's writes
    // block, her frames queue up, and once she reads they come several to a frame.
    let stream = tiny_window(edge.addr).await;
    let (mut batched, _) =
        Connection::open_on(stream, &url(&carol), WebSocketConfig::default(), true)
            .await
            .expect("carol connects");
    assert!(
        batched.batched(),
        "the edge agreed to {}",
        chat_client::BATCH_PROTOCOL
    );

    let mut sender = env.connect(&edge, &alice).await;
    sender.sync().await;
    const N: usize = 300;
    let body = "z".repeat(600);
    for i in 1..=N {
        let m = sender
            .send(ch.id, &format!("{i} {body}"), &format!("c{i}"))
            .await;
        if i % 7 == 0 {
            sender
                .send_json(serde_json::json!({"type": "typing", "channel_id": ch.id}))
                .await;
        }
        if i % 11 == 0 {
            sender
                .send_json(serde_json::json!({"type": "read", "channel_id": ch.id, "seq": m.seq}))
                .await;
        }
    }

    let (a, b) = tokio::join!(events_until(&mut plain, N), events_until(&mut batched, N));
    assert_eq!(
        a.len(),
        N + N / 7 + N / 11,
        "messages, typing and read events"
    );
    assert_eq!(a, b, "the same frames in the same order");
    assert!(
        batched.batches_read() > 0,
        "carol's frames came batched ({} batch frames)",
        batched.batches_read()
    );
    assert_eq!(plain.batches_read(), 0);
}

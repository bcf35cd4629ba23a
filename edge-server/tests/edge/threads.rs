//! A reply carries its `thread_root`, and its root's `thread_updated` event follows it in the
//! channel's seq stream, on every edge.

use serde_json::json;
use shared::protocol::{Change, ServerFrame};

use crate::changes::{entries, nothing_more};
use crate::common::*;

#[tokio::test]
async fn a_reply_is_followed_by_its_roots_thread_update_in_seq_order() {
    let env = Env::new().await;
    let (a, b) = (env.user("alice").await, env.user("bob").await);
    let ch = env.channel("general", &[&a, &b]).await;
    let (e1, e2) = (env.edge().await, env.edge().await);
    let mut rb = env.connect(&e2, &b).await;
    let mut sa = env.connect(&e1, &a).await;
    let root = sa.send(ch.id, "root", "m1").await;
    for key in ["m2", "m3"] {
        sa.send_json(json!({"type": "send", "channel_id": ch.id, "content": "re",
                            "client_msg_id": key, "reply_to": root.seq}))
            .await;
        let reply = sa
            .until(|f| match f {
                ServerFrame::Ack {
                    client_msg_id,
                    message,
                    ..
                } if client_msg_id.as_deref() == Some(key) => Some(message.clone()),
                _ => None,
            })
            .await;
        assert_eq!(reply.thread_root, Some(root.seq));
    }
    let log = entries(&mut rb, ch.id, 5).await;
    let mut counts = Vec::new();
    for (i, f) in log.iter().enumerate() {
        match f {
            ServerFrame::Message { message } => {
                assert_eq!(message.seq, i as i64 + 1);
                if message.seq > 1 {
                    assert_eq!(message.thread_root, Some(root.seq));
                }
            }
            ServerFrame::Event { event } => {
                assert_eq!((event.seq, event.message_id), (i as i64 + 1, root.id));
                match &event.change {
                    Change::ThreadUpdated { reply_count, .. } => counts.push(*reply_count),
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}"),
        }
    }
    // Each event says how many replies there are when it is recorded: never fewer than the
    // replies before it in the stream, and 2 in the end.
    assert_eq!(counts.len(), 2);
    assert_eq!(counts.last(), Some(&2));
    nothing_more(&mut rb).await;
}

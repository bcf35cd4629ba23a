//! Mixed traffic: sends, edits and reactions from two sockets on two edges at once. Every
//! observer on either edge gets the channel's whole log once, in seq order, as PostgreSQL
//! holds it.

use serde_json::json;
use shared::protocol::ServerFrame;
use shared::store::Entry;

use crate::changes::{entries, nothing_more};
use crate::common::*;

/// Sends `n` messages; after every third it reacts to its last one, after every fifth it edits
/// it. Each change waits for its answer (through `until`, which skips the channel's frames).
fn actor(mut s: Client, ch: i64, tag: &'static str, n: usize) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for i in 0..n {
            let m = s
                .send(ch, &format!("{tag}{i}"), &format!("{tag}-m{i}"))
                .await;
            let mut changes = Vec::new();
            if i % 3 == 0 {
                changes.push(json!({"type": "react", "channel_id": ch,
                    "message_id": m.id.to_string(), "emoji": "👍", "client_msg_id": format!("{tag}-r{i}")}));
            }
            if i % 5 == 0 {
                changes.push(json!({"type": "edit", "channel_id": ch,
                    "message_id": m.id.to_string(), "content": "edited", "client_msg_id": format!("{tag}-e{i}")}));
            }
            for c in changes {
                let key = c["client_msg_id"].as_str().map(str::to_owned);
                s.send_json(c).await;
                s.until(|f| match f {
                    ServerFrame::Ack {
                        client_msg_id,
                        event: Some(_),
                        ..
                    } if *client_msg_id == key => Some(()),
                    ServerFrame::Error { .. } => panic!("{f:?}"),
                    _ => None,
                })
                .await;
            }
        }
    })
}

#[tokio::test]
async fn mixed_sends_and_changes_on_two_edges_reach_every_socket_once_in_seq_order() {
    let env = Env::new().await;
    let (a, b, c, d) = (
        env.user("alice").await,
        env.user("bob").await,
        env.user("carol").await,
        env.user("dave").await,
    );
    let ch = env.channel("general", &[&a, &b, &c, &d]).await;
    let (e1, e2) = (env.edge().await, env.edge().await);
    let mut rc = env.connect(&e1, &c).await;
    let mut rd = env.connect(&e2, &d).await;
    let ta = actor(env.connect(&e1, &a).await, ch.id, "a", 30);
    let tb = actor(env.connect(&e2, &b).await, ch.id, "b", 30);
    ta.await.unwrap();
    tb.await.unwrap();
    // 60 messages, 2 x 10 reactions, 2 x 6 edits.
    let n = env.store.channel(ch.id).await.unwrap().unwrap().last_seq;
    assert_eq!(n, 60 + 20 + 12);
    let log = env.store.log_between(ch.id, 0, n, 1000).await.unwrap();
    let want: Vec<(i64, &str)> = log
        .iter()
        .map(|e| match e {
            Entry::Message(m) => (m.seq, "message"),
            Entry::Event(e) => (e.seq, e.change.kind()),
        })
        .collect();
    for r in [&mut rc, &mut rd] {
        let got: Vec<(i64, &str)> = entries(r, ch.id, n as usize)
            .await
            .iter()
            .map(|f| match f {
                ServerFrame::Message { message } => (message.seq, "message"),
                ServerFrame::Event { event } => (event.seq, event.change.kind()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(got, want);
        nothing_more(r).await;
    }
}

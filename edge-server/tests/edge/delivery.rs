//! Durable, gap-free, idempotent, exactly-once delivery across edges, and resume.

use std::time::Duration;

use fred::interfaces::PubsubInterface;
use shared::protocol::ServerFrame;
use shared::store::NewMessage;
use shared::topics::Topic;

use crate::common::*;

#[tokio::test]
async fn ready_is_the_first_frame_with_the_users_channels() {
    let env = Env::new().await;
    let alice = env.user("alice").await;
    let ch = env.channel("general", &[&alice]).await;
    let edge = env.edge_with(|c| c.edge_id = "edge-ready".into()).await;
    let c = env.connect(&edge, &alice).await;
    match c.ready {
        ServerFrame::Ready {
            session_id,
            user,
            edge,
            channels,
        } => {
            assert!(!session_id.is_empty());
            assert_eq!(user, alice);
            assert_eq!(edge, "edge-ready");
            assert_eq!(channels.len(), 1);
            assert_eq!((channels[0].id, channels[0].last_seq), (ch.id, 0));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn durable_before_visible_acked_messages_are_committed() {
    let env = Env::new().await;
    let alice = env.user("alice").await;
    let ch = env.channel("general", &[&alice]).await;
    let edge = env.edge().await;
    let mut c = env.connect(&edge, &alice).await;
    let acked = c.send(ch.id, "hello", "c-1").await;
    assert_eq!((acked.seq, acked.content.as_str()), (1, "hello"));
    // The edge goes away right after the ack: the message is in PostgreSQL.
    edge.stop().await;
    let h = env.store.history(ch.id, None, None, 10).await.unwrap();
    assert_eq!(h.messages, vec![acked]);
}

#[tokio::test]
async fn idempotent_sends_a_retry_gets_the_original_ack() {
    let env = Env::new().await;
    let alice = env.user("alice").await;
    let ch = env.channel("general", &[&alice]).await;
    let edge = env.edge().await;
    let mut c = env.connect(&edge, &alice).await;
    let first = c.send(ch.id, "once", "c-7").await;
    let mut c2 = env.connect(&edge, &alice).await;
    let retry = c2.send(ch.id, "once", "c-7").await;
    assert_eq!(first, retry);
    let h = env.store.history(ch.id, None, None, 10).await.unwrap();
    assert_eq!(h.messages.len(), 1);
}

#[tokio::test]
async fn gap_free_order_two_senders_on_two_edges_same_order_everywhere() {
    gap_free_order(Env::new().await).await;
}

/// Two senders on two edges: every socket gets the channel's messages once, in the order of
/// PostgreSQL's history.
pub async fn gap_free_order(env: Env) {
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
    let mut sa = env.connect(&e1, &a).await;
    let mut sb = env.connect(&e2, &b).await;
    const N: usize = 40;
    let ta = tokio::spawn(async move {
        for i in 0..N {
            sa.send(ch.id, &format!("a{i}"), &format!("a-{i}")).await;
        }
        sa
    });
    let tb = tokio::spawn(async move {
        for i in 0..N {
            sb.send(ch.id, &format!("b{i}"), &format!("b-{i}")).await;
        }
        sb
    });
    let (mut sa, mut sb) = (ta.await.unwrap(), tb.await.unwrap());
    let total = 2 * N;
    let got_c = rc.messages(ch.id, total).await;
    let got_d = rd.messages(ch.id, total).await;
    let got_a = sa.messages(ch.id, total).await;
    let got_b = sb.messages(ch.id, total).await;
    assert_seqs(&got_c, 1, total as i64);
    let history = env
        .store
        .history(ch.id, None, Some(0), 500)
        .await
        .unwrap()
        .messages;
    assert_eq!(got_c, history);
    assert_eq!(got_d, history);
    assert_eq!(got_a, history);
    assert_eq!(got_b, history);
    // Nothing more arrives: each message came exactly once.
    for s in [&mut rc, &mut rd] {
        assert!(s
            .sync()
            .await
            .iter()
            .all(|f| !matches!(f, ServerFrame::Message { .. })));
    }
}

#[tokio::test]
async fn exactly_once_in_order_when_redis_loses_reorders_and_duplicates_publishes() {
    exactly_once_through_a_lossy_bus(Env::new().await).await;
}

/// Publishes lost, reordered and doubled (sent through the bus as a server would, so a Redis
/// Cluster gets them on the channel's shard): the socket still gets each message once, in order.
pub async fn exactly_once_through_a_lossy_bus(env: Env) {
    let (a, b) = (env.user("alice").await, env.user("bob").await);
    let ch = env.channel("general", &[&a, &b]).await;
    let edge = env.edge().await;
    let mut rb = env.connect(&edge, &b).await;
    let store_msg = |n: i64| NewMessage {
        channel_id: ch.id,
        sender_id: a.id,
        content: format!("m{n}"),
        client_msg_id: None,
        reply_to: None,
        attachments: Vec::new(),
    };
    let mut stored = Vec::new();
    for n in 1..=5 {
        match env.store.send(store_msg(n)).await.unwrap() {
            shared::store::SendOutcome::Stored(m) => stored.push(m),
            o => panic!("{o:?}"),
        }
    }
    let frame = |i: usize| ServerFrame::Message {
        message: stored[i].clone(),
    };
    let bus = bus(&env.redis_url).await;
    // seq 1 and 2 lost, 4 before 3, 4 twice, 5 lost and revealed by nothing.
    for i in [3usize, 2, 3, 3] {
        bus.publish(Topic::Channel(ch.id), &frame(i));
    }
    let got = rb.messages(ch.id, 5).await;
    assert_eq!(got, stored);
    assert!(rb
        .sync()
        .await
        .iter()
        .all(|f| !matches!(f, ServerFrame::Message { .. })));
}

#[tokio::test]
async fn resume_after_a_disconnect_closes_the_gap_without_doubles() {
    let env = Env::new().await;
    let (a, b) = (env.user("alice").await, env.user("bob").await);
    let ch = env.channel("general", &[&a, &b]).await;
    let edge = env.edge_with(|c| c.limits.resume_max = 4).await;
    let mut sa = env.connect(&edge, &a).await;
    let mut rb = env.connect(&edge, &b).await;
    for i in 1..=2 {
        sa.send(ch.id, &format!("m{i}"), &format!("c{i}")).await;
    }
    assert_seqs(&rb.messages(ch.id, 2).await, 1, 2);
    drop(rb);
    for i in 3..=5 {
        sa.send(ch.id, &format!("m{i}"), &format!("c{i}")).await;
    }
    let mut rb = env.connect(&edge, &b).await;
    rb.send_json(serde_json::json!({"type":"resume","channels":{ch.id.to_string(): 2}}))
        .await;
    let mut seen = Vec::new();
    loop {
        match rb.frame().await {
            ServerFrame::Message { message } => seen.push(message),
            ServerFrame::Resumed => break,
            ServerFrame::Presence { .. } => {}
            f => panic!("{f:?}"),
        }
    }
    assert_seqs(&seen, 3, 5);
    sa.send(ch.id, "m6", "c6").await;
    assert_seqs(&rb.messages(ch.id, 1).await, 6, 6);

    // More than RESUME_MAX missed: the first ones, then resume_truncated.
    rb.send_json(serde_json::json!({"type":"resume","channels":{ch.id.to_string(): 0}}))
        .await;
    assert_seqs(&rb.messages(ch.id, 4).await, 1, 4);
    assert_eq!(
        rb.reply().await,
        ServerFrame::ResumeTruncated {
            channel_id: ch.id,
            next_seq: 5
        }
    );
    assert_eq!(rb.reply().await, ServerFrame::Resumed);
    sa.send(ch.id, "m7", "c7").await;
    assert_seqs(&rb.messages(ch.id, 1).await, 7, 7);
}

/// Seqs of the messages, and the other replies (not `presence`), up to `resumed`.
async fn until_resumed(c: &mut Client) -> (Vec<i64>, Vec<ServerFrame>) {
    let (mut seqs, mut other) = (Vec::new(), Vec::new());
    loop {
        match c.frame().await {
            ServerFrame::Message { message } => seqs.push(message.seq),
            ServerFrame::Presence { .. } => {}
            ServerFrame::Resumed => return (seqs, other),
            f => other.push(f),
        }
    }
}

/// A counter of the edge's `/metrics`.
async fn edge_counter(edge: &TestEdge, name: &str) -> u64 {
    let (_, text) = http_get(&edge.url("/metrics"), &[]).await;
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}")) as u64
}

#[tokio::test]
async fn concurrent_resumes_of_a_channel_share_one_read_each_getting_its_own_slice() {
    let env = Env::new().await;
    let a = env.user("alice").await;
    let (b, c, d) = (
        env.user("bob").await,
        env.user("carol").await,
        env.user("dave").await,
    );
    let ch = env.channel("general", &[&a, &b, &c, &d]).await;
    let edge = env
        .edge_with(|cfg| {
            cfg.limits.resume_max = 4;
            cfg.resume_spacing = Duration::from_millis(500);
        })
        .await;
    let mut sa = env.connect(&edge, &a).await;
    for i in 1..=8 {
        sa.send(ch.id, &format!("m{i}"), &format!("c{i}")).await;
    }
    let (mut rb, mut rc, mut rd) = (
        env.connect(&edge, &b).await,
        env.connect(&edge, &c).await,
        env.connect(&edge, &d).await,
    );
    let resume =
        |after: i64| serde_json::json!({"type":"resume","channels":{ch.id.to_string(): after}});
    // The channel's first resume is read at once; the two that follow within the spacing
    // share the next read, from the smaller `after` (0), each sliced from its own.
    rb.send_json(resume(6)).await;
    assert_eq!(until_resumed(&mut rb).await, (vec![7, 8], vec![]));
    rc.send_json(resume(0)).await;
    rd.send_json(resume(3)).await;
    let truncated = |next_seq| ServerFrame::ResumeTruncated {
        channel_id: ch.id,
        next_seq,
    };
    assert_eq!(
        until_resumed(&mut rc).await,
        (vec![1, 2, 3, 4], vec![truncated(5)])
    );
    assert_eq!(
        until_resumed(&mut rd).await,
        (vec![4, 5, 6, 7], vec![truncated(8)])
    );
    assert_eq!(edge_counter(&edge, "edge_resume_requests_total").await, 3);
    assert_eq!(edge_counter(&edge, "edge_history_reads_total").await, 2);
    // Live delivery goes on, once, for every one of them.
    sa.send(ch.id, "m9", "c9").await;
    for r in [&mut rb, &mut rc, &mut rd] {
        assert_seqs(&r.messages(ch.id, 1).await, 9, 9);
    }
}

#[tokio::test]
async fn slow_consumers_do_not_slow_others_closed_with_4008() {
    let env = Env::new().await;
    let (a, b, c) = (
        env.user("alice").await,
        env.user("bob").await,
        env.user("carol").await,
    );
    let ch = env.channel("general", &[&a, &b, &c]).await;
    let edge = env
        .edge_with(|c| {
            c.out_queue_frames = 256;
            c.out_queue_bytes = 1 << 20;
        })
        .await;
    // Carol's client never reads: a tiny receive buffer fills at once.
    let stream = tiny_window(edge.addr).await;
    let url = format!("ws://{}/ws?token={}", edge.addr, env.token(&c));
    let (ws, _) =
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
    let mut slow = Client::from_ws(ws).await;
    let mut fast = env.connect(&edge, &b).await;
    // The fast reader reports its progress; the publisher stays within 100 messages of it.
    let (progress, mut seen) = tokio::sync::watch::channel(0usize);
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < N {
            got.extend(fast.messages(ch.id, 1).await);
            progress.send_replace(got.len());
        }
        got
    });
    // 12 MB of messages, more than any kernel socket buffer holds: stored in batches and
    // published as the api-server would.
    const N: usize = 3000;
    env.flood(ch.id, a.id, N, async |seq| {
        let ahead = seq as usize;
        seen.wait_for(|n| n + 100 >= ahead).await.unwrap();
    })
    .await;
    assert_seqs(&reader.await.unwrap(), 1, N as i64);
    assert_eq!(slow.closed().await, Some(4008));
    let (_, metrics) = http_get(&edge.url("/metrics"), &[]).await;
    assert!(
        metrics.contains("edge_slow_consumer_closes_total{edge=\""),
        "{metrics}"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// A socket may send without waiting for each ack: every pipelined send is committed in the
/// order it was sent (seq 1..n), acked in that order, and a bad one among them gets its own
/// error without disturbing the others.
#[tokio::test]
async fn pipelined_sends_are_stored_and_acked_in_the_order_sent() {
    let env = Env::new().await;
    let alice = env.user("alice").await;
    let ch = env.channel("general", &[&alice]).await;
    let edge = env
        .edge_with(|c| {
            c.limits.send_rate_per_sec = 10_000.0;
            c.limits.send_burst = 10_000.0;
        })
        .await;
    let mut c = env.connect(&edge, &alice).await;
    // Two bad sends among them: #75 refused by the store (reply_to names no message), #100
    // refused by the edge before it is queued (empty content). Each gets its error in its place.
    let n = 150; // more than a socket may have in flight: the edge must apply back-pressure
    for i in 0..n {
        let reply_to = if i == 75 { Some(10_000) } else { None };
        let content = if i == 100 {
            String::new()
        } else {
            format!("m{i}")
        };
        c.send_json(serde_json::json!({
            "type": "send", "channel_id": ch.id, "content": content,
            "client_msg_id": format!("p-{i}"), "reply_to": reply_to
        }))
        .await;
    }
    let mut replies = Vec::new();
    while replies.len() < n {
        match c.frame().await {
            ServerFrame::Ack {
                client_msg_id,
                message,
                ..
            } => {
                replies.push((client_msg_id, Some(message.seq)));
            }
            ServerFrame::Error { client_msg_id, .. } => replies.push((client_msg_id, None)),
            _ => {}
        }
    }
    let mut want_seq = 0;
    for (i, (cmid, seq)) in replies.iter().enumerate() {
        assert_eq!(
            cmid.as_deref(),
            Some(format!("p-{i}").as_str()),
            "reply order"
        );
        if i == 75 || i == 100 {
            assert_eq!(*seq, None, "send {i} must be refused");
        } else {
            want_seq += 1;
            assert_eq!(*seq, Some(want_seq));
        }
    }
    let h = env.store.history(ch.id, None, None, 200).await.unwrap();
    assert_eq!(h.messages.len(), n - 2);
    assert!(h.messages.iter().rev().zip(1..).all(|(m, s)| m.seq == s));
    assert!(h.messages.iter().all(|m| m.content != "m75"));
}

/// A reconnected socket can get a live message before its `resume` reaches the edge: the
/// replay then closes the gap without sending that live message a second time.
#[tokio::test]
async fn resume_does_not_repeat_live_messages_that_arrived_before_it() {
    let env = Env::new().await;
    let (a, b) = (env.user("alice").await, env.user("bob").await);
    let ch = env.channel("general", &[&a, &b]).await;
    let edge = env.edge().await;
    let mut sa = env.connect(&edge, &a).await;
    let mut rb = env.connect(&edge, &b).await;
    sa.send(ch.id, "m1", "c1").await;
    assert_seqs(&rb.messages(ch.id, 1).await, 1, 1);
    drop(rb);
    sa.send(ch.id, "m2", "c2").await; // missed while disconnected
    let mut rb = env.connect(&edge, &b).await; // ready: last_seq 2
    sa.send(ch.id, "m3", "c3").await; // live, before the resume
    assert_seqs(&rb.messages(ch.id, 1).await, 3, 3);
    rb.send_json(serde_json::json!({"type":"resume","channels":{ch.id.to_string(): 1}}))
        .await;
    let mut seen = Vec::new();
    loop {
        match rb.frame().await {
            ServerFrame::Message { message } => seen.push(message.seq),
            ServerFrame::Resumed => break,
            ServerFrame::Presence { .. } => {}
            f => panic!("{f:?}"),
        }
    }
    assert_eq!(seen, vec![2], "the gap, and not seq 3 again");
    sa.send(ch.id, "m4", "c4").await;
    assert_seqs(&rb.messages(ch.id, 1).await, 4, 4);
}

/// The publisher keeps several Redis pipelines in flight: whatever their round trips, Redis
/// must see the publishes of a channel in `seq` order (each pipeline is handed to the
/// connection before the next one is built). Eight sockets keep sends pipelined into one
/// channel so the publisher has full batches queued; a plain subscriber on the topic must read
/// seq 1, 2, 3, ... with nothing missing and nothing out of place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_reach_redis_in_seq_order_with_pipelines_in_flight() {
    use fred::interfaces::EventInterface;
    use fred::prelude::{Builder, ClientLike, Config as RedisConfig};

    let env = Env::new().await;
    let users = [
        env.user("p0").await,
        env.user("p1").await,
        env.user("p2").await,
        env.user("p3").await,
    ];
    let members: Vec<&shared::protocol::User> = users.iter().collect();
    let ch = env.channel("busy", &members).await;
    let edge = env
        .edge_with(|c| {
            c.limits.send_rate_per_sec = 100_000.0;
            c.limits.send_burst = 100_000.0;
        })
        .await;

    let sub = Builder::from_config(RedisConfig::from_url(&env.redis_url).unwrap())
        .with_performance_config(|p| p.broadcast_channel_capacity = 1 << 15)
        .build_subscriber_client()
        .unwrap();
    sub.init().await.unwrap();
    let mut rx = sub.message_rx();
    sub.subscribe(format!("channel-{}", ch.id)).await.unwrap();

    const SOCKETS: usize = 8;
    const PER_SOCKET: usize = 400;
    let mut tasks = Vec::new();
    for s in 0..SOCKETS {
        let mut c = env.connect(&edge, &users[s % users.len()]).await;
        let channel_id = ch.id;
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_SOCKET {
                c.send_json(serde_json::json!({
                    "type": "send", "channel_id": channel_id,
                    "content": format!("s{s}-{i}"), "client_msg_id": format!("s{s}-{i}")
                }))
                .await;
            }
            // Read until every send of this socket is acked (message frames interleave).
            let mut acked = 0;
            while acked < PER_SOCKET {
                if let ServerFrame::Ack { .. } = c.frame().await {
                    acked += 1;
                }
            }
        }));
    }

    let total = (SOCKETS * PER_SOCKET) as i64;
    let mut seqs = Vec::with_capacity(total as usize);
    while (seqs.len() as i64) < total {
        let m = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("a publish within 30 s")
            .expect("subscriber kept up");
        let text: String = m.value.convert().unwrap();
        if let Ok(ServerFrame::Message { message }) = serde_json::from_str(&text) {
            seqs.push(message.seq);
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let first_wrong = seqs.iter().zip(1..).position(|(s, want)| *s != want);
    assert_eq!(
        first_wrong,
        None,
        "publishes out of seq order around {:?}",
        first_wrong.map(|i| &seqs[i.saturating_sub(3)..(i + 3).min(seqs.len())])
    );
    let _ = sub.quit().await;
}

//! Sending over HTTP, history paging, read markers, and the send rate limit.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use shared::store::NewMessage;

use crate::support::TestApp;

#[tokio::test]
async fn sends_are_validated_stored_and_idempotent() {
    let app = TestApp::spawn().await;
    let (alice, at) = app.user("alice").await;
    let (_, bt) = app.user("bob").await;
    let c = app.channel(&at, "general").await;

    let r = app
        .send(&at, c, json!({"content": "hello", "client_msg_id": "c-1"}))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let m = r.body.clone();
    assert_eq!(m["channel_id"], c);
    assert_eq!(m["seq"], 1);
    assert_eq!(m["sender_id"], alice);
    assert_eq!(m["sender"], "alice");
    assert_eq!(m["content"], "hello");
    assert_eq!(m["reply_to"], Value::Null);
    assert_eq!(m["client_msg_id"], "c-1");
    assert!(m["id"].as_str().unwrap().parse::<i64>().unwrap() > 0);
    assert!(m["created_at"].is_string());

    // A retry gets the original back and stores nothing.
    let r = app
        .send(
            &at,
            c,
            json!({"content": "hello again", "client_msg_id": "c-1"}),
        )
        .await;
    assert_eq!((r.status, &r.body), (200, &m));
    let r = app
        .send(&at, c, json!({"content": "re", "reply_to": 1}))
        .await;
    assert_eq!(
        (
            r.status,
            r.body["seq"].as_i64(),
            r.body["reply_to"].as_i64()
        ),
        (201, Some(2), Some(1))
    );

    let too_long = "é".repeat(4001);
    let bad = [
        json!({"content": ""}),
        json!({"content": " \n\t "}),
        json!({"content": too_long}),
        json!({"content": "x", "client_msg_id": ""}),
        json!({"content": "x", "client_msg_id": "has space"}),
        json!({"content": "x", "client_msg_id": "k".repeat(129)}),
        json!({"content": "x", "reply_to": 0}),
        json!({"content": "x", "reply_to": 3}),
    ];
    for body in bad {
        let r = app.send(&at, c, body.clone()).await;
        assert_eq!((r.status, r.code()), (400, "validation"), "{body}: {r:?}");
    }
    let r = app.send(&at, c, json!({"content": 5})).await;
    assert_eq!((r.status, r.code()), (400, "bad_request"));
    let r = app.send(&at, c, json!({"content": "é".repeat(4000)})).await;
    assert_eq!(r.status, 201);

    // Non-members may neither send nor read; unknown channels are 404.
    let r = app.send(&bt, c, json!({"content": "let me in"})).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app.history(&bt, c, "").await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app.send(&at, 999_999_999, json!({"content": "x"})).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = app.history(&at, 999_999_999, "").await;
    assert_eq!((r.status, r.code()), (404, "not_found"));

    let h = app.history(&at, c, "").await;
    let seqs: Vec<_> = h.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].clone())
        .collect();
    // The reply (seq 2) is followed by its root's `thread_updated` event, recorded beside
    // the next send: the last message took seq 3 or 4.
    assert_eq!(seqs[1..], [json!(2), json!(1)]);
    assert!(seqs[0] == json!(3) || seqs[0] == json!(4), "{seqs:?}");
    // The first message, as sent, plus the thread counters of the reply it got since.
    let mut first = h.body["messages"][2].clone();
    assert_eq!(first["reply_count"], 1);
    let o = first.as_object_mut().unwrap();
    assert!(o.remove("last_reply_at").is_some());
    o.remove("reply_count");
    assert_eq!(first, m);
}

fn seqs(page: &crate::support::Resp) -> Vec<i64> {
    assert_eq!(page.status, 200, "{page:?}");
    page.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn history_pages_120_messages_50_at_a_time_both_ways_while_sends_continue() {
    let app = TestApp::spawn().await;
    let (alice, at) = app.user("alice").await;
    let c = app.channel(&at, "general").await;
    let batch: Vec<NewMessage> = (1..=120)
        .map(|i| NewMessage {
            channel_id: c,
            sender_id: alice,
            content: format!("m{i}"),
            client_msg_id: None,
            reply_to: None,
            attachments: Vec::new(),
        })
        .collect();
    app.store.send_batch(&batch).await.unwrap();

    // Keep inserting while we page.
    let store = app.store.clone();
    let writer = tokio::spawn(async move {
        for i in 0..40 {
            let m = NewMessage {
                channel_id: c,
                sender_id: alice,
                content: format!("late{i}"),
                client_msg_id: None,
                reply_to: None,
                attachments: Vec::new(),
            };
            store.send(m).await.unwrap();
        }
    });

    // Backwards from the newest page: every seq from its top down to 1, once.
    let first = app.history(&at, c, "?limit=50").await;
    let mut back = seqs(&first);
    assert_eq!(back.len(), 50);
    let top = back[0];
    assert!(top >= 120);
    let mut next = first.body["next"].clone();
    let mut pages = 1;
    while let Some(before) = next.as_i64() {
        let p = app
            .history(&at, c, &format!("?before={before}&limit=50"))
            .await;
        assert_eq!(p.status, 200);
        back.extend(seqs(&p));
        next = p.body["next"].clone();
        pages += 1;
    }
    assert_eq!(back, (1..=top).rev().collect::<Vec<_>>());
    assert!(pages >= 3);

    // Forwards from the start: 1, 2, ... up to the end, once each, ascending.
    let mut fwd = Vec::new();
    let mut after = 0;
    loop {
        let p = app
            .history(&at, c, &format!("?after={after}&limit=50"))
            .await;
        let page = seqs(&p);
        assert!(page.len() <= 50);
        fwd.extend(&page);
        match p.body["next"].as_i64() {
            Some(n) => after = n,
            None => break,
        }
    }
    writer.await.unwrap();
    let n = fwd.len() as i64;
    assert!(n >= 120);
    assert_eq!(fwd, (1..=n).collect::<Vec<_>>());
    // After the writer stops, a last forward page picks up the rest: nothing missed.
    let rest = app.history(&at, c, &format!("?after={n}&limit=200")).await;
    let all: BTreeSet<i64> = fwd.into_iter().chain(seqs(&rest)).collect();
    assert_eq!(all, (1..=160).collect());

    // limit defaults to 50, is capped at 200, and must be positive.
    assert_eq!(seqs(&app.history(&at, c, "").await).len(), 50);
    assert_eq!(seqs(&app.history(&at, c, "?limit=1000").await).len(), 160);
    let r = app.history(&at, c, "?after=0&limit=1000").await;
    assert_eq!(seqs(&r).len(), 160);
    assert_eq!(app.history(&at, c, "?limit=0").await.code(), "validation");
}

#[tokio::test]
async fn history_limit_is_capped_at_200() {
    let app = TestApp::spawn().await;
    let (alice, at) = app.user("alice").await;
    let c = app.channel(&at, "general").await;
    let batch: Vec<NewMessage> = (1..=230)
        .map(|i| NewMessage {
            channel_id: c,
            sender_id: alice,
            content: format!("m{i}"),
            client_msg_id: None,
            reply_to: None,
            attachments: Vec::new(),
        })
        .collect();
    app.store.send_batch(&batch).await.unwrap();
    let r = app.history(&at, c, "?limit=1000").await;
    assert_eq!(seqs(&r).len(), 200);
    assert_eq!(r.body["next"], 31);
}

#[tokio::test]
async fn read_markers_move_forward_only_and_not_past_the_end() {
    let app = TestApp::spawn().await;
    let (_, at) = app.user("alice").await;
    let (_, bt) = app.user("bob").await;
    let c = app.channel(&at, "general").await;
    for i in 0..5 {
        app.say(&at, c, &format!("m{i}")).await;
    }
    let r = app.read(&at, c, 3).await;
    assert_eq!(
        (r.status, &r.body),
        (200, &json!({"channel_id": c, "last_read_seq": 3}))
    );
    assert_eq!(app.read(&at, c, 1).await.body["last_read_seq"], 3);
    assert_eq!(app.read(&at, c, 99).await.body["last_read_seq"], 5);
    let mine = app.my_channels(&at).await;
    assert_eq!(mine.body["channels"][0]["last_read_seq"], 5);
    assert_eq!(mine.body["channels"][0]["unread"], 0);
    let r = app.read(&at, c, -1).await;
    assert_eq!((r.status, r.code()), (400, "validation"));
    let r = app.read(&bt, c, 1).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app.read(&at, 999_999_999, 1).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
}

#[tokio::test]
async fn sends_over_the_rate_get_429_and_store_nothing() {
    // A burst of 5 and a slow refill, so the 6th send is refused however fast the machine is.
    let app = TestApp::spawn_with(|c| {
        c.limits.send_burst = 5.0;
        c.limits.send_rate_per_sec = 0.01;
    })
    .await;
    let (_, at) = app.user("alice").await;
    let c = app.channel(&at, "general").await;
    for i in 0..5 {
        app.say(&at, c, &format!("m{i}")).await;
    }
    let r = app.send(&at, c, json!({"content": "one too many"})).await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"), "{r:?}");
    assert!(r.body["error"]["retry_after_ms"].as_u64().unwrap() > 1000);
    assert_eq!(seqs(&app.history(&at, c, "").await).len(), 5);
    // Another user has a bucket of their own.
    let (_, bt) = app.user("bob").await;
    app.join(&bt, c).await;
    app.say(&bt, c, "mine").await;
}

#[tokio::test]
async fn default_send_limit_allows_a_burst_of_50() {
    let app = TestApp::spawn().await;
    let (_, at) = app.user("alice").await;
    let c = app.channel(&at, "general").await;
    // 60 sends at once: at least the burst of 50 passes, and the rest are refused unless
    // the bucket refilled meanwhile (20/s).
    let sends = (0..60).map(|i| app.send(&at, c, json!({"content": format!("m{i}")})));
    let results = futures_util::future::join_all(sends).await;
    let ok = results.iter().filter(|r| r.status == 201).count();
    let limited = results.iter().filter(|r| r.status == 429).count();
    assert_eq!(ok + limited, 60);
    assert!(ok >= 50, "{ok} stored");
    let stored = seqs(&app.history(&at, c, "?limit=200").await).len();
    assert_eq!(stored, ok);
}

/// The group committer records into the server's own recorder: one send shows up in the batch
/// size and commit time histograms of `/metrics`.
#[tokio::test]
async fn metrics_show_group_commit_histograms_after_a_send() {
    let app = TestApp::spawn().await;
    let (_, at) = app.user("alice").await;
    let c = app.channel(&at, "general").await;
    app.say(&at, c, "hi").await;
    let (status, text) = app.text("/metrics").await;
    assert_eq!(status, 200);
    for series in [
        "chat_group_commit_batch_size_bucket{",
        "chat_group_commit_seconds_bucket{",
        "messages_sent_total 1",
    ] {
        assert!(text.contains(series), "{series} missing:\n{text}");
    }
    let count = testkit::metric(&text, "chat_group_commit_batch_size_count");
    assert_eq!(count, Some(1.0), "{text}");
}

//! Threads: `thread_root` on replies, `reply_count` / `last_reply_at` on the root (right under
//! concurrent replies), `thread_updated` events, and a thread's replies paged both ways.

use futures_util::future::join_all;
use serde_json::{json, Value};
use shared::protocol::Change;
use shared::store::Entry;

use crate::support::{Resp, TestApp};

/// A server without a send rate limit.
async fn unlimited() -> TestApp {
    TestApp::spawn_with(|c| c.limits.send_rate_per_sec = 0.0).await
}

async fn reply(app: &TestApp, t: &str, c: i64, content: &str, to: i64) -> Value {
    let r = app
        .send(t, c, json!({"content": content, "reply_to": to}))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    r.body
}

async fn thread(app: &TestApp, t: &str, c: i64, root: i64, query: &str) -> Resp {
    app.get(&format!("/api/channels/{c}/threads/{root}{query}"), Some(t))
        .await
}

fn ids(r: &Resp) -> Vec<String> {
    r.body["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("{r:?}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_thread_of_120_replies_pages_both_ways_without_a_duplicate_or_a_miss() {
    let app = unlimited().await;
    let (_, at) = app.user("alice").await;
    let (_, ct) = app.user("carol").await;
    let c = app.channel(&at, "general").await;
    let root = app.say(&at, c, "root").await;
    let root_seq = root["seq"].as_i64().unwrap();
    let other = app.say(&at, c, "another thread").await;
    let mut sent = Vec::new();
    let mut last = root_seq;
    for i in 0..120 {
        // Some replies answer a reply: they join the same (flat) thread.
        let to = if i % 10 == 5 { last } else { root_seq };
        let m = reply(&app, &at, c, &format!("r{i}"), to).await;
        assert_eq!(m["thread_root"].as_i64(), Some(root_seq), "{m}");
        last = m["seq"].as_i64().unwrap();
        sent.push(m["id"].as_str().unwrap().to_owned());
        // Messages of the channel and of another thread in between.
        if i % 7 == 0 {
            app.say(&at, c, "noise").await;
            reply(&app, &at, c, "elsewhere", other["seq"].as_i64().unwrap()).await;
        }
    }
    // Backwards, newest first.
    let (mut got, mut q) = (Vec::new(), "?limit=7".to_owned());
    loop {
        let r = thread(&app, &at, c, root_seq, &q).await;
        assert_eq!(r.status, 200, "{r:?}");
        got.extend(ids(&r));
        match r.body["next"].as_i64() {
            Some(n) => q = format!("?before={n}&limit=7"),
            None => break,
        }
    }
    got.reverse();
    assert_eq!(got, sent);
    // Forwards.
    let (mut got, mut q) = (Vec::new(), "?after=0&limit=7".to_owned());
    loop {
        let r = thread(&app, &at, c, root_seq, &q).await;
        got.extend(ids(&r));
        match r.body["next"].as_i64() {
            Some(n) => q = format!("?after={n}&limit=7"),
            None => break,
        }
    }
    assert_eq!(got, sent);

    let r = thread(&app, &at, c, root_seq, "?limit=1").await;
    assert_eq!(r.body["root"]["id"], root["id"]);
    assert_eq!(r.body["root"]["reply_count"], 120);
    assert!(r.body["root"]["last_reply_at"].is_string());
    assert_eq!(thread(&app, &at, c, last, "").await.code(), "validation");
    assert_eq!(thread(&app, &at, c, 100_000, "").await.status, 404);
    assert_eq!(thread(&app, &ct, c, root_seq, "").await.status, 403);
    // A reply must answer a message: not an event's seq, not a seq to come.
    let r = app
        .send(&at, c, json!({"content": "x", "reply_to": 100_000}))
        .await;
    assert_eq!(r.code(), "validation");
}

#[tokio::test]
async fn reply_counts_are_right_under_concurrent_replies() {
    let app = unlimited().await;
    let (_, at) = app.user("alice").await;
    let (_, bt) = app.user("bob").await;
    let c = app.channel(&at, "general").await;
    assert_eq!(app.join(&bt, c).await.status, 200);
    let root = app.say(&at, c, "root").await;
    let root_seq = root["seq"].as_i64().unwrap();
    let sends = (0..60).map(|i| {
        let (app, t) = (&app, if i % 2 == 0 { &at } else { &bt });
        async move { reply(app, t, c, &format!("r{i}"), root_seq).await }
    });
    let replies = join_all(sends).await;
    assert_eq!(replies.len(), 60);
    let r = thread(&app, &bt, c, root_seq, "?limit=200").await;
    assert_eq!(r.body["root"]["reply_count"], 60);
    assert_eq!(ids(&r).len(), 60);
    let h = app.history(&at, c, "?after=0&limit=1").await;
    assert_eq!(h.body["messages"][0]["reply_count"], 60);
    // Every reply is followed by a thread_updated event; the counts never go down and the
    // last one says 60.
    let log = app
        .wait_for(
            |r| r.body["thread_events"].as_u64() == Some(60),
            |a| async move {
                let log = a.store.log_between(c, 0, i64::MAX, 10_000).await.unwrap();
                let n = log.iter().filter(|e| matches!(e, Entry::Event(_))).count();
                Resp {
                    status: 200,
                    body: json!({"thread_events": n}),
                }
            },
        )
        .await;
    assert_eq!(log.body["thread_events"], 60);
    let counts: Vec<i64> = app
        .store
        .log_between(c, 0, i64::MAX, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            Entry::Event(e) => match e.change {
                Change::ThreadUpdated { reply_count, .. } => Some(reply_count),
                _ => None,
            },
            Entry::Message(_) => None,
        })
        .collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert_eq!(counts.last(), Some(&60));
}

#[tokio::test]
async fn mentions_name_members_follow_edits_and_are_listed_for_each_user() {
    let app = TestApp::spawn().await;
    let (_, at) = app.user("alice").await;
    let (bob, bt) = app.user("bob").await;
    let (_, ct) = app.user("carol").await;
    let (dave, dt) = app.user("dave").await;
    let c = app.channel(&at, "general").await;
    for t in [&bt, &dt] {
        assert_eq!(app.join(t, c).await.status, 200);
    }
    let m = app
        .say(
            &at,
            c,
            "hi @bob and @Dave., not @carol nor @nobody; mail@bob.example",
        )
        .await;
    let mut both = vec![bob, dave];
    both.sort_unstable();
    assert_eq!(m["mentions"], json!(both));
    let h = app.history(&bt, c, "").await;
    assert_eq!(h.body["messages"][0]["mentions"], json!(both));
    let mine = |t: &str, q: &str| {
        let (t, p) = (t.to_owned(), format!("/api/me/mentions{q}"));
        let app = &app;
        async move { app.get(&p, Some(&t)).await }
    };
    assert_eq!(ids(&mine(&bt, "").await), [m["id"].as_str().unwrap()]);
    assert!(ids(&mine(&ct, "").await).is_empty());

    let p = format!("/api/channels/{c}/messages/{}", m["id"].as_str().unwrap());
    let r = app
        .call(
            reqwest::Method::PATCH,
            &p,
            Some(&at),
            Some(json!({"content": "only @dave now"})),
        )
        .await;
    assert_eq!(r.body["message"]["mentions"], json!([dave]));
    assert!(ids(&mine(&bt, "").await).is_empty());
    let m2 = app.say(&at, c, "@bob again").await;
    let m3 = app.say(&at, c, "@dave too").await;
    let r = mine(&dt, "?limit=1").await;
    assert_eq!(ids(&r), [m3["id"].as_str().unwrap()]);
    let next = r.body["next"].as_str().unwrap().to_owned();
    let r = mine(&dt, &format!("?before={next}&limit=1")).await;
    assert_eq!(ids(&r), [m["id"].as_str().unwrap()]);
    assert_eq!(ids(&mine(&bt, "").await), [m2["id"].as_str().unwrap()]);
    // A deleted message mentions nobody.
    let r = app.call(reqwest::Method::DELETE, &p, Some(&at), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(ids(&mine(&dt, "").await), [m3["id"].as_str().unwrap()]);
    assert_eq!(mine(&dt, "?before=x").await.code(), "bad_request");
}

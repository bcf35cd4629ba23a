//! Changes to a message over HTTP (edit, delete, reactions) and history in the current state,
//! with cursors that keep working when event seqs interleave with message seqs.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{Resp, TestApp};

fn path(c: i64, m: &Value) -> String {
    format!("/api/channels/{c}/messages/{}", m["id"].as_str().unwrap())
}

async fn edit(app: &TestApp, t: &str, c: i64, m: &Value, body: Value) -> Resp {
    app.call(Method::PATCH, &path(c, m), Some(t), Some(body))
        .await
}

async fn delete(app: &TestApp, t: &str, c: i64, m: &Value) -> Resp {
    app.call(Method::DELETE, &path(c, m), Some(t), None).await
}

async fn reaction(app: &TestApp, method: Method, t: &str, c: i64, m: &Value, e: &str) -> Resp {
    let p = format!("{}/reactions/{e}", path(c, m));
    app.call(method, &p, Some(t), None).await
}

#[tokio::test]
async fn changes_over_http_and_history_in_the_current_state() {
    let app = TestApp::spawn().await;
    let (alice, at) = app.user("alice").await;
    let (_, bt) = app.user("bob").await;
    let (_, ct) = app.user("carol").await;
    let c = app.channel(&at, "general").await;
    assert_eq!(app.join(&bt, c).await.status, 200);
    let m1 = app.say(&at, c, "one").await;
    let m2 = app.say(&at, c, "two").await;
    let m3 = app.say(&bt, c, "three").await;

    let r = edit(
        &app,
        &at,
        c,
        &m1,
        json!({"content": "one, edited", "client_msg_id": "e-1"}),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["message"]["content"], "one, edited");
    assert!(r.body["message"]["edited_at"].is_string());
    let ev = r.body["event"].clone();
    assert_eq!(
        (ev["kind"].as_str(), ev["seq"].as_i64()),
        (Some("message_edited"), Some(4))
    );
    assert_eq!(ev["message_id"], m1["id"]);
    assert_eq!(
        (ev["message_seq"].as_i64(), ev["user_id"].as_i64()),
        (Some(1), Some(alice))
    );
    // A retry answers the same event and records nothing.
    let again = edit(
        &app,
        &at,
        c,
        &m1,
        json!({"content": "other", "client_msg_id": "e-1"}),
    )
    .await;
    assert_eq!((again.status, &again.body["event"]), (200, &ev));

    let r = reaction(&app, Method::PUT, &bt, c, &m1, "👍").await;
    assert_eq!(
        (
            r.body["event"]["kind"].as_str(),
            r.body["event"]["count"].as_i64()
        ),
        (Some("reaction_added"), Some(1))
    );
    let r = reaction(&app, Method::PUT, &at, c, &m1, "👍").await;
    assert_eq!(r.body["event"]["count"], 2);
    // The same reaction again: nothing changes, no event.
    let r = reaction(&app, Method::PUT, &at, c, &m1, "👍").await;
    assert_eq!((r.status, &r.body["event"]), (200, &Value::Null));
    reaction(&app, Method::PUT, &bt, c, &m1, "🎉").await;
    let r = reaction(&app, Method::DELETE, &bt, c, &m1, "👍").await;
    assert_eq!(
        (
            r.body["event"]["kind"].as_str(),
            r.body["event"]["count"].as_i64()
        ),
        (Some("reaction_removed"), Some(1))
    );

    assert_eq!(delete(&app, &bt, c, &m2).await.status, 403);
    assert_eq!(
        edit(&app, &bt, c, &m1, json!({"content": "bob's"}))
            .await
            .status,
        403
    );
    let r = delete(&app, &at, c, &m2).await;
    assert_eq!(
        (r.status, r.body["event"]["kind"].as_str()),
        (200, Some("message_deleted"))
    );
    assert_eq!(r.body["message"]["deleted"], true);
    // seqs 1-3 messages, 4 edit, 5-6 reactions, 7 reaction, 8 unreaction, 9 delete.
    assert_eq!(
        app.my_channels(&at).await.body["channels"][0]["last_seq"],
        9
    );

    let h = app.history(&bt, c, "").await;
    assert_eq!(h.status, 200, "{h:?}");
    let ms = h.body["messages"].as_array().unwrap().clone();
    assert_eq!(ms.len(), 3);
    assert_eq!(
        (ms[0]["seq"].as_i64(), &ms[0]["content"]),
        (Some(3), &m3["content"])
    );
    assert!(ms[0].get("reactions").is_none() && ms[0].get("deleted").is_none());
    assert_eq!(
        (ms[1]["deleted"].as_bool(), ms[1]["content"].as_str()),
        (Some(true), Some(""))
    );
    assert_eq!(ms[2]["content"], "one, edited");
    assert!(ms[2]["edited_at"].is_string());
    assert_eq!(
        ms[2]["reactions"],
        json!([{"emoji": "👍", "count": 1, "me": false}, {"emoji": "🎉", "count": 1, "me": true}])
    );
    let h = app.history(&at, c, "?after=0").await;
    assert_eq!(
        h.body["messages"][0]["reactions"],
        json!([{"emoji": "👍", "count": 1, "me": true}, {"emoji": "🎉", "count": 1, "me": false}])
    );

    // Bad input and strangers.
    let unknown = json!({"id": "12345"});
    assert_eq!(
        edit(&app, &at, c, &unknown, json!({"content": "x"}))
            .await
            .status,
        404
    );
    assert_eq!(
        reaction(&app, Method::PUT, &at, c, &m1, "abc").await.code(),
        "validation"
    );
    assert_eq!(
        edit(&app, &at, c, &m1, json!({"content": ""})).await.code(),
        "validation"
    );
    assert_eq!(
        edit(&app, &at, c, &m1, json!({"text": "x"})).await.code(),
        "bad_request"
    );
    assert_eq!(
        edit(&app, &ct, c, &m1, json!({"content": "x"}))
            .await
            .status,
        403
    );
    assert_eq!(delete(&app, &ct, c, &m1).await.status, 403);
    assert_eq!(
        reaction(&app, Method::PUT, &ct, c, &m1, "👍").await.status,
        403
    );
    assert_eq!(delete(&app, &at, c + 1000, &m1).await.status, 404);
    assert_eq!(
        app.my_channels(&at).await.body["channels"][0]["last_seq"],
        9
    );
}

#[tokio::test]
async fn history_pages_every_message_once_with_event_seqs_in_between() {
    let app = TestApp::spawn().await;
    let (_, at) = app.user("alice").await;
    let c = app.channel(&at, "general").await;
    let mut sent = Vec::new();
    for i in 0..20 {
        let m = app.say(&at, c, &format!("m{i}")).await;
        // Events after some messages: their seqs lie between the messages' seqs.
        if i % 3 == 0 {
            reaction(&app, Method::PUT, &at, c, &m, "👍").await;
        }
        if i % 4 == 0 {
            edit(&app, &at, c, &m, json!({"content": format!("m{i}!")})).await;
        }
        sent.push(m["id"].as_str().unwrap().to_owned());
    }
    let ids = |r: &Resp| -> Vec<String> {
        r.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    // Backwards.
    let (mut got, mut q) = (Vec::new(), "?limit=3".to_owned());
    loop {
        let r = app.history(&at, c, &q).await;
        got.extend(ids(&r));
        match r.body["next"].as_i64() {
            Some(n) => q = format!("?before={n}&limit=3"),
            None => break,
        }
    }
    got.reverse();
    assert_eq!(got, sent);
    // Forwards.
    let (mut got, mut q) = (Vec::new(), "?after=0&limit=3".to_owned());
    loop {
        let r = app.history(&at, c, &q).await;
        got.extend(ids(&r));
        match r.body["next"].as_i64() {
            Some(n) => q = format!("?after={n}&limit=3"),
            None => break,
        }
    }
    assert_eq!(got, sent);
}

#[tokio::test]
async fn the_owner_makes_admins_who_may_delete_any_message() {
    let app = TestApp::spawn().await;
    let (_, ot) = app.user("owner").await;
    let (bob, bt) = app.user("bob").await;
    let (carol, ct) = app.user("carol").await;
    let (dave, _) = app.user("dave").await;
    let c = app.channel(&ot, "general").await;
    for t in [&bt, &ct] {
        assert_eq!(app.join(t, c).await.status, 200);
    }
    let role = |t: &str, user: i64, role: &str| {
        let (t, p) = (
            t.to_owned(),
            format!("/api/channels/{c}/members/{user}/role"),
        );
        let body = json!({ "role": role });
        let app = &app;
        async move { app.call(Method::PUT, &p, Some(&t), Some(body)).await }
    };
    let m = app.say(&ct, c, "carol's").await;
    assert_eq!(delete(&app, &bt, c, &m).await.status, 403);
    let r = role(&ot, bob, "admin").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body,
        json!({"channel_id": c, "user_id": bob, "role": "admin"})
    );
    // Only the owner changes roles; nobody becomes owner; the target must be a member.
    assert_eq!(role(&bt, carol, "admin").await.status, 403);
    assert_eq!(role(&ot, carol, "owner").await.code(), "validation");
    assert_eq!(role(&ot, dave, "admin").await.status, 404);
    assert_eq!(role(&ot, carol, "boss").await.code(), "bad_request");
    let r = delete(&app, &bt, c, &m).await;
    assert_eq!(
        (r.status, r.body["event"]["kind"].as_str()),
        (200, Some("message_deleted"))
    );
    // Back to member: no more deleting others' messages.
    assert_eq!(role(&ot, bob, "member").await.status, 200);
    let m2 = app.say(&ct, c, "carol's again").await;
    assert_eq!(delete(&app, &bt, c, &m2).await.status, 403);
}

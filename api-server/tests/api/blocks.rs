//! Blocking: the direct channel closes to the blocked user and cannot be reopened by either
//! while the block stands; the blocked user's mentions of the blocker do not count.

use reqwest::Method;
use serde_json::json;

use crate::support::{Resp, TestApp};

async fn block(app: &TestApp, method: Method, t: &str, user: i64) -> Resp {
    app.call(method, &format!("/api/me/blocks/{user}"), Some(t), None)
        .await
}

#[tokio::test]
async fn a_block_closes_the_direct_channel_and_mutes_mentions_until_lifted() {
    let app = TestApp::spawn().await;
    let (alice, at) = app.user("alice").await;
    let (bob, bt) = app.user("bob").await;
    let r = app.dm(&bt, alice).await;
    assert_eq!(r.status, 201, "{r:?}");
    let dm = r.body["id"].as_i64().unwrap();
    app.say(&bt, dm, "hi alice").await;
    let group = app.channel(&at, "general").await;
    assert_eq!(app.join(&bt, group).await.status, 200);

    assert_eq!(block(&app, Method::PUT, &at, bob).await.status, 204);
    assert_eq!(block(&app, Method::PUT, &at, bob).await.status, 204);
    let r = app.get("/api/me/blocks", Some(&at)).await;
    assert_eq!(r.body["users"][0]["id"], bob);
    // Bob is out of the direct channel; neither can open it again.
    let r = app.send(&bt, dm, json!({"content": "hello?"})).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(app.history(&bt, dm, "").await.status, 403);
    assert_eq!(app.dm(&bt, alice).await.status, 403);
    assert_eq!(app.dm(&at, bob).await.status, 403);
    // Alice still reads it.
    assert_eq!(app.history(&at, dm, "").await.status, 200);
    // Bob's mention of alice in a shared channel does not count; alice's of bob does.
    let m = app.say(&bt, group, "@alice look").await;
    assert!(m.get("mentions").is_none(), "{m}");
    let m = app.say(&at, group, "@bob hi").await;
    assert_eq!(m["mentions"], json!([bob]));

    assert_eq!(
        block(&app, Method::PUT, &at, alice).await.code(),
        "validation"
    );
    assert_eq!(block(&app, Method::PUT, &at, 999_999_999).await.status, 404);
    assert_eq!(block(&app, Method::DELETE, &at, bob).await.status, 204);
    let r = app.dm(&bt, alice).await;
    assert_eq!((r.status, r.body["id"].as_i64()), (200, Some(dm)));
    assert_eq!(app.history(&bt, dm, "").await.status, 200);
    assert!(app.get("/api/me/blocks", Some(&at)).await.body["users"]
        .as_array()
        .unwrap()
        .is_empty());
}

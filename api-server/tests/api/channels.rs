//! Channels, membership, members with presence, and direct channels.

use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn created_channels_are_listed_paged_and_joined_by_their_creator() {
    let app = TestApp::spawn().await;
    let (alice, token) = app.user("alice").await;
    let r = app.create_channel(&token, "  general ").await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["name"], "general");
    assert_eq!(r.body["kind"], "group");
    assert_eq!(r.body["created_by"], alice);
    assert_eq!(r.body["last_seq"], 0);
    let general = r.body["id"].as_i64().unwrap();
    let random = app.channel(&token, "random").await;
    let third = app.channel(&token, "third").await;
    for bad in ["", "   ", &"c".repeat(81)] {
        let r = app.create_channel(&token, bad).await;
        assert_eq!((r.status, r.code()), (400, "validation"), "{r:?}");
    }
    let r = app.post("/api/channels", None, json!({"name": "x"})).await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));

    let r = app.channels(&token, "?limit=2").await;
    assert_eq!(r.status, 200);
    let ids: Vec<_> = r.body["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].clone())
        .collect();
    assert_eq!(ids, [json!(general), json!(random)]);
    assert_eq!(r.body["next"], random);
    let r = app
        .channels(&token, &format!("?after={random}&limit=2"))
        .await;
    assert_eq!(r.body["channels"][0]["id"], third);
    assert_eq!(r.body["next"], json!(null));
    let r = app.channels(&token, "?limit=0").await;
    assert_eq!((r.status, r.code()), (400, "validation"));

    let r = app.my_channels(&token).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["channels"].as_array().unwrap().len(), 3);
    assert_eq!(
        r.body["channels"][0],
        json!({"id": general, "name": "general", "kind": "group",
               "last_seq": 0, "last_read_seq": 0, "unread": 0, "mentions": 0})
    );
}

#[tokio::test]
async fn join_and_leave_are_idempotent_and_change_my_channels() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let c = app.channel(&alice, "general").await;
    app.say(&alice, c, "one").await;
    app.say(&alice, c, "two").await;

    for _ in 0..2 {
        let r = app.join(&bob, c).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(
            r.body,
            json!({"id": c, "name": "general", "kind": "group",
                   "last_seq": 2, "last_read_seq": 0, "unread": 2, "mentions": 0})
        );
    }
    let r = app.my_channels(&bob).await;
    assert_eq!(r.body["channels"][0]["id"], c);
    assert_eq!(r.body["channels"][0]["unread"], 2);
    for _ in 0..2 {
        let r = app.leave(&bob, c).await;
        assert_eq!(r.status, 204, "{r:?}");
    }
    assert_eq!(app.my_channels(&bob).await.body["channels"], json!([]));
    let r = app.history(&bob, c, "").await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));

    for r in [
        app.join(&bob, 999_999_999).await,
        app.leave(&bob, 999_999_999).await,
    ] {
        assert_eq!((r.status, r.code()), (404, "not_found"), "{r:?}");
    }
}

#[tokio::test]
async fn members_are_listed_with_online() {
    let app = TestApp::spawn().await;
    let (alice, at) = app.user("alice").await;
    let (bob, bt) = app.user("bob").await;
    let c = app.channel(&at, "general").await;
    app.join(&bt, c).await;
    let redis = crate::pubsub::redis().await;
    let edge = format!("api-test-{alice}");
    shared::presence::refresh_lease(&redis, &edge)
        .await
        .unwrap();
    shared::presence::socket_opened(&redis, &edge, alice)
        .await
        .unwrap();
    let r = app.members(&bt, c).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body,
        json!({"members": [
            {"id": alice, "username": "alice", "online": true},
            {"id": bob, "username": "bob", "online": false},
        ]})
    );
    shared::presence::release(&redis, &edge).await.unwrap();
    let r = app.members(&bt, 999_999_999).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
}

#[tokio::test]
async fn direct_channels_are_get_or_create_and_private() {
    let app = TestApp::spawn().await;
    let (alice, at) = app.user("alice").await;
    let (bob, bt) = app.user("bob").await;
    let (_, ct) = app.user("carol").await;

    let r = app.dm(&at, bob).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["kind"], "direct");
    assert_eq!(r.body["name"], "alice,bob");
    let d = r.body["id"].as_i64().unwrap();
    // Either side gets the same channel back.
    let r = app.dm(&bt, alice).await;
    assert_eq!((r.status, r.body["id"].as_i64()), (200, Some(d)));
    app.say(&bt, d, "hi alice").await;
    assert_eq!(
        app.history(&at, d, "").await.body["messages"][0]["content"],
        "hi alice"
    );

    // Not public, not joinable, not readable by others.
    let r = app.channels(&ct, "").await;
    assert_eq!(r.body["channels"], json!([]));
    let r = app.join(&ct, d).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    assert_eq!(app.members(&ct, d).await.status, 403);
    assert_eq!(app.history(&ct, d, "").await.status, 403);
    assert_eq!(
        app.members(&at, d).await.body["members"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A participant who left is brought back by POST /api/dms.
    assert_eq!(app.leave(&bt, d).await.status, 204);
    assert_eq!(app.history(&bt, d, "").await.status, 403);
    assert_eq!(app.dm(&at, bob).await.status, 200);
    assert_eq!(app.history(&bt, d, "").await.status, 200);

    let r = app.dm(&at, alice).await;
    assert_eq!((r.status, r.code()), (400, "validation"));
    let r = app.dm(&at, 999_999_999).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = app
        .post("/api/dms", Some(&at), json!({"user_id": "bob"}))
        .await;
    assert_eq!((r.status, r.code()), (400, "bad_request"));
}

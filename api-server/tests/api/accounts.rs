//! Register, login (with its rate limits), me, the user list with presence, JSON rejections.

use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn register_returns_201_then_409_for_a_taken_name() {
    let app = TestApp::spawn().await;
    let r = app.register("alice", "password-123").await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["username"], "alice");
    assert!(r.body["id"].is_i64() && r.body["created_at"].is_string());
    assert!(r.body.get("password_hash").is_none());
    for name in ["alice", "ALICE"] {
        let r = app.register(name, "password-456").await;
        assert_eq!(r.status, 409, "{r:?}");
        assert_eq!(r.code(), "conflict");
    }
}

#[tokio::test]
async fn register_enforces_the_limits_of_section_6() {
    let app = TestApp::spawn().await;
    for (name, pw) in [
        ("al", "password-123"),
        (&*"a".repeat(33), "password-123"),
        ("al ice", "password-123"),
        ("alice", "short"),
        ("alice", &*"p".repeat(257)),
    ] {
        let r = app.register(name, pw).await;
        assert_eq!(r.status, 400, "{name:?} {r:?}");
        assert_eq!(r.code(), "validation");
    }
}

#[tokio::test]
async fn malformed_json_wrong_types_and_missing_fields_are_400_bad_request() {
    let app = TestApp::spawn().await;
    let cases: [(&str, &[u8]); 5] = [
        ("application/json", b"{\"username\": \"alice\", "),
        (
            "application/json",
            b"{\"username\": 5, \"password\": \"password-123\"}",
        ),
        ("application/json", b"{\"username\": \"alice\"}"),
        ("application/json", b"[]"),
        (
            "text/plain",
            b"{\"username\": \"alice\", \"password\": \"password-123\"}",
        ),
    ];
    for (ctype, body) in cases {
        let r = app.raw("/api/register", None, ctype, body.to_vec()).await;
        assert_eq!(r.status, 400, "{r:?}");
        assert_eq!(r.code(), "bad_request");
        assert!(r.body["error"]["message"].is_string());
    }
    // The same shape for bad path and query parameters.
    let (_, token) = app.user("alice").await;
    let r = app.history(&token, 1, "?limit=many").await;
    assert_eq!((r.status, r.code()), (400, "bad_request"));
    let r = app.get("/api/channels/abc/messages", Some(&token)).await;
    assert_eq!((r.status, r.code()), (400, "bad_request"));
}

#[tokio::test]
async fn an_oversized_body_is_413_too_large() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user("alice").await;
    let c = app.channel(&token, "general").await;
    let body = json!({"content": "x".repeat(100 * 1024)}).to_string();
    let path = format!("/api/channels/{c}/messages");
    let r = app
        .raw(&path, Some(&token), "application/json", body.into_bytes())
        .await;
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.code(), "too_large");
}

#[tokio::test]
async fn login_gives_a_token_that_me_accepts() {
    let app = TestApp::spawn().await;
    let id = app.register("alice", "password-123").await.body["id"].clone();
    // Usernames are case-insensitive at login too.
    let r = app.login("Alice", "password-123").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["user"]["id"], id);
    assert_eq!(r.body["user"]["username"], "alice");
    assert!(r.body["expires_at"].is_string());
    let token = r.body["token"].as_str().unwrap();
    let me = app.me(token).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["id"], id);
    assert_eq!(me.body["username"], "alice");
    let r = app.get("/api/me", None).await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_401() {
    let app = TestApp::spawn().await;
    app.register("alice", "password-123").await;
    let wrong = app.login("alice", "password-999").await;
    let unknown = app.login("nobody", "password-123").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(
        wrong.body,
        json!({"error": {"code": "unauthorized", "message": "invalid username or password"}})
    );
}

#[tokio::test]
async fn login_attempts_are_limited_per_username_and_per_address() {
    let app = TestApp::spawn().await;
    app.register("alice", "password-123").await;
    // Ten failures for alice from one address, then 429 even with the right password.
    for _ in 0..10 {
        let r = app
            .login_from("alice", "wrong-pass", Some("10.0.0.1"))
            .await;
        assert_eq!(r.status, 401);
    }
    let r = app
        .login_from("alice", "password-123", Some("10.0.0.2"))
        .await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"), "{r:?}");
    assert!(r.body["error"]["retry_after_ms"].as_u64().unwrap() > 0);
    // Address 10.0.0.1 used its allowance too: another user from it is refused.
    app.register("bob", "password-123").await;
    let r = app
        .login_from("bob", "password-123", Some("10.0.0.1"))
        .await;
    assert_eq!(r.status, 429, "{r:?}");
    // Bob from a fresh address is fine, and successes do not use up the allowance.
    for _ in 0..15 {
        let r = app
            .login_from("bob", "password-123", Some("10.0.0.3"))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    // Only the last hop counts (the one our proxy appended): a spoofed first hop does not help.
    let r = app
        .login_from("bob", "password-123", Some("10.0.0.3, 10.0.0.1"))
        .await;
    assert_eq!(r.status, 429, "{r:?}");
}

#[tokio::test]
async fn users_are_listed_with_presence_and_paged() {
    let app = TestApp::spawn().await;
    let (alice, token) = app.user("alice").await;
    let (bob, _) = app.user("bob").await;
    let (carol, _) = app.user("carol").await;
    // Bob has a socket on a (pretend) edge with a live lease.
    let redis = crate::pubsub::redis().await;
    let edge = format!("api-test-{bob}");
    shared::presence::refresh_lease(&redis, &edge)
        .await
        .unwrap();
    shared::presence::socket_opened(&redis, &edge, bob)
        .await
        .unwrap();

    let r = app.users(&token, "").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body,
        json!({"users": [
            {"id": alice, "username": "alice", "online": false},
            {"id": bob, "username": "bob", "online": true},
            {"id": carol, "username": "carol", "online": false},
        ], "next": null})
    );
    let r = app.users(&token, "?online=true").await;
    assert_eq!(
        r.body,
        json!({"users": [{"id": bob, "username": "bob", "online": true}], "next": null})
    );
    let r = app.users(&token, "?limit=2").await;
    assert_eq!(r.body["users"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["next"], bob);
    let r = app.users(&token, &format!("?after={bob}&limit=2")).await;
    assert_eq!(r.body["users"][0]["id"], carol);
    assert_eq!(r.body["next"], json!(null));
    shared::presence::release(&redis, &edge).await.unwrap();
    let r = app.users(&token, "?online=true").await;
    assert_eq!(r.body["users"], json!([]));
}

#[tokio::test]
async fn health_metrics_web_client_and_unknown_routes() {
    let app = TestApp::spawn().await;
    let r = app.health().await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"status": "ok", "postgres": "up", "redis": "up"})
    );
    let (status, text) = app.text("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains("http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"}"),
        "{text}"
    );
    let (status, html) = app.text("/").await;
    assert_eq!(status, 200);
    assert!(html.contains("<html") && html.contains(r#"src="/app.js""#));
    // The page's assets and the JavaScript client library it imports, embedded in the binary.
    for (path, needle) in [
        ("/app.js", "/js/chat-client/index.js"),
        ("/app.css", ".msg"),
        ("/favicon.ico", "<svg"),
        ("/favicon.svg", "<svg"),
        ("/js/chat-client/index.js", "export { connect"),
        ("/js/chat-client/client.js", "export class ChatClient"),
    ] {
        let (status, body) = app.text(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(body.contains(needle), "{path}: {body:.200}");
    }
    let r = app.get("/js/chat-client/nope.js", None).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = app.get("/api/nope", None).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
}

//! Hostile input at the api-server, as tables of one test per row: forged tokens (the rows
//! `tokens::forged_tokens_get_401` does not have), a deleted user's token, content that looks
//! like SQL or carries NUL, bidi overrides or 4-byte characters, and slowloris.
//!
//! Rows covered elsewhere, not repeated here: `alg: none`, HS512, wrong signature, expired,
//! `exp` as a string, no `exp`, garbage (`tokens::forged_tokens_get_401`); login brute force,
//! 429 per username and per address (`accounts::login_attempts_are_limited_per_username_and_per_address`);
//! a flood of sends, 429 and nothing stored (`messages::sends_over_the_rate_get_429_and_store_nothing`).

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

use crate::support::{test_config, TestApp};
use crate::tokens::{b64, hs256};

fn claims(sub: i64) -> Value {
    let now = Utc::now().timestamp();
    json!({"sub": sub, "name": "alice", "exp": now + 600, "iat": now})
}

/// `claims(sub)` with `key` set to `value` (or removed, for `Value::Null`).
fn claims_with(sub: i64, key: &str, value: Value) -> Value {
    let mut c = claims(sub);
    match value {
        Value::Null => c.as_object_mut().unwrap().remove(key),
        v => c.as_object_mut().unwrap().insert(key.to_owned(), v),
    };
    c
}

fn signed(header: Value, claims: Value) -> String {
    hs256(testkit::JWT_SECRET.as_bytes(), &header, &claims)
}

/// Asserts `token` gets 401 `unauthorized` on a read and on a write route.
async fn refused_everywhere(app: &TestApp, token: &str) {
    let r = app.me(token).await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"), "{r:?}");
    let r = app.create_channel(token, "from-a-forged-token").await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"), "{r:?}");
}

/// Token rows: each token (built from the user's id) is refused on every route.
macro_rules! token_rows {
    ($($name:ident: |$sub:ident| $token:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            let app = TestApp::spawn().await;
            let (id, _) = app.user("alice").await;
            // Control: a hand-made token with the right key and claims is accepted.
            assert_eq!(app.me(&signed(json!({"alg": "HS256"}), claims(id))).await.status, 200);
            let token = (|$sub: i64| -> String { $token })(id);
            refused_everywhere(&app, &token).await;
        }
    )*};
}

token_rows! {
    api_token_rs256_header_signed_with_the_hmac_secret_is_refused: |id| signed(json!({"alg": "RS256", "typ": "JWT"}), claims(id));
    api_token_nbf_in_the_future_is_refused: |id| signed(json!({"alg": "HS256"}), claims_with(id, "nbf", json!(Utc::now().timestamp() + 600)));
    api_token_nbf_as_a_string_is_refused: |id| signed(json!({"alg": "HS256"}), claims_with(id, "nbf", json!("0")));
    api_token_without_sub_is_refused: |id| signed(json!({"alg": "HS256"}), claims_with(id, "sub", Value::Null));
    api_token_with_a_tampered_payload_is_refused: |id| {
        let t = signed(json!({"alg": "HS256"}), claims(id));
        let parts: Vec<&str> = t.split('.').collect();
        format!("{}.{}.{}", parts[0], b64(claims(id + 1).to_string().as_bytes()), parts[2])
    };
}

#[tokio::test]
async fn api_token_for_a_deleted_user_is_refused() {
    let config = test_config().await;
    let db_url = config.database_url.clone();
    let app = TestApp::start(config).await;
    let (id, token) = app.user("ghost").await;
    assert_eq!(app.me(&token).await.status, 200, "control");
    let (db, conn) = tokio_postgres::connect(&db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    assert_eq!(
        db.execute("DELETE FROM users WHERE id = $1", &[&id])
            .await
            .unwrap(),
        1
    );
    refused_everywhere(&app, &token).await;
    let r = app.my_channels(&token).await;
    assert_eq!(r.status, 401, "{r:?}");
}

/// Content rows: sent over HTTP, then stored and returned byte-exact (in the answer and in
/// history), or refused with 400 `validation` naming the problem and nothing stored.
macro_rules! content_rows {
    ($($name:ident: $content:expr => $ok:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            let app = TestApp::spawn().await;
            let (_, t) = app.user("alice").await;
            let c = app.channel(&t, "general").await;
            let content: String = $content;
            let r = app.send(&t, c, json!({"content": content})).await;
            let h = app.history(&t, c, "").await;
            let stored = h.body["messages"].as_array().unwrap().clone();
            if $ok {
                assert_eq!(r.status, 201, "{r:?}");
                assert_eq!(r.body["content"].as_str().unwrap().as_bytes(), content.as_bytes());
                assert_eq!(stored.len(), 1);
                assert_eq!(stored[0]["content"].as_str().unwrap().as_bytes(), content.as_bytes());
            } else {
                assert_eq!((r.status, r.code()), (400, "validation"), "{r:?}");
                let msg = r.body["error"]["message"].as_str().unwrap();
                assert!(msg.contains("NUL"), "{msg}");
                assert!(stored.is_empty(), "{stored:?}");
            }
        }
    )*};
}

content_rows! {
    api_content_that_looks_like_sql_is_stored_byte_exact: "x'); DROP TABLE messages; -- \\' OR '1'='1' /* $1 */".to_owned() => true;
    api_content_with_bidi_overrides_is_stored_byte_exact: "\u{202E}gnp.exe\u{202C} \u{2066}x\u{2069} \u{200F}".to_owned() => true;
    api_content_of_4000_four_byte_characters_is_stored_byte_exact: "\u{1F600}\u{10348}\u{1D11E}\u{20000}".repeat(1000) => true;
    api_content_with_a_nul_is_refused_with_a_clear_error: "before\u{0}after".to_owned() => false;
    api_content_that_is_only_a_nul_is_refused_with_a_clear_error: "\u{0}".to_owned() => false;
}

/// Channel name rows: created and listed byte-exact, or refused with 400 `validation`.
macro_rules! channel_name_rows {
    ($($name:ident: $channel:expr => $ok:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            let app = TestApp::spawn().await;
            let (_, t) = app.user("alice").await;
            let name: &str = $channel;
            let r = app.create_channel(&t, name).await;
            let mine = app.my_channels(&t).await;
            let names: Vec<&str> = mine.body["channels"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
            if $ok {
                assert_eq!(r.status, 201, "{r:?}");
                assert_eq!(names, vec![name]);
            } else {
                assert_eq!((r.status, r.code()), (400, "validation"), "{r:?}");
                assert!(names.is_empty(), "{names:?}");
            }
        }
    )*};
}

channel_name_rows! {
    api_channel_name_that_looks_like_sql_is_stored_byte_exact: "general'; DROP TABLE channels; --" => true;
    api_channel_name_of_four_byte_characters_is_stored_byte_exact: "\u{1F600}\u{1D11E}\u{20000}" => true;
    api_channel_name_with_a_nul_is_refused_with_a_clear_error: "gen\u{0}eral" => false;
}

/// A slowloris on the api-server: header bytes trickle in (one every 200 ms, so the test is
/// short) and the server closes the connection once its header read timeout (1 s here, 10 s
/// by default) is over. Behind HAProxy, `timeout http-request 10s` cuts it off first.
#[tokio::test]
async fn api_slowloris_is_cut_off_by_the_header_read_timeout() {
    let mut config = test_config().await;
    config.header_read_timeout = Duration::from_secs(1);
    let app = TestApp::start(config).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    testkit::slowloris::assert_cut_off(&addr).await;
    // A whole request still gets its answer.
    assert_eq!(app.get("/health", None).await.status, 200);
}

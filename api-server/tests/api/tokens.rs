//! Forged and expired tokens are refused with 401 on every authenticated route.

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::support::TestApp;

/// URL-safe base64 without padding.
pub(crate) fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, &x| acc << 8 | x as u32) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A token built by hand: `header.claims` signed with HS256 under `secret`.
pub(crate) fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = jsonwebtoken::crypto::sign(
        input.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{input}.{sig}")
}

#[tokio::test]
async fn forged_tokens_get_401() {
    let app = TestApp::spawn().await;
    let (id, good) = app.user("alice").await;
    let secret = testkit::JWT_SECRET.as_bytes();
    let exp = Utc::now().timestamp() + 600;
    let hdr = json!({"alg": "HS256", "typ": "JWT"});
    let claims = json!({"sub": id, "name": "alice", "exp": exp, "iat": 0});

    // Control: the real token and a hand-made one with the right key are accepted.
    assert_eq!(app.me(&good).await.status, 200);
    assert_eq!(app.me(&hs256(secret, &hdr, &claims)).await.status, 200);

    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    );
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap();
    let expired = json!({"sub": id, "name": "alice", "exp": Utc::now().timestamp() - 5, "iat": 0});
    let exp_string = json!({"sub": id, "name": "alice", "exp": exp.to_string(), "iat": 0});
    let no_exp = json!({"sub": id, "name": "alice", "iat": 0});
    let forged = [
        (
            "wrong signature",
            hs256(b"another-secret-0123456789abcdef-xyz", &hdr, &claims),
        ),
        ("alg none", none),
        ("another algorithm", hs512),
        ("expired", hs256(secret, &hdr, &expired)),
        ("exp as a string", hs256(secret, &hdr, &exp_string)),
        ("no exp", hs256(secret, &hdr, &no_exp)),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (what, token) in forged {
        for path in ["/api/me", "/api/me/channels", "/api/channels"] {
            let r = app.get(path, Some(&token)).await;
            assert_eq!(r.status, 401, "{what} on {path}: {r:?}");
            assert_eq!(r.code(), "unauthorized", "{what}");
        }
        let r = app.send(&token, 1, json!({"content": "hi"})).await;
        assert_eq!(r.status, 401, "{what}: {r:?}");
    }
    let r = app.me("").await;
    assert_eq!(r.status, 401);
}

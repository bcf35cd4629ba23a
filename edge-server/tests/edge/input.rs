//! Handshake rules (SPEC 4) and bad input (SPEC 6): an `error` frame with the socket kept
//! open and nothing stored, or the close code the spec names.

use std::time::Duration;

use futures_util::SinkExt;
use shared::protocol::{ErrorCode, ServerFrame};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::common::*;

async fn ws_status(edge: &TestEdge, query: &str, headers: &[(&str, &str)]) -> u16 {
    let mut req = format!("ws://{}/ws{query}", edge.addr)
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((_, resp)) => resp.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn handshake_checks_token_and_origin_before_upgrading() {
    let env = Env::new().await;
    let alice = env.user("alice").await;
    let edge = env
        .edge_with(|c| c.allowed_origins = vec!["https://chat.example".into()])
        .await;
    let good = env.token(&alice);
    let expired = env
        .keys
        .issue_with_expiry(
            alice.id,
            "alice",
            chrono::Utc::now() - chrono::Duration::seconds(5),
        )
        .unwrap()
        .0;
    let other = shared::auth::JwtKeys::new(&[b'z'; 32], Duration::from_secs(60))
        .unwrap()
        .issue(alice.id, "alice")
        .unwrap()
        .0;
    assert_eq!(ws_status(&edge, "", &[]).await, 401);
    assert_eq!(
        ws_status(&edge, &format!("?token={expired}"), &[]).await,
        401
    );
    assert_eq!(ws_status(&edge, &format!("?token={other}"), &[]).await, 401);
    assert_eq!(ws_status(&edge, "?token=garbage", &[]).await, 401);
    let q = format!("?token={good}");
    assert_eq!(
        ws_status(&edge, &q, &[("origin", "https://evil.example")]).await,
        403
    );
    assert_eq!(
        ws_status(&edge, &q, &[("origin", "https://chat.example.evil")]).await,
        403
    );
    assert_eq!(
        ws_status(&edge, &q, &[("origin", "https://chat.example")]).await,
        101
    );
    assert_eq!(ws_status(&edge, &q, &[]).await, 101);
    let bearer = format!("Bearer {good}");
    assert_eq!(
        ws_status(&edge, "", &[("authorization", &bearer)]).await,
        101
    );
    let (status, _) = http_get(&edge.url("/health"), &[]).await;
    assert_eq!(status, 200);
    let (status, body) = http_get(&edge.url("/metrics"), &[]).await;
    assert_eq!(status, 200);
    assert!(body.contains("edge_sockets{"), "{body}");
}

#[tokio::test]
async fn a_token_that_expires_closes_the_socket_with_4001() {
    let env = Env::new().await;
    let alice = env.user("alice").await;
    let edge = env.edge().await;
    let (token, _) = env
        .keys
        .issue_with_expiry(
            alice.id,
            "alice",
            chrono::Utc::now() + chrono::Duration::seconds(2),
        )
        .unwrap();
    let mut c = Client::connect(edge.addr, &token).await;
    assert_eq!(c.closed().await, Some(4001));
}

fn error_code(f: &ServerFrame) -> Option<(ErrorCode, Option<String>)> {
    match f {
        ServerFrame::Error {
            code,
            client_msg_id,
            ..
        } => Some((*code, client_msg_id.clone())),
        _ => None,
    }
}

#[tokio::test]
async fn bad_input_gets_an_error_frame_the_socket_stays_open_nothing_stored() {
    let env = Env::new().await;
    let (a, b) = (env.user("alice").await, env.user("bob").await);
    let ch = env.channel("general", &[&a]).await;
    let theirs = env.channel("private", &[&b]).await;
    let edge = env
        .edge_with(|c| {
            c.limits.send_rate_per_sec = 0.1;
            // The `reply_to` case below reaches the store and takes a token.
            c.limits.send_burst = 4.0;
        })
        .await;
    let mut c = env.connect(&edge, &a).await;
    let id = ch.id;
    let cases: Vec<(&str, String, ErrorCode, Option<&str>)> = vec![
        (
            "malformed json",
            "{\"type\":\"send\",".into(),
            ErrorCode::BadRequest,
            None,
        ),
        ("not an object", "[1,2]".into(), ErrorCode::BadRequest, None),
        (
            "unknown type",
            r#"{"type":"dance"}"#.into(),
            ErrorCode::BadRequest,
            None,
        ),
        (
            "missing type",
            r#"{"channel_id":1}"#.into(),
            ErrorCode::BadRequest,
            None,
        ),
        (
            "wrong field type",
            format!(r#"{{"type":"send","channel_id":"{id}","content":"x","client_msg_id":"w1"}}"#),
            ErrorCode::BadRequest,
            Some("w1"),
        ),
        (
            "wrong field type in read",
            format!(r#"{{"type":"read","channel_id":{id},"seq":"x"}}"#),
            ErrorCode::BadRequest,
            None,
        ),
        (
            "not a member",
            format!(
                r#"{{"type":"send","channel_id":{},"content":"x","client_msg_id":"n1"}}"#,
                theirs.id
            ),
            ErrorCode::Forbidden,
            Some("n1"),
        ),
        (
            "no such channel",
            r#"{"type":"send","channel_id":1,"content":"x","client_msg_id":"n2"}"#.into(),
            ErrorCode::Forbidden,
            Some("n2"),
        ),
        (
            "typing where not a member",
            format!(r#"{{"type":"typing","channel_id":{}}}"#, theirs.id),
            ErrorCode::Forbidden,
            None,
        ),
        (
            "blank content",
            format!(r#"{{"type":"send","channel_id":{id},"content":"  \n","client_msg_id":"v1"}}"#),
            ErrorCode::Validation,
            Some("v1"),
        ),
        (
            "content too long",
            format!(
                r#"{{"type":"send","channel_id":{id},"content":"{}","client_msg_id":"v2"}}"#,
                "é".repeat(4001)
            ),
            ErrorCode::Validation,
            Some("v2"),
        ),
        (
            "bad client_msg_id",
            format!(r#"{{"type":"send","channel_id":{id},"content":"x","client_msg_id":"a b"}}"#),
            ErrorCode::Validation,
            Some("a b"),
        ),
        (
            "reply_to nothing",
            format!(
                r#"{{"type":"send","channel_id":{id},"content":"x","client_msg_id":"v3","reply_to":99}}"#
            ),
            ErrorCode::Validation,
            Some("v3"),
        ),
        (
            "resume of a foreign channel",
            format!(r#"{{"type":"resume","channels":{{"{}":0}}}}"#, theirs.id),
            ErrorCode::Forbidden,
            None,
        ),
    ];
    for (what, text, code, cmid) in cases {
        c.send_raw(WsMessage::text(text)).await;
        let f = c.reply().await;
        assert_eq!(
            error_code(&f),
            Some((code, cmid.map(str::to_owned))),
            "{what}: {f:?}"
        );
        if what.starts_with("resume") {
            assert_eq!(c.reply().await, ServerFrame::Resumed);
        }
        // A pong proves the socket is still open.
        c.sync().await;
    }
    c.send_raw(WsMessage::binary(vec![1u8, 2, 3])).await;
    assert_eq!(
        error_code(&c.reply().await).map(|e| e.0),
        Some(ErrorCode::BadRequest)
    );
    assert_eq!(
        env.store
            .history(id, None, None, 10)
            .await
            .unwrap()
            .messages,
        vec![]
    );

    // Rate limit: a burst of 3, then rate_limited with a retry hint, nothing stored.
    for i in 0..3 {
        c.send(id, "ok", &format!("r{i}")).await;
    }
    c.send_json(
        serde_json::json!({"type":"send","channel_id":id,"content":"no","client_msg_id":"r9"}),
    )
    .await;
    match c.reply().await {
        ServerFrame::Error {
            code: ErrorCode::RateLimited,
            client_msg_id,
            retry_after_ms: Some(ms),
            ..
        } => {
            assert_eq!(client_msg_id.as_deref(), Some("r9"));
            assert!(ms >= 1);
        }
        f => panic!("{f:?}"),
    }
    assert_eq!(
        env.store
            .history(id, None, None, 10)
            .await
            .unwrap()
            .messages
            .len(),
        3
    );
    assert!(c
        .sync()
        .await
        .iter()
        .all(|f| !matches!(f, ServerFrame::Ack { .. })));
}

#[tokio::test]
async fn a_frame_over_the_limit_closes_with_1009() {
    let env = Env::new().await;
    let alice = env.user("alice").await;
    let ch = env.channel("general", &[&alice]).await;
    let edge = env.edge_with(|c| c.limits.max_frame_bytes = 8 * 1024).await;
    let mut c = env.connect(&edge, &alice).await;
    let big = format!(
        r#"{{"type":"send","channel_id":{},"content":"{}"}}"#,
        ch.id,
        "x".repeat(9000)
    );
    c.send_raw(WsMessage::text(big)).await;
    assert_eq!(c.closed().await, Some(1009));

    // Fragments each under the limit that add up past it.
    let mut c = env.connect(&edge, &alice).await;
    let chunk = vec![b'x'; 3000];
    let frag = |op: OpCode, fin: bool| {
        let h = FrameHeader {
            opcode: op,
            is_final: fin,
            ..Default::default()
        };
        WsMessage::Frame(Frame::from_payload(h, chunk.clone().into()))
    };
    c.ws.feed(frag(OpCode::Data(Data::Text), false))
        .await
        .unwrap();
    for _ in 0..3 {
        c.ws.feed(frag(OpCode::Data(Data::Continue), false))
            .await
            .unwrap();
    }
    let _ = c.ws.send(frag(OpCode::Data(Data::Continue), true)).await;
    assert_eq!(c.closed().await, Some(1009));
    assert!(env
        .store
        .history(ch.id, None, None, 10)
        .await
        .unwrap()
        .messages
        .is_empty());
}

#[tokio::test]
async fn a_socket_that_never_answers_pings_is_closed() {
    let env = Env::new().await;
    let alice = env.user("alice").await;
    let edge = env
        .edge_with(|c| {
            c.ping_interval = Duration::from_millis(200);
            c.pong_timeout = Duration::from_secs(1);
        })
        .await;
    let mut c = env.connect(&edge, &alice).await;
    // The client reads nothing (so it answers no ping) for longer than the pong timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(c.closed().await, Some(1008));

    // A client that reads (and so answers pings) stays connected past the timeout.
    let mut c = env.connect(&edge, &alice).await;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.sync().await;
    }
}

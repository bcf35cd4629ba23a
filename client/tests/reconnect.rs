//! The client against scripted fake edges: after a 1012 it reconnects to the next target,
//! resumes each channel from its last contiguous seq, resends the unacked send with the same
//! `client_msg_id`, and accounts the replay; an expired token is not retried.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chat_client::{frames, Backoff, Client, Delivery, Event, Next, Options};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::{
    accept_async, accept_hdr_async,
    tungstenite::{
        handshake::server::{ErrorResponse, Request, Response},
        http::StatusCode,
        protocol::{frame::coding::CloseCode, CloseFrame},
        Message as WsMessage,
    },
    WebSocketStream,
};

type Ws = WebSocketStream<TcpStream>;

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws?token=t", l.local_addr().unwrap());
    (l, url)
}

fn ready(edge: &str, last_seq: i64) -> WsMessage {
    let f = json!({"type": "ready", "session_id": "s", "edge": edge,
        "user": {"id": 1, "username": "a", "created_at": "2026-11-22T00:00:00Z"},
        "channels": [{"id": 5, "name": "c", "kind": "group", "last_seq": last_seq,
                      "last_read_seq": 0, "unread": 0}]});
    WsMessage::text(f.to_string())
}

fn message(kind: &str, seq: i64, cmid: &str) -> WsMessage {
    let f = json!({"type": kind, "client_msg_id": cmid, "message": {"id": "1", "channel_id": 5,
        "seq": seq, "sender_id": 1, "sender": "a", "content": "x", "reply_to": null,
        "client_msg_id": cmid, "created_at": "2026-11-22T00:00:00Z"}});
    WsMessage::text(f.to_string())
}

async fn read_json(ws: &mut Ws) -> Value {
    loop {
        match ws.next().await.unwrap().unwrap() {
            WsMessage::Text(t) => return serde_json::from_str(&t).unwrap(),
            _ => continue,
        }
    }
}

async fn close(ws: &mut Ws, code: u16) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: "".into(),
    };
    ws.send(WsMessage::Close(Some(frame))).await.unwrap();
}

fn options(targets: Vec<String>) -> Options {
    let mut o = Options::new(targets);
    o.backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(10));
    o.connect_timeout = Duration::from_secs(10);
    o
}

/// Reads frames until the socket ends, returning what the client state made of each.
async fn drain(client: &mut Client, conn: &mut chat_client::Connection) -> (Vec<Event>, Next) {
    let mut events = Vec::new();
    loop {
        match conn.next_text().await {
            Ok(t) => events.push(client.handle(&frames::parse(&t))),
            Err(d) => return (events, d.next()),
        }
    }
}

#[tokio::test]
async fn after_1012_it_resumes_on_the_next_target_and_resends_unacked_sends() {
    let (a, url_a) = listener().await;
    let (b, url_b) = listener().await;
    let edge_a = tokio::spawn(async move {
        let mut ws = accept_async(a.accept().await.unwrap().0).await.unwrap();
        ws.send(ready("edge-a", 2)).await.unwrap();
        let sends = [read_json(&mut ws).await, read_json(&mut ws).await];
        ws.send(message("message", 3, "other")).await.unwrap();
        ws.send(message("ack", 4, "c-1")).await.unwrap();
        ws.send(message("message", 6, "other")).await.unwrap();
        close(&mut ws, 1012).await;
        sends
    });
    let edge_b = tokio::spawn(async move {
        let mut ws = accept_async(b.accept().await.unwrap().0).await.unwrap();
        ws.send(ready("edge-b", 7)).await.unwrap();
        let (resume, resent) = (read_json(&mut ws).await, read_json(&mut ws).await);
        for f in [
            message("message", 8, "live"),
            message("message", 5, "gap"),
            message("message", 6, "seen before"),
            message("ack", 7, "c-2"),
            message("message", 7, "gap"),
            message("ack", 7, "c-2"),
            WsMessage::text(r#"{"type":"resumed"}"#),
            message("message", 8, "twice"),
        ] {
            ws.send(f).await.unwrap();
        }
        close(&mut ws, 1000).await;
        (resume, resent)
    });

    let mut client = Client::new(options(vec![url_a, url_b]));
    let (mut conn, r) = client.connect().await.unwrap();
    assert_eq!(r.edge, "edge-a");
    for (id, content) in [("c-1", "one"), ("c-2", "two")] {
        let f = client.send(5, content.into(), id.into());
        conn.send_text(f).await.unwrap();
    }
    let (events, next) = drain(&mut client, &mut conn).await;
    assert_eq!(next, Next::Reconnect);
    assert_eq!(
        events,
        [
            Event::Message(Some(Delivery::InOrder)),
            Event::Ack { first: true },
            Event::Message(Some(Delivery::InOrder)),
        ]
    );
    let sends = edge_a.await.unwrap();
    assert_eq!(client.outbox().len(), 1);

    let (mut conn, r) = client.reconnect().await.unwrap();
    assert_eq!((r.edge.as_str(), client.reconnects()), ("edge-b", 1));
    let (events, next) = drain(&mut client, &mut conn).await;
    assert_eq!(next, Next::Stop, "1000 is final");
    let (resume, resent) = edge_b.await.unwrap();
    // 3 received and 4 acked here: everything up to 4; 6 arrived, 5 did not.
    assert_eq!(resume, json!({"type": "resume", "channels": {"5": 4}}));
    assert_eq!(resent, sends[1], "the unacked send, as first written");
    assert_eq!(resent["client_msg_id"], "c-2");
    use Delivery::*;
    assert_eq!(
        events,
        [
            Event::Message(Some(InOrder)),
            Event::Message(Some(GapFilled)),
            Event::Message(Some(Replayed)),
            Event::Ack { first: true },
            Event::Message(Some(GapFilled)),
            Event::Ack { first: false },
            Event::Resumed(None),
            Event::Message(Some(Duplicate)),
        ]
    );
    assert!(client.outbox().is_empty());
    let t = client.seqs().get(5).unwrap();
    assert_eq!(
        (t.contiguous(), t.received, t.replayed, t.duplicated),
        (8, 5, 1, 1)
    );
}

/// The handshake of an edge that refuses the token (the signature is tungstenite's).
#[allow(clippy::result_large_err)]
fn refuse_token(_: &Request, _: Response) -> Result<Response, ErrorResponse> {
    let mut r = ErrorResponse::new(Some("expired".into()));
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    Err(r)
}

#[tokio::test]
async fn an_expired_token_is_not_retried_and_4001_asks_for_a_login() {
    let (l, url) = listener().await;
    let edge = tokio::spawn(async move {
        let mut ws = accept_async(l.accept().await.unwrap().0).await.unwrap();
        ws.send(ready("edge-1", 0)).await.unwrap();
        close(&mut ws, 4001).await;
        let _ = accept_hdr_async(l.accept().await.unwrap().0, refuse_token).await;
    });
    let mut client = Client::new(options(vec![url]));
    let (mut conn, _) = client.connect().await.unwrap();
    let (_, next) = drain(&mut client, &mut conn).await;
    assert_eq!(next, Next::LogInAgain);
    let err = client.reconnect().await.unwrap_err();
    assert!(err.log_in_again() && err.is_final(), "{err}");
    assert_eq!(client.reconnects(), 1, "a refused token is not tried again");
    edge.await.unwrap();
}

#[tokio::test]
async fn reconnects_stop_when_used_up() {
    let (l, url) = listener().await;
    drop(l);
    let mut o = options(vec![url]);
    o.max_reconnects = 3;
    let mut client = Client::new(o);
    assert!(client.connect().await.is_err());
    let err = client.reconnect().await.unwrap_err().to_string();
    assert!(
        err.starts_with("gave up after 3 reconnects (last: io: "),
        "{err}"
    );
    assert_eq!(client.reconnects(), 3);
}

/// A change (`event`) takes a seq of its channel: it moves the resume cursor like a message.
#[tokio::test]
async fn events_count_in_the_seq_stream_and_the_resume_cursor() {
    let (a, url_a) = listener().await;
    let (b, url_b) = listener().await;
    let edge_a = tokio::spawn(async move {
        let mut ws = accept_async(a.accept().await.unwrap().0).await.unwrap();
        ws.send(ready("edge-a", 2)).await.unwrap();
        let event = json!({"type": "event", "event": {"channel_id": 5, "seq": 4,
            "message_id": "1", "message_seq": 3, "user_id": 2, "client_msg_id": "r",
            "created_at": "2026-11-22T00:00:00Z", "kind": "reaction_added", "emoji": "👍",
            "count": 1}});
        ws.send(message("message", 3, "m")).await.unwrap();
        ws.send(WsMessage::text(event.to_string())).await.unwrap();
        ws.send(message("message", 5, "m")).await.unwrap();
        close(&mut ws, 1012).await;
    });
    let edge_b = tokio::spawn(async move {
        let mut ws = accept_async(b.accept().await.unwrap().0).await.unwrap();
        ws.send(ready("edge-b", 5)).await.unwrap();
        let resume = read_json(&mut ws).await;
        close(&mut ws, 1000).await;
        resume
    });
    let mut client = Client::new(options(vec![url_a, url_b]));
    let (mut conn, _) = client.connect().await.unwrap();
    let (events, _) = drain(&mut client, &mut conn).await;
    assert_eq!(
        events,
        [
            Event::Message(Some(Delivery::InOrder)),
            Event::Change(Some(Delivery::InOrder)),
            Event::Message(Some(Delivery::InOrder)),
        ]
    );
    edge_a.await.unwrap();
    let (mut conn, _) = client.reconnect().await.unwrap();
    drain(&mut client, &mut conn).await;
    assert_eq!(
        edge_b.await.unwrap(),
        json!({"type": "resume", "channels": {"5": 5}})
    );
}

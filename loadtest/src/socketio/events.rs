//! The peer chat app's events over Socket.IO (bench/peers/socketio/server.js): the connect
//! auth, the `send` event and its ack, the `message` event, and [`read`], which turns a text
//! frame into what a load-test socket acts on.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::packet::{self, Kind, Packet, PacketError};

/// The connect packet's auth: who the socket is and which channels' rooms it joins.
#[derive(Debug, Serialize)]
pub struct Auth<'a> {
    pub user_id: i64,
    pub channels: &'a [i64],
}

/// The `send` event's argument.
#[derive(Debug, Serialize)]
pub struct Send<'a> {
    pub channel_id: i64,
    pub content: &'a str,
    pub client_msg_id: &'a str,
}

/// The `message` event's argument, the fields the accounting reads.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct Message<'a> {
    pub channel_id: i64,
    pub seq: i64,
    #[serde(borrow)]
    pub content: Cow<'a, str>,
}

/// A `send`'s ack: `{seq, id}` once committed, or `{error}`.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct Ack {
    pub seq: Option<i64>,
    pub id: Option<i64>,
    #[serde(default)]
    pub error: Option<String>,
}

/// The connect packet's answer.
#[derive(Debug, Deserialize)]
pub struct Connected {
    pub sid: String,
}

/// A connect error's payload.
#[derive(Debug, Deserialize)]
pub struct ConnectError {
    pub message: String,
}

/// What a server frame means to a load-test socket.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// Engine.IO ping: answer [`packet::PONG`].
    Ping,
    Message(Message<'a>),
    Ack {
        ack_id: u64,
        ack: Ack,
    },
    /// The server ended the session (Engine.IO close, Socket.IO disconnect or connect error).
    Ended(String),
    /// Anything else (pong, noop, another event or namespace): nothing to do.
    Other,
}

/// Reads one server frame.
pub fn read(text: &str) -> Result<Incoming<'_>, PacketError> {
    let p = match packet::decode(text)? {
        Packet::Ping(_) => return Ok(Incoming::Ping),
        Packet::Close => return Ok(Incoming::Ended("engine.io close".into())),
        Packet::Socket(p) if p.namespace == "/" => p,
        _ => return Ok(Incoming::Other),
    };
    Ok(match p.kind {
        Kind::Event => match p.event::<Message>() {
            Ok((name, m)) if name == "message" => Incoming::Message(m),
            Ok(_) => Incoming::Other,
            Err(e) if p.event_name()? == "message" => return Err(e),
            Err(_) => Incoming::Other,
        },
        Kind::Ack => match p.ack_id {
            Some(ack_id) => Incoming::Ack {
                ack_id,
                ack: p.ack_arg()?,
            },
            None => return Err(PacketError::AckId),
        },
        Kind::Disconnect => Incoming::Ended("socket.io disconnect".into()),
        Kind::ConnectError => Incoming::Ended(format!(
            "socket.io connect error: {}",
            p.payload::<ConnectError>()
                .map(|e| e.message)
                .unwrap_or_else(|_| p.data.to_owned())
        )),
        Kind::Connect | Kind::BinaryEvent | Kind::BinaryAck => Incoming::Other,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn auth_and_send_encode_as_the_peer_reads_them() {
        let auth = packet::connect(&Auth {
            user_id: 7,
            channels: &[100, 101],
        })
        .unwrap();
        assert_eq!(auth, r#"40{"user_id":7,"channels":[100,101]}"#);
        let send = packet::event_with_ack(
            3,
            "send",
            &Send {
                channel_id: 100,
                content: "123 xx",
                client_msg_id: "4-9",
            },
        )
        .unwrap();
        assert_eq!(
            send,
            r#"423["send",{"channel_id":100,"content":"123 xx","client_msg_id":"4-9"}]"#
        );
    }

    #[test]
    fn reads_what_the_peer_sends() {
        assert_eq!(read("2").unwrap(), Incoming::Ping);
        assert_eq!(read("3").unwrap(), Incoming::Other);
        let m = r#"42["message",{"id":5,"channel_id":100,"seq":3,"sender_id":7,"content":"123 xx","client_msg_id":"4-9","created_at":"2026-12-05T10:00:00.000Z"}]"#;
        assert_eq!(
            read(m).unwrap(),
            Incoming::Message(Message {
                channel_id: 100,
                seq: 3,
                content: Cow::Borrowed("123 xx")
            })
        );
        assert_eq!(
            read(r#"4312[{"seq":3,"id":5}]"#).unwrap(),
            Incoming::Ack {
                ack_id: 12,
                ack: Ack {
                    seq: Some(3),
                    id: Some(5),
                    error: None
                }
            }
        );
        assert_eq!(
            read(r#"430[{"error":"not_member"}]"#).unwrap(),
            Incoming::Ack {
                ack_id: 0,
                ack: Ack {
                    seq: None,
                    id: None,
                    error: Some("not_member".into())
                }
            }
        );
        assert_eq!(
            read("1").unwrap(),
            Incoming::Ended("engine.io close".into())
        );
        assert_eq!(
            read("41").unwrap(),
            Incoming::Ended("socket.io disconnect".into())
        );
        assert_eq!(
            read(r#"44{"message":"unavailable"}"#).unwrap(),
            Incoming::Ended("socket.io connect error: unavailable".into())
        );
        // Other events and namespaces pass; a malformed `message` or ack is an error.
        assert_eq!(read(r#"42["typing",{"x":1}]"#).unwrap(), Incoming::Other);
        assert_eq!(read(r#"42["typing"]"#).unwrap(), Incoming::Other);
        assert_eq!(read(r#"42/admin,["message",{}]"#).unwrap(), Incoming::Other);
        assert!(read(r#"42["message",{"seq":"x"}]"#).is_err());
        assert!(read(r#"43[{"seq":1}]"#).is_err());
        assert!(read(r#"431[]"#).is_err());
        assert!(read("x").is_err());
    }
}

//! Engine.IO v4 and Socket.IO v5 packets as they travel in WebSocket text frames: decoding a
//! frame into a borrowed [`Packet`] and encoding the few packets a client sends (connect with
//! auth, event with an ack id, pong). Binary attachments are recognised but not supported.
//!
//! An Engine.IO packet is one type digit and its data: `0` open (JSON handshake), `1` close,
//! `2` ping, `3` pong, `4` message, `5` upgrade, `6` noop. A message carries a Socket.IO packet:
//! a type digit (`0` connect, `1` disconnect, `2` event, `3` ack, `4` connect error, `5`/`6`
//! binary event/ack), then `<attachments>-` for binary types, `/<namespace>,` unless the
//! namespace is `/`, the ack id in decimal digits, and the JSON payload.

use std::borrow::Cow;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// The path and query of the Socket.IO endpoint, WebSocket transport straight away.
pub const WS_PATH: &str = "/socket.io/?EIO=4&transport=websocket";
/// The Engine.IO pong a client answers every ping with.
pub const PONG: &str = "3";

/// Why a frame is no packet we can read.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    #[error("empty frame")]
    Empty,
    #[error("unknown Engine.IO packet type {0:?}")]
    EngineType(char),
    #[error("unknown Socket.IO packet type {0:?}")]
    SocketType(char),
    #[error("bad attachment count")]
    Attachments,
    #[error("namespace without its closing ','")]
    Namespace,
    #[error("bad ack id")]
    AckId,
    #[error("payload: {0}")]
    Json(#[from] serde_json::Error),
}

/// The Engine.IO handshake (`0{...}`), the server's first frame.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Open {
    pub sid: String,
    #[serde(default)]
    pub upgrades: Vec<String>,
    /// Milliseconds between the server's pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for the pong.
    pub ping_timeout: u64,
    #[serde(default)]
    pub max_payload: u64,
}

/// An Engine.IO packet, borrowing its data from the frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    Open(Open),
    Close,
    /// Engine.IO ping, with the probe data if any.
    Ping(&'a str),
    Pong(&'a str),
    Upgrade,
    Noop,
    /// A Socket.IO packet inside an Engine.IO message.
    Socket(SocketPacket<'a>),
}

/// The Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
    BinaryEvent,
    BinaryAck,
}

impl Kind {
    fn from_digit(c: char) -> Option<Kind> {
        Some(match c {
            '0' => Kind::Connect,
            '1' => Kind::Disconnect,
            '2' => Kind::Event,
            '3' => Kind::Ack,
            '4' => Kind::ConnectError,
            '5' => Kind::BinaryEvent,
            '6' => Kind::BinaryAck,
            _ => return None,
        })
    }

    fn is_binary(self) -> bool {
        matches!(self, Kind::BinaryEvent | Kind::BinaryAck)
    }
}

/// A Socket.IO packet; `data` is its JSON payload as it came (empty when there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketPacket<'a> {
    pub kind: Kind,
    /// Binary attachments that follow in their own frames (binary types only).
    pub attachments: u32,
    /// `/` unless the packet names another namespace.
    pub namespace: &'a str,
    pub ack_id: Option<u64>,
    pub data: &'a str,
}

impl<'a> SocketPacket<'a> {
    /// An event's name and its one argument: `["name", arg]`.
    pub fn event<T: Deserialize<'a>>(&self) -> Result<(Cow<'a, str>, T), PacketError> {
        #[derive(Deserialize)]
        struct Event<'b, U>(#[serde(borrow)] Cow<'b, str>, U);
        let Event(name, arg) = serde_json::from_str(self.data)?;
        Ok((name, arg))
    }

    /// An event's name alone, whatever its arguments.
    pub fn event_name(&self) -> Result<String, PacketError> {
        let EventName(name) = serde_json::from_str(self.data)?;
        Ok(name)
    }

    /// The one argument of an ack: `[arg]`.
    pub fn ack_arg<T: Deserialize<'a>>(&self) -> Result<T, PacketError> {
        let (arg,): (T,) = serde_json::from_str(self.data)?;
        Ok(arg)
    }

    /// The payload of a connect or connect error packet.
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, PacketError> {
        Ok(serde_json::from_str(self.data)?)
    }
}

/// The first element of an event's array, the rest skipped.
struct EventName(String);

impl<'de> Deserialize<'de> for EventName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = EventName;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array starting with the event name")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<EventName, A::Error> {
                let name: String = seq
                    .next_element()?
                    .ok_or_else(|| serde::de::Error::invalid_length(0, &self))?;
                // Bounded by the frame: every element is read once.
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(EventName(name))
            }
        }
        d.deserialize_seq(Visitor)
    }
}

/// Reads one text frame.
pub fn decode(text: &str) -> Result<Packet<'_>, PacketError> {
    let mut chars = text.chars();
    let kind = chars.next().ok_or(PacketError::Empty)?;
    let rest = chars.as_str();
    Ok(match kind {
        '0' => Packet::Open(serde_json::from_str(rest)?),
        '1' => Packet::Close,
        '2' => Packet::Ping(rest),
        '3' => Packet::Pong(rest),
        '4' => Packet::Socket(decode_socket(rest)?),
        '5' => Packet::Upgrade,
        '6' => Packet::Noop,
        c => return Err(PacketError::EngineType(c)),
    })
}

fn decode_socket(text: &str) -> Result<SocketPacket<'_>, PacketError> {
    let mut chars = text.chars();
    let c = chars.next().ok_or(PacketError::Empty)?;
    let kind = Kind::from_digit(c).ok_or(PacketError::SocketType(c))?;
    let mut rest = chars.as_str();
    let mut attachments = 0;
    if kind.is_binary() {
        let (n, after) = rest.split_once('-').ok_or(PacketError::Attachments)?;
        attachments = n.parse().map_err(|_| PacketError::Attachments)?;
        rest = after;
    }
    let mut namespace = "/";
    if rest.starts_with('/') {
        let (ns, after) = rest.split_once(',').ok_or(PacketError::Namespace)?;
        namespace = ns;
        rest = after;
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack_id = if digits == 0 {
        None
    } else {
        Some(rest[..digits].parse().map_err(|_| PacketError::AckId)?)
    };
    Ok(SocketPacket {
        kind,
        attachments,
        namespace,
        ack_id,
        data: &rest[digits..],
    })
}

/// `40{auth}`: connect to the main namespace with an auth payload.
pub fn connect(auth: &impl Serialize) -> Result<String, serde_json::Error> {
    Ok(format!("40{}", serde_json::to_string(auth)?))
}

/// `42<id>["name",arg]`: an event on the main namespace whose ack comes back as `43<id>[...]`.
pub fn event_with_ack(
    ack_id: u64,
    name: &str,
    arg: &impl Serialize,
) -> Result<String, serde_json::Error> {
    Ok(format!(
        "42{ack_id}{}",
        serde_json::to_string(&(name, arg))?
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_the_engine_io_handshake_and_control_packets() {
        let open = r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        let Packet::Open(o) = decode(open).unwrap() else {
            panic!("not open")
        };
        assert_eq!(o.sid, "lv_VI97HAXpY6yYWAAAC");
        assert_eq!((o.ping_interval, o.ping_timeout), (25_000, 20_000));
        assert_eq!(o.max_payload, 1_000_000);
        assert_eq!(decode("1").unwrap(), Packet::Close);
        assert_eq!(decode("2").unwrap(), Packet::Ping(""));
        assert_eq!(decode("2probe").unwrap(), Packet::Ping("probe"));
        assert_eq!(decode("3").unwrap(), Packet::Pong(""));
        assert_eq!(decode("5").unwrap(), Packet::Upgrade);
        assert_eq!(decode("6").unwrap(), Packet::Noop);
        assert!(matches!(decode(""), Err(PacketError::Empty)));
        assert!(matches!(decode("9"), Err(PacketError::EngineType('9'))));
        assert!(matches!(decode("0{not json"), Err(PacketError::Json(_))));
        assert!(matches!(decode("0{}"), Err(PacketError::Json(_))));
    }

    fn socket(text: &str) -> SocketPacket<'_> {
        match decode(text).unwrap() {
            Packet::Socket(p) => p,
            other => panic!("{text}: not a Socket.IO packet: {other:?}"),
        }
    }

    #[test]
    fn reads_socket_io_connect_disconnect_and_errors() {
        let p = socket(r#"40{"sid":"wZX3oN0bSVIhsaknAAAI"}"#);
        assert_eq!((p.kind, p.namespace, p.ack_id), (Kind::Connect, "/", None));
        #[derive(Deserialize)]
        struct Sid {
            sid: String,
        }
        assert_eq!(p.payload::<Sid>().unwrap().sid, "wZX3oN0bSVIhsaknAAAI");
        let p = socket("41");
        assert_eq!((p.kind, p.data), (Kind::Disconnect, ""));
        let p = socket(r#"44{"message":"auth must be {user_id, channels: [ids]}"}"#);
        assert_eq!(p.kind, Kind::ConnectError);
        let v: serde_json::Value = p.payload().unwrap();
        assert_eq!(v["message"], "auth must be {user_id, channels: [ids]}");
        let p = socket(r#"40/admin,{"sid":"x"}"#);
        assert_eq!((p.namespace, p.data), ("/admin", r#"{"sid":"x"}"#));
        assert!(matches!(decode("4"), Err(PacketError::Empty)));
        assert!(matches!(decode("47"), Err(PacketError::SocketType('7'))));
        assert!(matches!(decode("40/admin"), Err(PacketError::Namespace)));
    }

    #[test]
    fn reads_events_acks_and_their_arguments() {
        #[derive(Debug, Deserialize, PartialEq)]
        struct Msg<'a> {
            seq: i64,
            #[serde(borrow)]
            content: Cow<'a, str>,
        }
        let p = socket(r#"42["message",{"seq":7,"content":"12 x","extra":[1,2]}]"#);
        assert_eq!((p.kind, p.ack_id), (Kind::Event, None));
        let (name, m): (_, Msg) = p.event().unwrap();
        assert_eq!(name, "message");
        assert_eq!(m.seq, 7);
        assert!(matches!(m.content, Cow::Borrowed("12 x")));
        assert_eq!(p.event_name().unwrap(), "message");
        // Escapes are decoded into an owned string.
        let p = socket(r#"42["message",{"seq":8,"content":"a\"b"}]"#);
        let (_, m): (Cow<str>, Msg) = p.event().unwrap();
        assert_eq!(m.content, "a\"b");

        let p = socket(r#"4312[{"seq":5,"id":99}]"#);
        assert_eq!((p.kind, p.ack_id), (Kind::Ack, Some(12)));
        let v: serde_json::Value = p.ack_arg().unwrap();
        assert_eq!((v["seq"].as_i64(), v["id"].as_i64()), (Some(5), Some(99)));

        // An event that wants an ack, in another namespace.
        let p = socket(r#"42/chat,3["ping",{}]"#);
        assert_eq!((p.namespace, p.ack_id), ("/chat", Some(3)));
        assert_eq!(p.event_name().unwrap(), "ping");

        // Binary types: the attachment count comes first.
        let p = socket(r#"451-["file",{"_placeholder":true,"num":0}]"#);
        assert_eq!((p.kind, p.attachments), (Kind::BinaryEvent, 1));
        let p = socket(r#"461-/chat,4[{"_placeholder":true,"num":0}]"#);
        assert_eq!(
            (p.kind, p.attachments, p.ack_id),
            (Kind::BinaryAck, 1, Some(4))
        );
        assert!(matches!(decode("45x-[]"), Err(PacketError::Attachments)));
        assert!(matches!(decode("45[]"), Err(PacketError::Attachments)));
        assert!(matches!(
            decode("4399999999999999999999[{}]"),
            Err(PacketError::AckId)
        ));

        // Wrong shapes are errors, never panics.
        for bad in [
            r#"42{"seq":1}"#,
            "42[]",
            r#"42["message"]"#,
            "42[1,2]",
            "42",
        ] {
            assert!(socket(bad).event::<Msg>().is_err(), "{bad}");
        }
        assert!(socket("43[]").ack_arg::<serde_json::Value>().is_err());
        assert!(socket("43[1,2]").ack_arg::<serde_json::Value>().is_err());
    }

    #[test]
    fn encodes_what_a_client_sends() {
        #[derive(Serialize)]
        struct Auth {
            user_id: i64,
            channels: Vec<i64>,
        }
        let auth = Auth {
            user_id: 3,
            channels: vec![1, 2],
        };
        assert_eq!(
            connect(&auth).unwrap(),
            r#"40{"user_id":3,"channels":[1,2]}"#
        );
        #[derive(Serialize)]
        struct Send<'a> {
            channel_id: i64,
            content: &'a str,
        }
        let e = event_with_ack(
            17,
            "send",
            &Send {
                channel_id: 4,
                content: "hi \"you\"",
            },
        )
        .unwrap();
        assert_eq!(e, r#"4217["send",{"channel_id":4,"content":"hi \"you\""}]"#);
        // And it reads back as what it is.
        let p = socket(&e);
        assert_eq!((p.kind, p.ack_id), (Kind::Event, Some(17)));
        assert_eq!(p.event_name().unwrap(), "send");
        assert_eq!(PONG, "3");
        assert_eq!(decode(PONG).unwrap(), Packet::Pong(""));
    }
}

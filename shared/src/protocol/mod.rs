//! The wire protocol of SPEC sections 3 and 4: REST bodies and the two WebSocket frame enums.
//!
//! Redis payloads on `channel-{id}` and `user-{id}` are [`ServerFrame`] JSON, so an edge can
//! forward the bytes it received to its sockets without serializing them again.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod events;
#[cfg(test)]
mod tests;

pub use events::{Change, Event, Reaction, Role};

/// A stored chat message, in its current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// 64-bit time-ordered id, a string on the wire (JavaScript loses 64-bit precision).
    #[serde(with = "id_string")]
    pub id: i64,
    pub channel_id: i64,
    pub seq: i64,
    pub sender_id: i64,
    pub sender: String,
    pub content: String,
    /// The `seq` of the message this one replies to, in the same channel.
    pub reply_to: Option<i64>,
    pub client_msg_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the sender last edited it (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<DateTime<Utc>>,
    /// A tombstone: deleted, its content gone (`""`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// In history: each emoji with its count and whether the caller reacted. Absent from
    /// `message` frames (the `reaction_*` events that follow a message carry its counts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
    /// On a reply: the seq of its thread's root (a reply to a reply joins the same thread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_root: Option<i64>,
    /// On a root: its replies so far (absent: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reply_count: i64,
    /// On a root: when its last reply came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reply_at: Option<DateTime<Utc>>,
    /// Ids of the members its content mentions as `@username`, ascending (absent: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<i64>,
    /// Files the sender attached, in the order sent (absent: none, or deleted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

/// A file uploaded to a channel (`POST /api/channels/{id}/attachments`), as messages carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: String,
    /// The file name the uploader gave.
    pub name: String,
    /// In bytes.
    pub size: i64,
    /// Sniffed from the bytes (never the uploader's claim).
    pub content_type: String,
    /// Where members download it (relative to the api-server).
    pub url: String,
    /// Where members get a picture's thumbnail (fits 320x320; PNG, JPEG, GIF and WebP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A user as other users see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub created_at: DateTime<Utc>,
}

/// A user with their presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPresence {
    pub id: i64,
    pub username: String,
    pub online: bool,
}

/// Group channels are public and joinable; direct channels hold exactly two users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Group,
    Direct,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Group => "group",
            ChannelKind::Direct => "direct",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "group" => Some(ChannelKind::Group),
            "direct" => Some(ChannelKind::Direct),
            _ => None,
        }
    }
}

/// A channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    pub kind: ChannelKind,
    pub created_by: Option<i64>,
    pub last_seq: i64,
    pub created_at: DateTime<Utc>,
}

/// One of the caller's channels, with read state (`GET /api/me/channels`, `ready`, `channel_added`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MyChannel {
    pub id: i64,
    pub name: String,
    pub kind: ChannelKind,
    pub last_seq: i64,
    pub last_read_seq: i64,
    pub unread: i64,
    /// Messages after `last_read_seq` that mention the user.
    #[serde(default)]
    pub mentions: i64,
}

/// Machine-readable error codes shared by HTTP bodies and WebSocket `error` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Validation,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The HTTP status of SPEC section 3 for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest | ErrorCode::Validation => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

/// Body of every HTTP error: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// Presence status of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    Online,
    Offline,
}

/// Frames a client sends to an edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Send {
        channel_id: i64,
        content: String,
        #[serde(default)]
        client_msg_id: Option<String>,
        #[serde(default)]
        reply_to: Option<i64>,
        /// Ids of files the sender uploaded to the channel (`POST .../attachments`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<String>,
    },
    Typing {
        channel_id: i64,
    },
    Read {
        channel_id: i64,
        seq: i64,
    },
    /// Replaces the content of one's own message.
    Edit {
        channel_id: i64,
        #[serde(with = "id_string")]
        message_id: i64,
        content: String,
        #[serde(default)]
        client_msg_id: Option<String>,
    },
    /// Deletes a message (one's own, or any as an owner or admin of the channel).
    Delete {
        channel_id: i64,
        #[serde(with = "id_string")]
        message_id: i64,
        #[serde(default)]
        client_msg_id: Option<String>,
    },
    /// Adds the caller's reaction `emoji` to a message.
    React {
        channel_id: i64,
        #[serde(with = "id_string")]
        message_id: i64,
        emoji: String,
        #[serde(default)]
        client_msg_id: Option<String>,
    },
    /// Takes back the caller's reaction `emoji`.
    Unreact {
        channel_id: i64,
        #[serde(with = "id_string")]
        message_id: i64,
        emoji: String,
        #[serde(default)]
        client_msg_id: Option<String>,
    },
    /// Channel id (a JSON object key, so a string on the wire) to the last seq the client has.
    Resume {
        #[serde(deserialize_with = "id_keys::deserialize")]
        channels: BTreeMap<i64, i64>,
    },
    Ping,
}

/// Frames an edge sends to a client; also the payloads published on Redis topics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Ready {
        session_id: String,
        user: User,
        edge: String,
        channels: Vec<MyChannel>,
    },
    Message {
        message: Message,
    },
    /// A sequenced change to a message (edit, delete, reaction), in the channel's seq order.
    Event {
        event: Event,
    },
    /// A send, or a change, succeeded. For a change: `message` in its state after it, and the
    /// `event` it made (absent when it changed nothing: a reaction already there, a message
    /// already deleted).
    Ack {
        client_msg_id: Option<String>,
        message: Message,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<Event>,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Typing {
        channel_id: i64,
        user_id: i64,
        username: String,
    },
    Read {
        channel_id: i64,
        user_id: i64,
        seq: i64,
    },
    Presence {
        user_id: i64,
        status: PresenceStatus,
    },
    MemberJoined {
        channel_id: i64,
        user_id: i64,
        username: String,
    },
    MemberLeft {
        channel_id: i64,
        user_id: i64,
    },
    /// An owner made a member an admin, or an admin a member again.
    MemberRole {
        channel_id: i64,
        user_id: i64,
        role: Role,
    },
    ChannelAdded {
        channel: MyChannel,
    },
    ChannelRemoved {
        channel_id: i64,
    },
    /// On `user-{id}`: a new message of one of the user's channels names them (`@username`).
    Mention {
        channel_id: i64,
        /// The message's seq and id.
        seq: i64,
        #[serde(with = "id_string")]
        message_id: i64,
        sender_id: i64,
        sender: String,
    },
    Resumed,
    ResumeTruncated {
        channel_id: i64,
        next_seq: i64,
    },
    Pong,
}

/// Text that is not a client frame: answered by a `bad_request` error frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame {
    /// What serde found wrong.
    pub message: String,
    /// The text's `client_msg_id`, when it has one, so a retrying sender can match the refusal
    /// to its send.
    pub client_msg_id: Option<String>,
}

impl From<BadFrame> for ServerFrame {
    fn from(b: BadFrame) -> Self {
        ServerFrame::Error {
            code: ErrorCode::BadRequest,
            message: format!("bad frame: {}", b.message),
            client_msg_id: b.client_msg_id,
            retry_after_ms: None,
        }
    }
}

impl ClientFrame {
    /// Decodes one text frame.
    pub fn decode(text: &str) -> Result<ClientFrame, BadFrame> {
        serde_json::from_str(text).map_err(|e| BadFrame {
            message: e.to_string(),
            client_msg_id: serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("client_msg_id")?.as_str().map(str::to_owned)),
        })
    }
}

impl ServerFrame {
    /// An `error` frame.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::Error {
            code,
            message: message.into(),
            client_msg_id: None,
            retry_after_ms: None,
        }
    }

    /// Serializes the frame; serialization of these plain types cannot fail.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"serialization failed"}"#.to_owned()
        })
    }
}

/// Reads a JSON object whose keys are ids written as strings (`{"5": 41}`).
mod id_keys {
    use std::collections::BTreeMap;

    use serde::{de::Error, Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<i64, i64>, D::Error> {
        BTreeMap::<String, i64>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| {
                k.parse::<i64>()
                    .map(|k| (k, v))
                    .map_err(|_| D::Error::custom(format!("channel id {k:?} is not a number")))
            })
            .collect()
    }
}

/// Serde adapter writing an `i64` as a JSON string and reading it from a string or a number.
pub mod id_string {
    use serde::{de, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = i64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a 64-bit id as a string or number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
                Ok(v)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
                i64::try_from(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

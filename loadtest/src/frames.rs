//! Reading server frames on the hot path: only the fields the accounting needs, borrowed from the
//! frame text (a full `ServerFrame` parse per delivery would make the generator the bottleneck).

use std::borrow::Cow;

use serde::Deserialize;

/// The parts of a server frame the load test uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Message {
        channel_id: i64,
        seq: i64,
        sent_micros: Option<u64>,
    },
    Ack {
        client_msg_id: String,
        channel_id: i64,
        seq: i64,
        sent_micros: Option<u64>,
    },
    Error {
        code: String,
        client_msg_id: Option<String>,
        retry_after_ms: Option<u64>,
    },
    ResumeTruncated {
        channel_id: i64,
    },
    Resumed,
    Other,
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Lite<'a> {
    channel_id: i64,
    seq: i64,
    #[serde(borrow)]
    content: Cow<'a, str>,
}

#[derive(Deserialize)]
struct MessageFrame<'a> {
    #[serde(borrow)]
    message: Lite<'a>,
}

#[derive(Deserialize)]
struct AckFrame<'a> {
    #[serde(borrow)]
    client_msg_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Lite<'a>,
}

#[derive(Deserialize)]
struct ErrorFrame<'a> {
    #[serde(borrow)]
    code: Cow<'a, str>,
    #[serde(default, borrow)]
    client_msg_id: Option<Cow<'a, str>>,
    #[serde(default)]
    retry_after_ms: Option<u64>,
}

#[derive(Deserialize)]
struct TruncatedFrame {
    channel_id: i64,
}

/// Parses one text frame; anything unreadable or irrelevant is `Other`.
pub fn parse(text: &str) -> Incoming {
    // The edge writes `type` first: read it without a parse of the whole frame, which would
    // double the JSON work per delivery. Any other layout takes the general path.
    let kind = match leading_type(text) {
        Some(k) => Cow::Borrowed(k),
        None => match serde_json::from_str::<Head>(text) {
            Ok(head) => head.kind,
            Err(_) => return Incoming::Other,
        },
    };
    match kind.as_ref() {
        "message" => match serde_json::from_str::<MessageFrame>(text) {
            Ok(f) => Incoming::Message {
                channel_id: f.message.channel_id,
                seq: f.message.seq,
                sent_micros: sent_micros(&f.message.content),
            },
            Err(_) => Incoming::Other,
        },
        "ack" => match serde_json::from_str::<AckFrame>(text) {
            Ok(f) => Incoming::Ack {
                client_msg_id: f.client_msg_id.map(Cow::into_owned).unwrap_or_default(),
                channel_id: f.message.channel_id,
                seq: f.message.seq,
                sent_micros: sent_micros(&f.message.content),
            },
            Err(_) => Incoming::Other,
        },
        "error" => match serde_json::from_str::<ErrorFrame>(text) {
            Ok(f) => Incoming::Error {
                code: f.code.into_owned(),
                client_msg_id: f.client_msg_id.map(Cow::into_owned),
                retry_after_ms: f.retry_after_ms,
            },
            Err(_) => Incoming::Other,
        },
        "resume_truncated" => match serde_json::from_str::<TruncatedFrame>(text) {
            Ok(f) => Incoming::ResumeTruncated {
                channel_id: f.channel_id,
            },
            Err(_) => Incoming::Other,
        },
        "resumed" => Incoming::Resumed,
        _ => Incoming::Other,
    }
}

/// The `type` of a frame that starts with `{"type":"<plain name>"`.
fn leading_type(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(r#"{"type":""#)?;
    let kind = &rest[..rest.find('"')?];
    // A backslash would be an escape: leave that to the parser.
    (!kind.contains('\\')).then_some(kind)
}

/// Message content: the send time in microseconds since the run's epoch, then padding.
pub fn content(now_micros: u64, size: usize) -> String {
    let mut s = now_micros.to_string();
    if s.len() + 1 < size {
        s.push(' ');
        s.extend(std::iter::repeat_n('x', size - s.len()));
    }
    s
}

/// The send time a content carries, if it is one of ours.
pub fn sent_micros(content: &str) -> Option<u64> {
    content.split(' ').next()?.parse().ok()
}

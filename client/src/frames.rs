//! Server frames as the client state needs them: only the fields that seq tracking, the outbox
//! and a load generator's accounting read, borrowed from the frame text. [`parse`] is the hot
//! path (a full `ServerFrame` parse per delivery would make a load generator its own
//! bottleneck); a typed [`ServerFrame`] gives the same view through `From`.

use std::borrow::Cow;

use serde::Deserialize;
use shared::protocol::{ClientFrame, ErrorCode, ServerFrame};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// The parts of a server frame the client state uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming<'a> {
    Message {
        channel_id: i64,
        seq: i64,
        content: Cow<'a, str>,
    },
    /// A send's or a change's `ack`: `seq` is the seq it took (a change's own, not its
    /// message's), `message_id` the message it made or changed, `change` whether it was a change.
    Ack {
        client_msg_id: Option<Cow<'a, str>>,
        channel_id: i64,
        seq: i64,
        content: Cow<'a, str>,
        message_id: i64,
        change: bool,
    },
    Error {
        code: ErrorCode,
        client_msg_id: Option<Cow<'a, str>>,
        retry_after_ms: Option<u64>,
    },
    /// A sequenced change to a message (`event`: edit, delete, reaction, thread counters):
    /// it takes a seq of its channel like a message.
    Event {
        channel_id: i64,
        seq: i64,
    },
    ChannelAdded {
        channel_id: i64,
        last_seq: i64,
    },
    ResumeTruncated {
        channel_id: i64,
    },
    Resumed,
    /// Unreadable, or nothing the client state tracks.
    Other,
}

impl<'a> From<&'a ServerFrame> for Incoming<'a> {
    fn from(f: &'a ServerFrame) -> Self {
        match f {
            ServerFrame::Message { message: m } => Incoming::Message {
                channel_id: m.channel_id,
                seq: m.seq,
                content: Cow::Borrowed(&m.content),
            },
            ServerFrame::Event { event: e } => Incoming::Event {
                channel_id: e.channel_id,
                seq: e.seq,
            },
            ServerFrame::Ack {
                client_msg_id,
                message: m,
                event,
            } => Incoming::Ack {
                client_msg_id: client_msg_id.as_deref().map(Cow::Borrowed),
                channel_id: m.channel_id,
                // A change's ack: the seq its event took (the message's own is older).
                seq: event.as_ref().map_or(m.seq, |e| e.seq),
                content: Cow::Borrowed(&m.content),
                message_id: m.id,
                change: event.is_some(),
            },
            ServerFrame::Error {
                code,
                client_msg_id,
                retry_after_ms,
                ..
            } => Incoming::Error {
                code: *code,
                client_msg_id: client_msg_id.as_deref().map(Cow::Borrowed),
                retry_after_ms: *retry_after_ms,
            },
            ServerFrame::ChannelAdded { channel } => Incoming::ChannelAdded {
                channel_id: channel.id,
                last_seq: channel.last_seq,
            },
            ServerFrame::ResumeTruncated { channel_id, .. } => Incoming::ResumeTruncated {
                channel_id: *channel_id,
            },
            ServerFrame::Resumed => Incoming::Resumed,
            _ => Incoming::Other,
        }
    }
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

/// An acked message: also its id.
#[derive(Deserialize)]
struct AckedMessage<'a> {
    #[serde(with = "shared::protocol::id_string")]
    id: i64,
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
    message: AckedMessage<'a>,
    /// A change's ack: the event it made, whose seq is the one the change took.
    #[serde(default)]
    event: Option<Seq>,
}

/// Where a sequenced frame sits in its channel.
#[derive(Deserialize)]
struct Seq {
    channel_id: i64,
    seq: i64,
}

#[derive(Deserialize)]
struct EventFrame {
    event: Seq,
}

#[derive(Deserialize)]
struct ErrorFrame<'a> {
    code: ErrorCode,
    #[serde(default, borrow)]
    client_msg_id: Option<Cow<'a, str>>,
    #[serde(default)]
    retry_after_ms: Option<u64>,
}

#[derive(Deserialize)]
struct ChannelAddedFrame {
    channel: ChannelLite,
}

#[derive(Deserialize)]
struct ChannelLite {
    id: i64,
    last_seq: i64,
}

#[derive(Deserialize)]
struct TruncatedFrame {
    channel_id: i64,
}

/// Reads one text frame; anything unreadable or irrelevant is `Other`.
pub fn parse(text: &str) -> Incoming<'_> {
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
        "message" => read(text, |f: MessageFrame| Incoming::Message {
            channel_id: f.message.channel_id,
            seq: f.message.seq,
            content: f.message.content,
        }),
        "ack" => read(text, |f: AckFrame| Incoming::Ack {
            client_msg_id: f.client_msg_id,
            channel_id: f.message.channel_id,
            seq: f.event.as_ref().map_or(f.message.seq, |e| e.seq),
            content: f.message.content,
            message_id: f.message.id,
            change: f.event.is_some(),
        }),
        "event" => read(text, |f: EventFrame| Incoming::Event {
            channel_id: f.event.channel_id,
            seq: f.event.seq,
        }),
        "error" => read(text, |f: ErrorFrame| Incoming::Error {
            code: f.code,
            client_msg_id: f.client_msg_id,
            retry_after_ms: f.retry_after_ms,
        }),
        "channel_added" => read(text, |f: ChannelAddedFrame| Incoming::ChannelAdded {
            channel_id: f.channel.id,
            last_seq: f.channel.last_seq,
        }),
        "resume_truncated" => read(text, |f: TruncatedFrame| Incoming::ResumeTruncated {
            channel_id: f.channel_id,
        }),
        "resumed" => Incoming::Resumed,
        _ => Incoming::Other,
    }
}

/// The frame's fields as `T`, turned into its view; `Other` when they do not read as `T`.
#[inline]
fn read<'a, T: Deserialize<'a>>(
    text: &'a str,
    view: impl FnOnce(T) -> Incoming<'a>,
) -> Incoming<'a> {
    serde_json::from_str(text).map_or(Incoming::Other, view)
}

/// The `type` of a frame that starts with `{"type":"<plain name>"`.
fn leading_type(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(r#"{"type":""#)?;
    let kind = &rest[..rest.find('"')?];
    // A backslash would be an escape: leave that to the parser.
    (!kind.contains('\\')).then_some(kind)
}

/// A client frame as WebSocket text. These plain types always serialize; were one not to,
/// the empty frame would be answered with an `error` and the socket would stay open.
pub fn client_text(f: &ClientFrame) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(f).unwrap_or_default())
}

/// Splits a batch frame (subprotocol `chat.v1.batch`: a JSON array of server frames, in
/// order) into its frames, each a slice of the same buffer. `None` when `text` is no array
/// (a single frame) or not valid JSON.
pub fn split_batch(text: &Utf8Bytes) -> Option<Vec<Utf8Bytes>> {
    if !text.trim_start().starts_with('[') {
        return None;
    }
    let items: Vec<&serde_json::value::RawValue> = serde_json::from_str(text).ok()?;
    let whole: &bytes::Bytes = text.as_ref();
    items
        .iter()
        .map(|raw| Utf8Bytes::try_from(whole.slice_ref(raw.get().as_bytes())).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use shared::protocol::{ErrorCode, ServerFrame};

    use super::{parse, split_batch, Incoming};
    use tokio_tungstenite::tungstenite::Utf8Bytes;

    const MSG: &str = r#"{"type":"message","message":{"id":"1","channel_id":5,"seq":9,"sender_id":1,"sender":"a","content":"hello there","reply_to":null,"client_msg_id":"c","created_at":"2026-11-22T00:00:00Z"}}"#;
    const EVENT: &str = r#"{"type":"event","event":{"channel_id":5,"seq":10,"message_id":"1","message_seq":9,"user_id":1,"client_msg_id":"e","created_at":"2026-11-22T00:00:00Z","kind":"reaction_added","emoji":"👍","count":1}}"#;

    #[test]
    fn the_fast_path_reads_the_fields_the_client_state_needs() {
        let msg = Incoming::Message {
            channel_id: 5,
            seq: 9,
            content: Cow::Borrowed("hello there"),
        };
        assert_eq!(parse(MSG), msg);
        let ack = MSG.replace(
            r#"{"type":"message","#,
            r#"{"type":"ack","client_msg_id":"c","#,
        );
        assert_eq!(
            parse(&ack),
            Incoming::Ack {
                client_msg_id: Some("c".into()),
                channel_id: 5,
                seq: 9,
                content: "hello there".into(),
                message_id: 1,
                change: false,
            }
        );
        let err = r#"{"type":"error","code":"rate_limited","message":"slow down","client_msg_id":"3-1","retry_after_ms":40}"#;
        assert_eq!(
            parse(err),
            Incoming::Error {
                code: ErrorCode::RateLimited,
                client_msg_id: Some("3-1".into()),
                retry_after_ms: Some(40)
            }
        );
        let added = r#"{"type":"channel_added","channel":{"id":7,"name":"x","kind":"group","last_seq":12,"last_read_seq":0,"unread":0}}"#;
        assert_eq!(
            parse(added),
            Incoming::ChannelAdded {
                channel_id: 7,
                last_seq: 12
            }
        );
        let cut = r#"{"type":"resume_truncated","channel_id":5,"next_seq":1001}"#;
        assert_eq!(parse(cut), Incoming::ResumeTruncated { channel_id: 5 });
        assert_eq!(
            parse(EVENT),
            Incoming::Event {
                channel_id: 5,
                seq: 10
            }
        );
        let change_ack = format!(
            r#"{{"type":"ack","client_msg_id":"e","message":{},"event":{}}}"#,
            &MSG[MSG.find(r#"{"id""#).unwrap()..MSG.len() - 1],
            &EVENT[EVENT.find(r#"{"channel_id""#).unwrap()..EVENT.len() - 1]
        );
        assert!(
            matches!(
                parse(&change_ack),
                Incoming::Ack {
                    seq: 10,
                    message_id: 1,
                    change: true,
                    ..
                }
            ),
            "{change_ack}"
        );
        assert_eq!(parse(r#"{"type":"resumed"}"#), Incoming::Resumed);
        assert_eq!(parse(r#"{"type":"pong"}"#), Incoming::Other);
        assert_eq!(parse("not json"), Incoming::Other);
    }

    #[test]
    fn other_layouts_take_the_general_path_to_the_same_view() {
        // `type` not first, or escaped: the general path reads the same frame.
        let reordered =
            r#"{"message":{"channel_id":5,"seq":9,"content":"hello there"},"type":"message"}"#;
        assert_eq!(parse(reordered), parse(MSG));
        let escaped = r#"{"type":"resum\u0065d"}"#;
        assert_eq!(parse(escaped), Incoming::Resumed);
        // A frame cut short after its type is not a message.
        assert_eq!(parse(r#"{"type":"message""#), Incoming::Other);
    }

    #[test]
    fn a_typed_frame_gives_the_same_view_as_its_text() {
        let frames = [
            MSG.to_owned(),
            MSG.replace(
                r#"{"type":"message","#,
                r#"{"type":"ack","client_msg_id":"c","#,
            ),
            r#"{"type":"error","code":"unavailable","message":"db down","client_msg_id":"x"}"#
                .to_owned(),
            r#"{"type":"resume_truncated","channel_id":5,"next_seq":1001}"#.to_owned(),
            r#"{"type":"resumed"}"#.to_owned(),
            r#"{"type":"pong"}"#.to_owned(),
            EVENT.to_owned(),
        ];
        for text in frames {
            let typed: ServerFrame = serde_json::from_str(&text).expect("a server frame");
            assert_eq!(Incoming::from(&typed), parse(&text), "{text}");
        }
    }

    #[test]
    fn a_batch_frame_splits_into_its_frames_in_order_and_a_single_frame_does_not() {
        let batch: Utf8Bytes =
            format!(r#"[{MSG}, {{"type":"pong"}},{{"type":"typing","s":"[,]}}"}}]"#).into();
        let parts = split_batch(&batch).expect("a batch");
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].as_str(), MSG);
        assert_eq!(parts[1].as_str(), r#"{"type":"pong"}"#);
        assert_eq!(parts[2].as_str(), r#"{"type":"typing","s":"[,]}"}"#);
        assert!(matches!(parse(&parts[0]), Incoming::Message { seq: 9, .. }));
        assert!(split_batch(&Utf8Bytes::from(MSG)).is_none());
        assert!(split_batch(&Utf8Bytes::from("[{\"type\":")).is_none());
    }
}

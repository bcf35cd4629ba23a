//! `GET /sse`: the read-only Server-Sent Events transport. A stream is a socket of the hub like
//! a WebSocket (the same bounded queue, channel tasks, gap fill, presence and drain), written as
//! `text/event-stream`: one event per server frame, named by its `type`; on `ready` and after
//! every sequenced frame (`message`, `event`), `id:` is the stream's position, `channel:seq` of
//! each of its channels joined by commas; a comment every ping interval. A reconnect with
//! `Last-Event-ID` (the header, or `last_event_id=` in the query) on any edge joins each channel
//! at that seq, so what the stream missed comes first, in order, then the live events. The
//! stream ends, after an `end` event carrying the close code a WebSocket would get, on drain
//! (1012), overflow (4008) and token expiry (4001).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use serde::Deserialize;
use shared::protocol::ServerFrame;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::channel::ChannelCmd;
use crate::edge::Edge;
use crate::queue::SLOW_CONSUMER;
use crate::session::{Opened, Session, TOKEN_EXPIRED};
use crate::socket::SocketHandle;
use crate::wire::Frame;

/// A response body: whole (JSON) or streamed (SSE).
pub type Body = BoxBody<Bytes, Infallible>;

/// Chunks handed to the connection and not yet written: past this the stream's writer waits,
/// and the socket's queue fills toward its bound (slow consumer).
const CHUNKS: usize = 4;
/// Frames written per chunk.
const WRITE_BATCH: usize = 64;

/// Where a stream stands: the last seq it delivered of each of its channels.
pub type Position = BTreeMap<i64, i64>;

/// Why a stream could not start (before any byte of it is sent).
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    BadRequest(&'static str),
    /// The caller is not a member of this channel.
    NotMember(i64),
}

/// `channels=5,7` and `last_event_id=...` of the query; the header wins for the position.
pub fn params(
    query: Option<&str>,
    last_event_id: Option<&str>,
) -> Result<(Option<Vec<i64>>, Position), Refused> {
    let mut only = None;
    let mut position = None;
    for pair in query.unwrap_or("").split('&') {
        if let Some(v) = pair.strip_prefix("channels=") {
            let ids = v
                .split([',', '+'])
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| Refused::BadRequest("channels must be channel ids: channels=5,7"))?;
            only = Some(ids);
        } else if let Some(v) = pair.strip_prefix("last_event_id=") {
            position = Some(
                v.replace("%3A", ":")
                    .replace("%3a", ":")
                    .replace("%2C", ","),
            );
        }
    }
    let position = match last_event_id.map(str::to_owned).or(position) {
        Some(p) => parse_position(&p)?,
        None => Position::new(),
    };
    Ok((only, position))
}

/// `5:41,7:12` (what this edge writes as `id:`).
pub fn parse_position(s: &str) -> Result<Position, Refused> {
    const BAD: Refused = Refused::BadRequest("Last-Event-ID must be channel:seq pairs: 5:41,7:12");
    let mut p = Position::new();
    for pair in s.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (c, q) = pair.split_once(':').ok_or(BAD)?;
        let (c, q) = (c.parse::<i64>(), q.parse::<i64>());
        match (c, q) {
            (Ok(c), Ok(q)) if q >= 0 => p.insert(c, q),
            _ => return Err(BAD),
        };
    }
    Ok(p)
}

fn write_position(out: &mut String, p: &Position) {
    out.push_str("id: ");
    for (i, (c, q)) in p.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{c}:{q}");
    }
    out.push('\n');
}

/// The fields of a server frame that move a stream's position.
#[derive(Deserialize)]
struct Peek {
    #[serde(rename = "type")]
    kind: String,
    message: Option<Seq>,
    event: Option<Seq>,
    channel: Option<Joined>,
    channel_id: Option<i64>,
}

#[derive(Deserialize)]
struct Seq {
    channel_id: i64,
    seq: i64,
}

#[derive(Deserialize)]
struct Joined {
    id: i64,
    last_seq: i64,
}

/// Appends one frame as an event, moving the position past it.
fn push_event(out: &mut String, payload: &[u8], p: &mut Position) {
    let text = String::from_utf8_lossy(payload);
    let peek: Option<Peek> = serde_json::from_slice(payload).ok();
    let kind = peek.as_ref().map_or("message", |k| k.kind.as_str());
    let _ = writeln!(out, "event: {kind}");
    if let Some(k) = &peek {
        let seq = k.message.as_ref().or(k.event.as_ref());
        let moved = match (kind, seq, &k.channel) {
            (_, Some(s), _) => {
                let at = p.entry(s.channel_id).or_insert(s.seq);
                *at = (*at).max(s.seq);
                true
            }
            ("channel_added", _, Some(c)) => {
                p.entry(c.id).or_insert(c.last_seq);
                true
            }
            ("channel_removed", _, _) => k.channel_id.is_some_and(|c| p.remove(&c).is_some()),
            ("ready", _, _) => true,
            _ => false,
        };
        if moved {
            write_position(out, p);
        }
    }
    let _ = writeln!(out, "data: {text}\n");
}

/// `(channel, seq)` joins of a stream, and the notices to send before its first events.
type Starts = (Vec<(i64, i64)>, Vec<ServerFrame>);

/// Where each channel of the stream starts: the position's seq where it has one (never past
/// the channel's last seq), else the last seq. A channel more than `resume_max` behind starts
/// `resume_max` from its end, after a `resume_truncated` naming the first seq skipped (the
/// client pages the rest from history, as over a WebSocket).
fn starts(
    channels: &[(i64, i64)],
    only: Option<&[i64]>,
    from: &Position,
    resume_max: i64,
) -> Result<Starts, Refused> {
    if let Some(c) = only
        .unwrap_or(&[])
        .iter()
        .find(|c| !channels.iter().any(|(id, _)| id == *c))
    {
        return Err(Refused::NotMember(*c));
    }
    let mut joins = Vec::new();
    let mut notes = Vec::new();
    for &(c, last) in channels {
        if only.is_some_and(|o| !o.contains(&c)) {
            continue;
        }
        let want = from.get(&c).copied().unwrap_or(last).min(last);
        let start = want.max(last - resume_max);
        if start > want {
            notes.push(ServerFrame::ResumeTruncated {
                channel_id: c,
                next_seq: want + 1,
            });
        }
        joins.push((c, start));
    }
    Ok((joins, notes))
}

/// Starts a stream for an opened session: joins its channels where the client stands and
/// returns the body that carries the events.
pub fn start(
    edge: &Arc<Edge>,
    session: Session,
    only: Option<&[i64]>,
    from: &Position,
) -> Result<Body, Refused> {
    let resume_max = edge.config.limits.resume_max;
    let (joins, notes) = starts(session.channels(), only, from, resume_max)?;
    let behind: Vec<(i64, i64)> = session
        .channels()
        .iter()
        .filter(|(c, last)| joins.iter().any(|(j, at)| j == c && at < last))
        .copied()
        .collect();
    let opened = session.activate(&joins);
    let s = opened.socket();
    for n in notes {
        s.queue.push(n.to_json().into());
    }
    // A channel task started at an old seq learns the channel's end from this, not only from
    // the next live message.
    for (c, last) in behind {
        if let Some(tx) = edge.hub.channel(c) {
            let _ = tx.send(ChannelCmd::CatchUp { upto: Some(last) });
        }
    }
    let position: Position = joins.into_iter().collect();
    let (tx, rx) = mpsc::channel::<Bytes>(CHUNKS);
    let edge2 = edge.clone();
    edge.tracker.spawn(async move {
        edge2.metrics.sockets.increment(1.0);
        serve(&edge2, &opened, position, tx).await;
        edge2.metrics.sockets.decrement(1.0);
        drop(opened);
    });
    let chunks = stream::unfold(rx, |mut rx| async move {
        let b = rx.recv().await?;
        Some((Ok::<_, Infallible>(hyper::body::Frame::data(b)), rx))
    });
    Ok(StreamBody::new(chunks).boxed())
}

/// Writes the socket's queue as events until the stream must end or the client is gone.
async fn serve(edge: &Edge, opened: &Opened, mut position: Position, tx: mpsc::Sender<Bytes>) {
    let s = opened.socket();
    let cfg = &edge.config;
    let now = chrono::Utc::now().timestamp();
    let expiry =
        Instant::now() + Duration::from_secs(opened.token_exp.saturating_sub(now).max(0) as u64);
    let mut next_beat = Instant::now() + cfg.ping_interval;
    let mut timer = pin!(tokio::time::sleep_until(next_beat.min(expiry)));
    let mut frames: Vec<Frame> = Vec::new();
    let end = loop {
        tokio::select! {
            biased;
            _ = s.queue.ready() => {
                frames.clear();
                let close = s.queue.take(WRITE_BATCH, &mut frames);
                if let Some((SLOW_CONSUMER, reason)) = close {
                    break Some((SLOW_CONSUMER, reason));
                }
                if !frames.is_empty() {
                    let mut out = String::new();
                    for f in &frames {
                        push_event(&mut out, &f.payload(), &mut position);
                    }
                    let n = frames.len() as u64;
                    match send(&tx, out, cfg.pong_timeout, s).await {
                        Sent::Yes => {}
                        Sent::Overflow => break Some((SLOW_CONSUMER, "slow consumer")),
                        Sent::Gone => break None,
                    }
                    edge.metrics.frames_out.increment(n);
                }
                if let Some(c) = close {
                    break Some(c);
                }
                s.queue.release_if_empty();
            }
            _ = tx.closed() => break None,
            _ = &mut timer => {
                let now = Instant::now();
                if now >= expiry {
                    break Some((TOKEN_EXPIRED, "token expired"));
                }
                if now >= next_beat {
                    match send(&tx, ": ping\n\n".into(), cfg.pong_timeout, s).await {
                        Sent::Yes => {}
                        Sent::Overflow => break Some((SLOW_CONSUMER, "slow consumer")),
                        Sent::Gone => break None,
                    }
                    next_beat = now + cfg.ping_interval;
                }
                timer.as_mut().reset(next_beat.min(expiry));
            }
        }
    };
    if let Some((code, reason)) = end {
        let data = serde_json::json!({"code": code, "reason": reason});
        let _ = tokio::time::timeout(
            cfg.pong_timeout,
            tx.send(format!("event: end\ndata: {data}\n\n").into()),
        )
        .await;
    }
}

/// What became of a chunk handed to the connection.
enum Sent {
    Yes,
    /// The socket's queue overflowed while the chunk waited: a slow consumer.
    Overflow,
    /// The client went away, or read nothing for the pong timeout.
    Gone,
}

/// Hands one chunk to the connection, unless the queue overflows or nothing moves first.
async fn send(tx: &mpsc::Sender<Bytes>, chunk: String, within: Duration, s: &SocketHandle) -> Sent {
    tokio::select! {
        r = tx.send(Bytes::from(chunk)) => if r.is_ok() { Sent::Yes } else { Sent::Gone },
        _ = s.queue.overflow() => Sent::Overflow,
        _ = tokio::time::sleep(within) => Sent::Gone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_and_refuse() {
        let p = parse_position("5:41, 7:0").unwrap_or_default();
        assert_eq!(p, Position::from([(5, 41), (7, 0)]));
        assert!(parse_position("").is_ok_and(|p| p.is_empty()));
        for bad in ["5", "5:x", "a:1", "5:-1", "5:1;7:2"] {
            assert!(parse_position(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_and_header() {
        let (only, p) = params(Some("channels=5,7&last_event_id=5%3A3"), None).unwrap_or_default();
        assert_eq!(only, Some(vec![5, 7]));
        assert_eq!(p, Position::from([(5, 3)]));
        let (_, p) = params(Some("last_event_id=5:3"), Some("5:9")).unwrap_or_default();
        assert_eq!(p, Position::from([(5, 9)]));
        assert!(params(Some("channels=5,x"), None).is_err());
    }

    #[test]
    fn events_move_the_position_only_on_sequenced_frames() {
        let mut p = Position::from([(5, 3)]);
        let mut out = String::new();
        push_event(
            &mut out,
            br#"{"type":"message","message":{"channel_id":5,"seq":4}}"#,
            &mut p,
        );
        push_event(
            &mut out,
            br#"{"type":"read","channel_id":5,"seq":99,"user_id":1}"#,
            &mut p,
        );
        push_event(
            &mut out,
            br#"{"type":"event","event":{"channel_id":7,"seq":2}}"#,
            &mut p,
        );
        assert_eq!(p, Position::from([(5, 4), (7, 2)]));
        assert_eq!(
            out,
            "event: message\nid: 5:4\ndata: {\"type\":\"message\",\"message\":{\"channel_id\":5,\"seq\":4}}\n\n\
             event: read\ndata: {\"type\":\"read\",\"channel_id\":5,\"seq\":99,\"user_id\":1}\n\n\
             event: event\nid: 5:4,7:2\ndata: {\"type\":\"event\",\"event\":{\"channel_id\":7,\"seq\":2}}\n\n"
        );
    }

    #[test]
    fn starts_clamp_and_truncate() {
        let chans = [(5, 100), (7, 10), (9, 3)];
        let from = Position::from([(5, 2), (7, 50)]);
        let (joins, notes) = starts(&chans, None, &from, 20).unwrap_or_default();
        assert_eq!(joins, vec![(5, 80), (7, 10), (9, 3)]);
        assert_eq!(
            notes,
            vec![ServerFrame::ResumeTruncated {
                channel_id: 5,
                next_seq: 3
            }]
        );
        let (joins, _) = starts(&chans, Some(&[7]), &from, 20).unwrap_or_default();
        assert_eq!(joins, vec![(7, 10)]);
        assert_eq!(
            starts(&chans, Some(&[7, 8]), &from, 20),
            Err(Refused::NotMember(8))
        );
    }
}

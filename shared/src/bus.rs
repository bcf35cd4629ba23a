//! The typed event bus over Redis pub/sub. Outbound: [`Bus::publish`] takes a [`Topic`] and a
//! [`ServerFrame`], encodes it once, and queues it for the one
//! publisher task of the process, which sends what is queued in order as Redis pipelines
//! (`SPUBLISH` for sharded topics on a Redis Cluster, `PUBLISH` otherwise).
//! Inbound: [`Inbound::decode`] reads just what routing needs from a received payload; the
//! payload bytes then go to sockets as they came.
//!
//! A publish is never awaited by the operation that caused it and never fails it: the fact
//! is committed in PostgreSQL first, and subscribers notice a lost publish by the hole in
//! `seq` and fill it from there (SPEC 5.4).

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::{ClientLike, PubsubInterface};
use futures_util::stream::{FuturesOrdered, StreamExt};
use metrics::Counter;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::presence::PresenceEvent;
use crate::protocol::ServerFrame;
use crate::topics::Topic;

/// Publishes waiting for the publisher task; beyond, a publish is dropped (and filled from
/// PostgreSQL by subscribers).
const QUEUE: usize = 1 << 16;
/// Most publishes sent to Redis in one pipeline.
const PUBLISH_BATCH: usize = 256;
/// Pipelines sent and not yet answered. One at a time capped the publisher at one batch per
/// round trip, and round trips stretch to tens of milliseconds on a busy runtime.
const PIPELINES_IN_FLIGHT: usize = 8;
/// How long Redis may take to answer one pipeline.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// Handle to the publisher task of one process; cheap to clone.
#[derive(Clone, Debug)]
pub struct Bus {
    tx: mpsc::Sender<(Topic, String)>,
    failures: Counter,
}

impl Bus {
    /// Starts the publisher task on `redis`; it stops at `shutdown` (or when every handle is
    /// dropped). Failed and dropped publishes count in `redis_publish_failures_total`.
    pub fn spawn(redis: Client, metrics: &Metrics, shutdown: CancellationToken) -> Bus {
        let (tx, rx) = mpsc::channel(QUEUE);
        let failures = metrics.counter(
            "redis_publish_failures_total",
            "Publishes Redis did not take (subscribers fill them from PostgreSQL)",
        );
        tokio::spawn(publisher(redis, rx, failures.clone(), shutdown));
        Bus { tx, failures }
    }

    /// Queues `frame` on `topic`, after whatever was queued before it.
    pub fn publish(&self, topic: Topic, frame: &ServerFrame) {
        if self.tx.try_send((topic, frame.to_json())).is_err() {
            tracing::warn!(%topic, "publish queue full: dropping a publish");
            self.failures.increment(1);
        }
    }
}

type Answer = Pin<Box<dyn Future<Output = (usize, bool)> + Send>>;

/// Publishes queued payloads in order: whatever is waiting (up to 256) goes to Redis as one
/// pipeline on the one connection, so a burst costs one round trip. Up to 8 pipelines are in
/// flight; each is handed to the connection (its first poll) before the next is built, so
/// Redis receives every publish in queue order.
async fn publisher(
    redis: Client,
    mut rx: mpsc::Receiver<(Topic, String)>,
    failures: Counter,
    shutdown: CancellationToken,
) {
    let sharded = redis.is_clustered();
    let mut batch: Vec<(Topic, String)> = Vec::with_capacity(PUBLISH_BATCH);
    let mut in_flight: FuturesOrdered<Answer> = FuturesOrdered::new();
    let mut open = true;
    let report = |(n, ok): (usize, bool)| {
        if !ok {
            tracing::warn!(n, "publish failed; subscribers will fill from PostgreSQL");
            failures.increment(n as u64);
        }
    };
    while open || !in_flight.is_empty() {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            n = rx.recv_many(&mut batch, PUBLISH_BATCH), if open && in_flight.len() < PIPELINES_IN_FLIGHT => {
                if n == 0 {
                    open = false;
                    continue;
                }
                let pipe = redis.pipeline();
                let mut queued = true;
                for (topic, payload) in batch.drain(..) {
                    // Buffered in the pipeline; sent by `all` below. On a cluster a sharded
                    // topic goes to the shard owning its slot.
                    queued &= if sharded && topic.sharded() {
                        pipe.spublish::<(), _, _>(topic.name(), payload).await
                    } else {
                        pipe.publish::<(), _, _>(topic.name(), payload).await
                    }
                    .is_ok();
                }
                let mut answer: Answer = Box::pin(async move {
                    let r = tokio::time::timeout(PUBLISH_TIMEOUT, pipe.all::<Vec<i64>>()).await;
                    (n, queued && matches!(r, Ok(Ok(_))))
                });
                // The first poll hands the pipeline to the connection: done here, before the
                // next batch is built, it fixes the order in which Redis sees them.
                match poll_fn(|cx| Poll::Ready(answer.as_mut().poll(cx))).await {
                    Poll::Ready(done) => report(done),
                    Poll::Pending => in_flight.push_back(answer),
                }
            }
            Some(done) = in_flight.next(), if !in_flight.is_empty() => report(done),
        }
    }
}

/// What a received publish means to an edge. Built from the topic and the few fields routing
/// needs; the payload itself is forwarded untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// An entry of the channel's log (a `message` or an `event`), to put in `seq` order.
    Sequenced { channel_id: i64, seq: i64 },
    /// Any other event of the channel (`typing`, `read`, `member_*`), forwarded as is to its
    /// members except `skip_user` (the typing user is not told of their own typing).
    ChannelEvent {
        channel_id: i64,
        skip_user: Option<i64>,
    },
    /// The user became a member of a channel (`channel_added`).
    Added {
        user_id: i64,
        channel_id: i64,
        last_seq: i64,
    },
    /// The user is no longer a member of a channel (`channel_removed`).
    Removed { user_id: i64, channel_id: i64 },
    /// A presence change.
    Presence(PresenceEvent),
    /// An event for one user alone (`mention`), forwarded as is to each of their sockets.
    ToUser { user_id: i64 },
}

/// The event kinds routing tells apart; everything else is forwarded as it is.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Message,
    Event,
    Typing,
    ChannelAdded,
    ChannelRemoved,
    Mention,
    #[serde(other)]
    Other,
}

/// The fields of an event routing reads (a partial parse: message bodies are skipped).
#[derive(Deserialize)]
struct Peek {
    #[serde(rename = "type")]
    kind: Kind,
    #[serde(default)]
    message: Option<PeekSeq>,
    #[serde(default)]
    event: Option<PeekSeq>,
    #[serde(default)]
    channel: Option<PeekChannel>,
    #[serde(default)]
    channel_id: Option<i64>,
    #[serde(default)]
    user_id: Option<i64>,
}

#[derive(Deserialize)]
struct PeekSeq {
    seq: i64,
}

#[derive(Deserialize)]
struct PeekChannel {
    id: i64,
    last_seq: i64,
}

impl Inbound {
    /// Decodes a publish received on `topic`; `None` for a topic or payload that is not ours.
    pub fn decode(topic: &str, payload: &str) -> Option<Inbound> {
        let topic = Topic::parse(topic)?;
        if topic == Topic::Presence {
            return serde_json::from_str(payload).ok().map(Inbound::Presence);
        }
        let peek: Peek = serde_json::from_str(payload).ok()?;
        match (topic, peek.kind) {
            (Topic::Channel(channel_id), Kind::Message) => Some(Inbound::Sequenced {
                channel_id,
                seq: peek.message?.seq,
            }),
            (Topic::Channel(channel_id), Kind::Event) => Some(Inbound::Sequenced {
                channel_id,
                seq: peek.event?.seq,
            }),
            (Topic::Channel(channel_id), Kind::Typing) => Some(Inbound::ChannelEvent {
                channel_id,
                skip_user: peek.user_id,
            }),
            (Topic::Channel(channel_id), _) => Some(Inbound::ChannelEvent {
                channel_id,
                skip_user: None,
            }),
            (Topic::User(user_id), Kind::ChannelAdded) => {
                let c = peek.channel?;
                Some(Inbound::Added {
                    user_id,
                    channel_id: c.id,
                    last_seq: c.last_seq,
                })
            }
            (Topic::User(user_id), Kind::ChannelRemoved) => Some(Inbound::Removed {
                user_id,
                channel_id: peek.channel_id?,
            }),
            (Topic::User(user_id), Kind::Mention) => Some(Inbound::ToUser { user_id }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ChannelKind, MyChannel, PresenceStatus};

    fn decode(topic: Topic, frame: &ServerFrame) -> Option<Inbound> {
        Inbound::decode(&topic.name(), &frame.to_json())
    }

    #[test]
    fn a_mention_goes_to_the_sockets_of_its_user() {
        let mention = ServerFrame::Mention {
            channel_id: 5,
            seq: 9,
            message_id: 77,
            sender_id: 1,
            sender: "a".into(),
        };
        assert_eq!(
            decode(Topic::User(3), &mention),
            Some(Inbound::ToUser { user_id: 3 })
        );
    }

    #[test]
    fn routing_reads_what_each_event_needs() {
        let typing = ServerFrame::Typing {
            channel_id: 5,
            user_id: 3,
            username: "c".into(),
        };
        assert_eq!(
            decode(Topic::Channel(5), &typing),
            Some(Inbound::ChannelEvent {
                channel_id: 5,
                skip_user: Some(3)
            })
        );
        let read = ServerFrame::Read {
            channel_id: 5,
            user_id: 3,
            seq: 9,
        };
        assert_eq!(
            decode(Topic::Channel(5), &read),
            Some(Inbound::ChannelEvent {
                channel_id: 5,
                skip_user: None
            })
        );
        let added = ServerFrame::ChannelAdded {
            channel: MyChannel {
                id: 8,
                name: "x".into(),
                kind: ChannelKind::Group,
                last_seq: 4,
                last_read_seq: 0,
                unread: 4,
                mentions: 0,
            },
        };
        assert_eq!(
            decode(Topic::User(2), &added),
            Some(Inbound::Added {
                user_id: 2,
                channel_id: 8,
                last_seq: 4
            })
        );
        let removed = ServerFrame::ChannelRemoved { channel_id: 8 };
        assert_eq!(
            decode(Topic::User(2), &removed),
            Some(Inbound::Removed {
                user_id: 2,
                channel_id: 8
            })
        );
        let p = PresenceEvent {
            user_id: 1,
            status: PresenceStatus::Online,
            channels: vec![5],
        };
        assert_eq!(
            Inbound::decode("presence", &p.to_json()),
            Some(Inbound::Presence(p))
        );
        assert_eq!(Inbound::decode("channel-5", "not json"), None);
        assert_eq!(Inbound::decode("elsewhere", "{}"), None);
        // A user topic carries no channel events.
        assert_eq!(decode(Topic::User(2), &typing), None);
    }

    #[test]
    fn a_message_is_routed_by_its_seq() {
        let raw = r#"{"type":"message","message":{"id":"1","channel_id":5,"seq":42,"sender_id":1,"sender":"a","content":"hi","reply_to":null,"client_msg_id":null,"created_at":"2026-01-01T00:00:00Z"}}"#;
        assert_eq!(
            Inbound::decode("channel-5", raw),
            Some(Inbound::Sequenced {
                channel_id: 5,
                seq: 42
            })
        );
    }

    #[test]
    fn an_event_is_routed_by_its_own_seq() {
        let raw = r#"{"type":"event","event":{"channel_id":5,"seq":43,"message_id":"1","message_seq":42,"user_id":1,"client_msg_id":null,"created_at":"2026-01-01T00:00:00Z","kind":"message_deleted"}}"#;
        assert_eq!(
            Inbound::decode("channel-5", raw),
            Some(Inbound::Sequenced {
                channel_id: 5,
                seq: 43
            })
        );
    }
}

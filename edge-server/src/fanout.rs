//! The Redis reader: one task reads every publish of the edge's subscriber connection and
//! routes it: `channel-{id}` events to the channel's task, `user-{id}` membership changes to
//! the user's sockets, `presence` events to the sockets that share a channel with the user.
//! It parses only the type, channel and seq; the payload bytes go to sockets as they came.

use std::sync::Arc;

use fred::clients::SubscriberClient;
use fred::interfaces::EventInterface;
use serde::Deserialize;
use shared::presence::PresenceEvent;
use shared::protocol::ServerFrame;
use shared::topics::{self, Topic};
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use crate::channel::ChannelCmd;
use crate::edge::Edge;
use crate::hub::UserEvent;

/// The fields of a channel event the fanout needs.
#[derive(Deserialize)]
struct Peek {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: Option<PeekMessage>,
    #[serde(default)]
    user_id: Option<i64>,
}

#[derive(Deserialize)]
struct PeekMessage {
    seq: i64,
}

/// Reads the subscriber's messages until `shutdown`.
pub async fn run(edge: Arc<Edge>, sub: SubscriberClient, shutdown: CancellationToken) {
    let mut rx = sub.message_rx();
    let mut ticker = tokio::time::interval(edge.config.catchup_interval);
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {
                // A lost last message of a burst is revealed by no later one: look.
                edge.catch_up_all();
                continue;
            }
            m = rx.recv() => m,
        };
        let msg = match msg {
            Ok(m) => m,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(edge = %edge.id, n, "fanout lagged: catching up from PostgreSQL");
                edge.catch_up_all();
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let Some(bytes) = msg.value.into_bytes() else {
            continue;
        };
        let Ok(payload) = Utf8Bytes::try_from(bytes) else {
            continue;
        };
        let topic: &str = &msg.channel;
        if topic == shared::presence::TOPIC {
            presence(&edge, &payload);
            continue;
        }
        match topics::parse(topic) {
            Some(Topic::Channel(id)) => channel_event(&edge, id, payload),
            Some(Topic::User(id)) => user_event(&edge, id, payload),
            None => {}
        }
    }
}

fn channel_event(edge: &Edge, id: i64, payload: Utf8Bytes) {
    let Some(tx) = edge.hub.channel(id) else {
        return;
    };
    let Ok(peek) = serde_json::from_str::<Peek>(&payload) else {
        tracing::warn!(channel = id, "unreadable channel event dropped");
        return;
    };
    let cmd = match (peek.kind.as_str(), peek.message) {
        ("message", Some(m)) => ChannelCmd::Message {
            seq: m.seq,
            payload,
        },
        ("typing", _) => ChannelCmd::Event {
            payload,
            skip_user: peek.user_id,
        },
        _ => ChannelCmd::Event {
            payload,
            skip_user: None,
        },
    };
    let _ = tx.send(cmd);
}

fn user_event(edge: &Edge, user: i64, payload: Utf8Bytes) {
    let ev = match serde_json::from_str::<ServerFrame>(&payload) {
        Ok(ServerFrame::ChannelAdded { channel }) => UserEvent::Added {
            channel_id: channel.id,
            last_seq: channel.last_seq,
            payload,
        },
        Ok(ServerFrame::ChannelRemoved { channel_id }) => UserEvent::Removed {
            channel_id,
            payload,
        },
        _ => return,
    };
    edge.hub.user_event(user, ev);
}

fn presence(edge: &Edge, payload: &str) {
    let Ok(ev) = serde_json::from_str::<PresenceEvent>(payload) else {
        return;
    };
    let frame: Utf8Bytes = ServerFrame::Presence {
        user_id: ev.user_id,
        status: ev.status,
    }
    .to_json()
    .into();
    for s in edge.hub.sockets_in(&ev.channels, ev.user_id) {
        edge.push_counted(&s, frame.clone());
    }
}

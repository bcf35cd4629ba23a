//! The Redis reader: one task reads every publish of the edge's subscriber connection,
//! decodes what routing needs (`shared::bus::Inbound`), and routes it: channel events to the
//! channel's task, membership changes to the user's sockets, presence to the sockets that
//! share a channel with the user. The payload bytes go to sockets as they came.

use std::sync::Arc;
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::interfaces::EventInterface;
use shared::bus::Inbound;
use shared::protocol::ServerFrame;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::channel::ChannelCmd;
use crate::hub::Hub;
use crate::metrics::EdgeMetrics;
use crate::socket::UserEvent;
use crate::wire::Frame;

/// Reads the subscriber's messages until `shutdown`; every `catchup` it also compares each
/// channel with PostgreSQL (a lost last message of a burst is revealed by no later one).
pub async fn run(
    hub: Arc<Hub>,
    metrics: EdgeMetrics,
    sub: SubscriberClient,
    catchup: Duration,
    shutdown: CancellationToken,
) {
    let mut rx = sub.message_rx();
    let mut ticker = tokio::time::interval(catchup);
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {
                hub.catch_up_all();
                continue;
            }
            m = rx.recv() => m,
        };
        let msg = match msg {
            Ok(m) => m,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(n, "fanout lagged: catching up from PostgreSQL");
                hub.catch_up_all();
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let Some(bytes) = msg.value.into_bytes() else {
            continue;
        };
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let Some(inbound) = Inbound::decode(&msg.channel, text) else {
            tracing::warn!(topic = %msg.channel, "unreadable event dropped");
            continue;
        };
        route(&hub, &metrics, inbound, Frame::text(&bytes));
    }
}

fn route(hub: &Hub, metrics: &EdgeMetrics, inbound: Inbound, payload: Frame) {
    let to_channel = |id: i64, cmd: ChannelCmd| {
        if let Some(tx) = hub.channel(id) {
            let _ = tx.send(cmd);
        }
    };
    match inbound {
        Inbound::Sequenced { channel_id, seq } => {
            to_channel(channel_id, ChannelCmd::Message { seq, payload });
        }
        Inbound::ChannelEvent {
            channel_id,
            skip_user,
        } => to_channel(channel_id, ChannelCmd::Event { payload, skip_user }),
        Inbound::Added {
            user_id,
            channel_id,
            last_seq,
        } => hub.user_event(
            user_id,
            UserEvent::Added {
                channel_id,
                last_seq,
                payload,
            },
        ),
        Inbound::Removed {
            user_id,
            channel_id,
        } => hub.user_event(
            user_id,
            UserEvent::Removed {
                channel_id,
                payload,
            },
        ),
        Inbound::ToUser { user_id } => hub.to_user(user_id, payload),
        Inbound::Presence(ev) => {
            let frame: Frame = ServerFrame::Presence {
                user_id: ev.user_id,
                status: ev.status,
            }
            .to_json()
            .into();
            for s in hub.sockets_in(&ev.channels, ev.user_id) {
                s.deliver(frame.clone(), metrics);
            }
        }
    }
}

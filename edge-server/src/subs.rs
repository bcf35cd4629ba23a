//! The subscription manager: the one task that issues SUBSCRIBE / UNSUBSCRIBE on the edge's
//! single Redis subscriber connection, in the order the hub decided them, and resubscribes
//! everything after a reconnect.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::interfaces::{EventInterface, PubsubInterface};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::channel::ChannelCmd;
use crate::edge::Edge;

#[derive(Debug)]
pub enum SubCmd {
    Subscribe(String),
    Unsubscribe(String),
    /// Answered once every command queued before it has been carried out.
    Barrier(oneshot::Sender<()>),
}

/// Runs until `shutdown`. Failed commands leave the desired set dirty; it is re-sent on the
/// next tick and after every reconnect, followed by a catch-up of every channel.
pub async fn run(
    edge: Arc<Edge>,
    sub: SubscriberClient,
    mut rx: mpsc::UnboundedReceiver<SubCmd>,
    shutdown: CancellationToken,
) {
    let mut desired: HashSet<String> = HashSet::new();
    desired.insert(shared::presence::TOPIC.to_owned());
    let mut dirty = true;
    let mut reconnects = sub.reconnect_rx();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            cmd = rx.recv() => match cmd {
                None => return,
                Some(SubCmd::Subscribe(t)) => {
                    if desired.insert(t.clone()) {
                        if t.starts_with("channel-") {
                            edge.metrics.subscribed_channels.fetch_add(1, Relaxed);
                        }
                        if sub.subscribe(t.clone()).await.is_err() {
                            dirty = true;
                        } else if let Some(shared::topics::Topic::Channel(id)) =
                            shared::topics::parse(&t)
                        {
                            // Anything committed before the SUBSCRIBE took effect is filled.
                            if let Some(tx) = edge.hub.channel(id) {
                                let _ = tx.send(ChannelCmd::CatchUp { upto: None });
                            }
                        }
                    }
                }
                Some(SubCmd::Unsubscribe(t)) => {
                    if desired.remove(&t) {
                        if t.starts_with("channel-") {
                            edge.metrics.subscribed_channels.fetch_sub(1, Relaxed);
                        }
                        if sub.unsubscribe(t).await.is_err() {
                            dirty = true;
                        }
                    }
                }
                Some(SubCmd::Barrier(done)) => {
                    let _ = done.send(());
                }
            },
            r = reconnects.recv() => {
                if r.is_ok() {
                    tracing::info!(edge = %edge.id, "redis subscriber (re)connected: resubscribing");
                    dirty = true;
                }
            }
            _ = tick.tick() => {}
        }
        if dirty {
            let all: Vec<String> = desired.iter().cloned().collect();
            if sub.subscribe(all).await.is_ok() {
                dirty = false;
                edge.catch_up_all();
            }
        }
    }
}

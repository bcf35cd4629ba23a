//! The subscription manager: the one task that issues SUBSCRIBE / UNSUBSCRIBE on the edge's
//! single Redis subscriber connection, in the order the hub decided them, and resubscribes
//! everything after a reconnect.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::interfaces::{EventInterface, PubsubInterface};
use shared::topics::Topic;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::channel::ChannelCmd;
use crate::hub::{Hub, SubCmd};
use crate::metrics::EdgeMetrics;

/// Runs until `shutdown`. Failed commands leave the desired set dirty; it is re-sent on the
/// next tick and after every reconnect, followed by a catch-up of every channel.
pub async fn run(
    hub: Arc<Hub>,
    metrics: EdgeMetrics,
    sub: SubscriberClient,
    mut rx: mpsc::UnboundedReceiver<SubCmd>,
    shutdown: CancellationToken,
) {
    let mut desired: HashSet<Topic> = HashSet::from([Topic::Presence]);
    let mut dirty = true;
    let mut reconnects = sub.reconnect_rx();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            cmd = rx.recv() => match cmd {
                None => return,
                Some(SubCmd::Subscribe(t)) => {
                    if desired.insert(t) {
                        if let Topic::Channel(_) = t {
                            metrics.subscribed_channels.increment(1.0);
                        }
                        if sub.subscribe(t.name()).await.is_err() {
                            dirty = true;
                        } else if let Topic::Channel(id) = t {
                            // Anything committed before the SUBSCRIBE took effect is filled.
                            if let Some(tx) = hub.channel(id) {
                                let _ = tx.send(ChannelCmd::CatchUp { upto: None });
                            }
                        }
                    }
                }
                Some(SubCmd::Unsubscribe(t)) => {
                    if desired.remove(&t) {
                        if let Topic::Channel(_) = t {
                            metrics.subscribed_channels.decrement(1.0);
                        }
                        if sub.unsubscribe(t.name()).await.is_err() {
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
                    tracing::info!("redis subscriber (re)connected: resubscribing");
                    dirty = true;
                }
            }
            _ = tick.tick() => {}
        }
        if dirty {
            let all: Vec<String> = desired.iter().map(Topic::name).collect();
            if sub.subscribe(all).await.is_ok() {
                dirty = false;
                hub.catch_up_all();
            }
        }
    }
}

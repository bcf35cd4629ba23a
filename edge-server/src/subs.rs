//! The subscription manager: the one task that issues SUBSCRIBE / UNSUBSCRIBE on the edge's
//! Redis subscriber client, in the order the hub decided them, and resubscribes everything
//! after a reconnect. On a Redis Cluster, channel and user topics are shard channels
//! (`SSUBSCRIBE`, sent to the shard that owns the name's slot, one connection per shard) and
//! everything is resubscribed when the cluster's layout changes (a failover, moved slots).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::error::Error as RedisError;
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use futures_util::future::try_join_all;
use shared::topics::Topic;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::channel::ChannelCmd;
use crate::hub::{Hub, SubCmd};
use crate::metrics::EdgeMetrics;

/// The subscriber client and how it subscribes each kind of topic.
struct Subscriber {
    sub: SubscriberClient,
    /// A Redis Cluster: sharded topics through `SSUBSCRIBE`.
    cluster: bool,
}

impl Subscriber {
    fn sharded(&self, t: Topic) -> bool {
        self.cluster && t.sharded()
    }

    async fn subscribe(&self, t: Topic) -> Result<(), RedisError> {
        if self.sharded(t) {
            self.sub.ssubscribe(t.name()).await
        } else {
            self.sub.subscribe(t.name()).await
        }
    }

    async fn unsubscribe(&self, t: Topic) -> Result<(), RedisError> {
        if self.sharded(t) {
            self.sub.sunsubscribe(t.name()).await
        } else {
            self.sub.unsubscribe(t.name()).await
        }
    }

    /// Subscribes every topic of `all` again (a no-op for those still subscribed): classic
    /// topics in one `SUBSCRIBE`, shard channels in one `SSUBSCRIBE` per slot (a cluster
    /// refuses one that spans slots), all at once.
    async fn subscribe_all(&self, all: &HashSet<Topic>) -> Result<(), RedisError> {
        let mut classic = Vec::new();
        let mut by_slot: BTreeMap<u16, Vec<String>> = BTreeMap::new();
        for t in all {
            let name = t.name();
            if self.sharded(*t) {
                let slot = fred::util::redis_keyslot(name.as_bytes());
                by_slot.entry(slot).or_default().push(name);
            } else {
                classic.push(name);
            }
        }
        if !classic.is_empty() {
            self.sub.subscribe(classic).await?;
        }
        try_join_all(
            by_slot
                .into_values()
                .map(|names| self.sub.ssubscribe(names)),
        )
        .await?;
        Ok(())
    }
}

/// Runs until `shutdown`. Failed commands leave the desired set dirty; it is re-sent on the
/// next tick and after every reconnect or cluster change, followed by a catch-up of every
/// channel.
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
    let mut layout = sub.cluster_change_rx();
    let s = Subscriber {
        cluster: sub.is_clustered(),
        sub,
    };
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
                        if s.subscribe(t).await.is_err() {
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
                        if s.unsubscribe(t).await.is_err() {
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
            r = layout.recv() => {
                if r.is_ok() {
                    tracing::info!("redis cluster layout changed: resubscribing");
                    dirty = true;
                }
            }
            _ = tick.tick() => {}
        }
        if dirty && s.subscribe_all(&desired).await.is_ok() {
            dirty = false;
            hub.catch_up_all();
        }
    }
}

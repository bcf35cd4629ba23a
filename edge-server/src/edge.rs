//! The state every task of one edge shares (a cheap `Arc<Edge>`), and the few operations
//! that need several parts of it.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::ClientLike;
use shared::store::Store;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::task::TaskTracker;

use crate::channel::ChannelCmd;
use crate::config::Config;
use crate::hub::{Hub, SocketHandle};
use crate::metrics::Metrics;
use crate::presence::PresenceCmd;
use crate::queue::Pushed;
use crate::sender::SendQueue;

pub struct Edge {
    pub id: String,
    pub config: Config,
    pub store: Store,
    /// The normal Redis connection: publishes and presence.
    pub redis: Client,
    pub hub: Hub,
    pub metrics: Metrics,
    pub sends: SendQueue,
    /// Topic and payload, published in order by one task.
    pub publisher: mpsc::Sender<(String, String)>,
    pub presence: mpsc::UnboundedSender<PresenceCmd>,
    pub draining: AtomicBool,
    pub tracker: TaskTracker,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Edge {
    /// Queues a frame to a socket, counting a slow-consumer close if it overflows.
    pub fn push_counted(&self, s: &SocketHandle, payload: Utf8Bytes) -> bool {
        match s.queue.push(payload) {
            Pushed::Queued => true,
            Pushed::Overflow => {
                self.metrics.slow_consumer_closes.fetch_add(1, Relaxed);
                false
            }
            Pushed::Closed => false,
        }
    }

    /// Queues a publish; when the queue is full the publish is dropped, which the fanout of
    /// every edge treats like a publish Redis lost (filled from PostgreSQL).
    pub fn publish(&self, topic: String, payload: String) {
        if self.publisher.try_send((topic, payload)).is_err() {
            tracing::warn!(edge = %self.id, "publish queue full: dropping a publish");
        }
    }

    /// Compares every local channel with PostgreSQL's `last_seq` and fills what is missing.
    pub fn catch_up_all(self: &Arc<Self>) {
        let edge = self.clone();
        self.tracker.spawn(async move {
            let channels = edge.hub.channels();
            if channels.is_empty() {
                return;
            }
            let ids: Vec<i64> = channels.iter().map(|(id, _)| *id).collect();
            match edge.store.last_seqs(&ids).await {
                Ok(last) => {
                    for (id, tx) in channels {
                        if let Some(&upto) = last.get(&id) {
                            let _ = tx.send(ChannelCmd::CatchUp { upto: Some(upto) });
                        }
                    }
                }
                Err(e) => tracing::warn!(edge = %edge.id, error = %e, "catch-up read failed"),
            }
        });
    }

    /// Health: not draining, PostgreSQL and Redis answer.
    pub async fn healthy(&self) -> bool {
        if self.draining.load(Relaxed) {
            return false;
        }
        let redis = async {
            tokio::time::timeout(Duration::from_secs(2), self.redis.ping::<String>(None))
                .await
                .is_ok_and(|r| r.is_ok())
        };
        let (pg, redis) = tokio::join!(self.store.ping(), redis);
        pg && redis
    }
}

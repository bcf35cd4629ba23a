//! What the sessions and HTTP handlers of one edge share (a cheap `Arc<Edge>`): the chat
//! operations, the local maps, the presence task, metrics, and the drain state. Nothing
//! below the session layer depends on it.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::ClientLike;
use shared::chat::Chat;
use shared::metrics::Metrics;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::hub::Hub;
use crate::metrics::EdgeMetrics;
use crate::presence::PresenceCmd;
use crate::replays::Replays;

pub struct Edge {
    pub id: String,
    pub config: Config,
    pub chat: Chat,
    pub hub: Arc<Hub>,
    /// Coalesced, paced history reads for `resume`.
    pub replays: Arc<Replays>,
    /// The recorder behind `/metrics`, and the edge's own handles in it.
    pub registry: Metrics,
    pub metrics: EdgeMetrics,
    /// The normal Redis connection (health checks).
    pub redis: Client,
    pub presence: mpsc::UnboundedSender<PresenceCmd>,
    pub draining: AtomicBool,
    /// Sessions and channel tasks, waited for by the drain.
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
        let (pg, redis) = tokio::join!(self.chat.store().ping(), redis);
        pg && redis
    }
}

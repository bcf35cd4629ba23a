//! Sends and the publisher. Sockets hand their validated sends to the shared group committer
//! (`shared::store::GroupCommit`): sends from every socket are committed together in one
//! transaction, each socket hears its outcome only after the commit, and every stored message
//! is queued for publishing in commit (so `seq`) order.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::PubsubInterface;
use futures_util::stream::{FuturesOrdered, StreamExt};
use shared::protocol::ServerFrame;
use shared::store::{GroupCommit, GroupCommitConfig, NewMessage, Outcome, Store, StoreError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::edge::Edge;

/// Why a send got no outcome.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("database unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

/// The sockets' handle to the group committer.
#[derive(Debug, Clone)]
pub struct SendQueue {
    commits: GroupCommit,
}

impl SendQueue {
    /// Starts the committer; each stored message goes to `publish` as a `message` frame.
    pub fn new(
        store: Store,
        max_batch: usize,
        shards: usize,
        publish: mpsc::Sender<(String, String)>,
    ) -> Self {
        let config = GroupCommitConfig {
            max_batch,
            shards,
            ..GroupCommitConfig::default()
        };
        let on_stored = Arc::new(move |m: &shared::Message| {
            let topic = shared::topics::channel(m.channel_id);
            let frame = ServerFrame::Message { message: m.clone() };
            // Full queue: the publish is dropped and subscribers fill from PostgreSQL.
            if publish.try_send((topic, frame.to_json())).is_err() {
                tracing::warn!("publish queue full: dropping a publish");
            }
        });
        SendQueue {
            commits: GroupCommit::spawn_with_hook(store, config, on_stored),
        }
    }

    /// Queues one message for the next batch of its channel's committer and returns the
    /// future of its outcome (resolved after the commit). Sends queued one after another to
    /// one channel are committed in that order.
    pub async fn enqueue(&self, msg: NewMessage) -> Result<Outcome, SendError> {
        self.commits.enqueue(msg).await.map_err(map_error)
    }
}

/// What a failed commit means to the client.
pub fn map_error(e: StoreError) -> SendError {
    match e {
        StoreError::Unavailable(_) => SendError::Unavailable,
        e => {
            tracing::warn!(error = %e, "send failed");
            SendError::Internal
        }
    }
}

/// Most publishes sent to Redis in one pipeline.
const PUBLISH_BATCH: usize = 256;
/// Pipelines sent and not yet answered. One at a time capped the publisher at one batch per
/// round trip, and round trips stretch to tens of milliseconds on a busy runtime: at ~16k acked
/// sends/s the queue grew and deliveries trailed acks by a second.
const PIPELINES_IN_FLIGHT: usize = 8;
/// How long Redis may take to answer one pipeline.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

type Answer = Pin<Box<dyn Future<Output = (usize, bool)> + Send>>;

/// Publishes queued payloads in order: whatever is waiting (up to 256) goes to Redis as one
/// pipeline on the one connection, so a burst costs one round trip, not one per message. Up to
/// 8 pipelines are in flight at once; each is handed to the connection (its first poll) before
/// the next is built, so Redis receives every publish in queue order. A failed publish is
/// dropped: subscribers notice the hole in `seq` (or the catch-up tick does) and read the
/// message from PostgreSQL.
pub async fn publisher(
    edge: Arc<Edge>,
    redis: Client,
    mut rx: mpsc::Receiver<(String, String)>,
    shutdown: CancellationToken,
) {
    let mut batch: Vec<(String, String)> = Vec::with_capacity(PUBLISH_BATCH);
    let mut in_flight: FuturesOrdered<Answer> = FuturesOrdered::new();
    let mut open = true;
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
                    // Buffered in the pipeline; sent by `all` below.
                    queued &= pipe.publish::<(), _, _>(topic, payload).await.is_ok();
                }
                let mut answer: Answer = Box::pin(async move {
                    let r = tokio::time::timeout(PUBLISH_TIMEOUT, pipe.all::<Vec<i64>>()).await;
                    (n, queued && matches!(r, Ok(Ok(_))))
                });
                // The first poll hands the pipeline to the connection: done here, before the
                // next batch is built, it fixes the order in which Redis sees them.
                match poll_fn(|cx| Poll::Ready(answer.as_mut().poll(cx))).await {
                    Poll::Ready(done) => report(&edge, done),
                    Poll::Pending => in_flight.push_back(answer),
                }
            }
            Some(done) = in_flight.next(), if !in_flight.is_empty() => report(&edge, done),
        }
    }
}

fn report(edge: &Edge, (n, ok): (usize, bool)) {
    if !ok {
        tracing::warn!(edge = %edge.id, n, "publish failed; subscribers will fill from PostgreSQL");
    }
}

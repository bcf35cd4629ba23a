//! Group commit: sends from many sockets and channels share one transaction (one fsync).
//!
//! Callers submit one message each and await its outcome. Channels are spread over `shards`
//! committer tasks by id; each task takes whatever is queued for it (up to `max_batch`) and
//! stores it with [`Store::send_batch`]. A shard's batches run one after another, so the sends
//! of one channel are committed in the order they were submitted: a client that pipelines
//! several sends sees them stored in that order. Under light load a batch holds one message and
//! costs what a single send costs; under heavy load batches grow and the commit cost is shared,
//! while the shards keep several transactions (and PostgreSQL connections) busy at once.

use std::time::Duration;

use metrics::Histogram;
use tokio::sync::{mpsc, oneshot};

use super::{NewMessage, SendOutcome, Store, StoreError};
use crate::metrics::Metrics;
use crate::protocol::Message;

/// Called with every newly stored message, in commit order, right after its batch commits and
/// before any caller hears of it (publishers use it to announce messages in `seq` order).
pub type OnStored = std::sync::Arc<dyn Fn(&Message) + Send + Sync>;

/// Tuning of the committer.
#[derive(Debug, Clone, Copy)]
pub struct GroupCommitConfig {
    /// Most messages in one transaction.
    pub max_batch: usize,
    /// Queued sends per shard before `send` waits (backpressure on the callers).
    pub queue: usize,
    /// Committer tasks; a channel always goes to the same one.
    pub shards: usize,
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        GroupCommitConfig {
            max_batch: 512,
            queue: 16_384,
            shards: 4,
        }
    }
}

struct Pending {
    msg: NewMessage,
    reply: oneshot::Sender<Result<SendOutcome, StoreError>>,
}

/// Handle to the committer task; cheap to clone. The task ends when every handle is dropped.
#[derive(Clone, Debug)]
pub struct GroupCommit {
    shards: std::sync::Arc<[mpsc::Sender<Pending>]>,
}

impl GroupCommit {
    /// Starts the committer task on the current runtime, recording to a recorder nobody
    /// renders (benchmarks and store tests).
    pub fn spawn(store: Store, config: GroupCommitConfig) -> Self {
        let hook = std::sync::Arc::new(|_: &Message| {});
        Self::spawn_with_hook(store, config, &Metrics::default(), hook)
    }

    /// Like [`GroupCommit::spawn`], recording batch sizes and commit times in `metrics`
    /// (`chat_group_commit_batch_size`, `chat_group_commit_seconds`) and calling `on_stored`
    /// for every newly stored message.
    pub fn spawn_with_hook(
        store: Store,
        config: GroupCommitConfig,
        metrics: &Metrics,
        on_stored: OnStored,
    ) -> Self {
        let recorded = Recorded {
            seconds: metrics.histogram(
                "chat_group_commit_seconds",
                "Time to commit one group-commit batch",
            ),
            size: metrics.histogram(
                "chat_group_commit_batch_size",
                "Sends committed by one group-commit batch",
            ),
        };
        let shards = (0..config.shards.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(config.queue.max(1));
                tokio::spawn(run(
                    store.clone(),
                    rx,
                    config.max_batch.max(1),
                    on_stored.clone(),
                    recorded.clone(),
                ));
                tx
            })
            .collect();
        GroupCommit { shards }
    }

    /// Stores one message as part of the next batch.
    pub async fn send(&self, msg: NewMessage) -> Result<SendOutcome, StoreError> {
        self.enqueue(msg).await?.await
    }

    /// Queues one message and returns at once with a future of its outcome. Messages queued
    /// one after another are committed in that order, so a caller can pipeline its sends.
    pub async fn enqueue(&self, msg: NewMessage) -> Result<Outcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        let shard = msg.channel_id.unsigned_abs() as usize % self.shards.len();
        self.shards[shard]
            .send(Pending { msg, reply })
            .await
            .map_err(|_| StoreError::Unavailable(anyhow::anyhow!("committer stopped")))?;
        Ok(Outcome(rx))
    }
}

/// The outcome of a queued send, resolved when its batch commits (or fails).
#[derive(Debug)]
pub struct Outcome(oneshot::Receiver<Result<SendOutcome, StoreError>>);

impl std::future::Future for Outcome {
    type Output = Result<SendOutcome, StoreError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|r| {
            r.map_err(|_| StoreError::Unavailable(anyhow::anyhow!("committer stopped")))
                .and_then(|r| r)
        })
    }
}

/// The committer's histograms.
#[derive(Clone)]
struct Recorded {
    seconds: Histogram,
    size: Histogram,
}

async fn run(
    store: Store,
    mut rx: mpsc::Receiver<Pending>,
    max_batch: usize,
    on_stored: OnStored,
    recorded: Recorded,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        let msgs: Vec<NewMessage> = batch.iter().map(|p| p.msg.clone()).collect();
        let started = std::time::Instant::now();
        let result = store.send_batch(&msgs).await;
        recorded.seconds.record(started.elapsed());
        recorded.size.record(msgs.len() as f64);
        match result {
            Ok(outcomes) => {
                for o in &outcomes {
                    if let SendOutcome::Stored(m) = o {
                        on_stored(m);
                    }
                }
                for (p, o) in batch.drain(..).zip(outcomes) {
                    let _ = p.reply.send(Ok(o));
                }
            }
            Err(e) => {
                // Nothing of the batch is committed: every caller gets the same kind of error.
                let unavailable = matches!(e, StoreError::Unavailable(_));
                let text = e.to_string();
                for p in batch.drain(..) {
                    let err = if unavailable {
                        StoreError::Unavailable(anyhow::anyhow!("{text}"))
                    } else {
                        StoreError::Unexpected(anyhow::anyhow!("{text}"))
                    };
                    let _ = p.reply.send(Err(err));
                }
                // Do not spin on a database that is down.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

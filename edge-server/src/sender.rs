//! Group commit of sends, and the publisher. Sockets hand their validated sends to a few
//! batching workers; each worker commits what has gathered in one `Store::send_batch`
//! transaction, answers every socket through a oneshot (the ack happens only after the
//! commit), and queues the `message` publishes in seq order.

use std::sync::Arc;
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::PubsubInterface;
use shared::protocol::ServerFrame;
use shared::store::{NewMessage, SendOutcome, StoreError};
use tokio::sync::{mpsc, oneshot, Mutex};
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

type Reply = oneshot::Sender<Result<SendOutcome, SendError>>;

/// The sockets' side of the batching workers.
#[derive(Debug, Clone)]
pub struct SendQueue {
    tx: mpsc::Sender<(NewMessage, Reply)>,
}

/// The workers' side.
pub type SendReceiver = Arc<Mutex<mpsc::Receiver<(NewMessage, Reply)>>>;

impl SendQueue {
    pub fn new(bound: usize) -> (Self, SendReceiver) {
        let (tx, rx) = mpsc::channel(bound);
        (SendQueue { tx }, Arc::new(Mutex::new(rx)))
    }

    /// Commits one message (batched with others) and returns its outcome.
    pub async fn send(&self, msg: NewMessage) -> Result<SendOutcome, SendError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((msg, reply))
            .await
            .map_err(|_| SendError::Unavailable)?;
        rx.await.map_err(|_| SendError::Internal)?
    }
}

/// One batching worker; several run side by side, each committing its own batch.
pub async fn worker(edge: Arc<Edge>, rx: SendReceiver, shutdown: CancellationToken) {
    let max = edge.config.send_batch_max.max(1);
    let mut batch: Vec<NewMessage> = Vec::with_capacity(max);
    let mut replies: Vec<Reply> = Vec::with_capacity(max);
    loop {
        {
            let mut rx = tokio::select! {
                _ = shutdown.cancelled() => return,
                g = rx.lock() => g,
            };
            let first = tokio::select! {
                _ = shutdown.cancelled() => return,
                m = rx.recv() => m,
            };
            let Some((m, r)) = first else { return };
            batch.push(m);
            replies.push(r);
            while batch.len() < max {
                match rx.try_recv() {
                    Ok((m, r)) => {
                        batch.push(m);
                        replies.push(r);
                    }
                    Err(_) => break,
                }
            }
        }
        match edge.store.send_batch(&batch).await {
            Ok(outcomes) => {
                for (o, r) in outcomes.into_iter().zip(replies.drain(..)) {
                    if let SendOutcome::Stored(m) = &o {
                        let topic = shared::topics::channel(m.channel_id);
                        let frame = ServerFrame::Message { message: m.clone() };
                        edge.publish(topic, frame.to_json());
                    }
                    let _ = r.send(Ok(o));
                }
            }
            Err(e) => {
                let unavailable = matches!(e, StoreError::Unavailable(_));
                tracing::warn!(edge = %edge.id, error = %e, n = batch.len(), "send batch failed");
                for r in replies.drain(..) {
                    let _ = r.send(Err(if unavailable {
                        SendError::Unavailable
                    } else {
                        SendError::Internal
                    }));
                }
            }
        }
        batch.clear();
        replies.clear();
    }
}

/// Publishes queued payloads in order. A failed publish is dropped: subscribers notice the
/// hole in `seq` (or the catch-up tick does) and read the message from PostgreSQL.
pub async fn publisher(
    edge: Arc<Edge>,
    redis: Client,
    mut rx: mpsc::Receiver<(String, String)>,
    shutdown: CancellationToken,
) {
    loop {
        let item = tokio::select! {
            _ = shutdown.cancelled() => return,
            i = rx.recv() => i,
        };
        let Some((topic, payload)) = item else { return };
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            redis.publish::<i64, _, _>(topic, payload),
        )
        .await;
        if !matches!(r, Ok(Ok(_))) {
            tracing::warn!(edge = %edge.id, "publish failed; subscribers will fill from PostgreSQL");
        }
    }
}

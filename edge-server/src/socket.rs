//! One connected socket as the rest of the edge sees it: its identity, its bounded outbound
//! queue, and the channels it is in. Shared (`Arc`) by its session, channel tasks and the hub.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::metrics::EdgeMetrics;
use crate::queue::{OutQueue, Pushed};
use crate::wire::Frame;

pub type SocketId = u64;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug)]
pub struct SocketHandle {
    pub id: SocketId,
    pub user_id: i64,
    pub username: String,
    pub queue: OutQueue,
    pub(crate) state: Mutex<SocketState>,
    /// Resolves when the socket's last change to a message (`edit`, `delete`, `react`,
    /// `unreact`) is done: the next one waits for it, so a socket's changes apply in the
    /// order it sent them.
    pub(crate) last_change: Mutex<Option<oneshot::Receiver<()>>>,
}

/// Membership of one socket; changed by the hub only (lock order: this, then the hub's maps).
#[derive(Debug, Default)]
pub(crate) struct SocketState {
    /// `ready` has been queued; before that, control events wait in `pending`.
    pub ready: bool,
    pub closed: bool,
    pub channels: HashSet<i64>,
    pub pending: Vec<UserEvent>,
}

/// A membership change of a user, from `user-{id}`.
#[derive(Debug, Clone)]
pub enum UserEvent {
    Added {
        channel_id: i64,
        last_seq: i64,
        payload: Frame,
    },
    Removed {
        channel_id: i64,
        payload: Frame,
    },
}

impl SocketHandle {
    pub fn new(id: SocketId, user_id: i64, username: &str, queue: OutQueue) -> Self {
        SocketHandle {
            id,
            user_id,
            username: username.to_owned(),
            queue,
            state: Mutex::new(SocketState::default()),
            last_change: Mutex::new(None),
        }
    }

    pub fn is_member(&self, channel_id: i64) -> bool {
        lock(&self.state).channels.contains(&channel_id)
    }

    /// Takes the socket's turn for a change: returns the previous change's completion to wait
    /// for, and the sender that marks this one done (dropping it counts as done).
    pub fn next_change(&self) -> (Option<oneshot::Receiver<()>>, oneshot::Sender<()>) {
        let (done, turn) = oneshot::channel();
        (lock(&self.last_change).replace(turn), done)
    }

    pub fn channel_ids(&self) -> Vec<i64> {
        lock(&self.state).channels.iter().copied().collect()
    }

    /// Queues a frame, counting a slow-consumer close if it overflows; true when queued.
    pub fn deliver(&self, payload: Frame, metrics: &EdgeMetrics) -> bool {
        match self.queue.push(payload) {
            Pushed::Queued => true,
            Pushed::Overflow => {
                metrics.slow_consumer_closes.increment(1);
                false
            }
            Pushed::Closed => false,
        }
    }
}

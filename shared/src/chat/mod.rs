//! The chat operations, written once for every transport: send, changes to a message (edit,
//! delete, reactions), read markers, typing, channels and membership (with their events),
//! roles, blocks, history, threads, mentions, search and `resume` replays. A REST route or
//! a WebSocket frame handler parses its input, calls one of these, and renders the result;
//! every rule, every store call and every event published lives here.

mod blocks;
mod changes;
mod error;
mod membership;
mod messages;
mod search;
mod threads;

use std::sync::Arc;

use crate::bus::Bus;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::protocol::ServerFrame;
use crate::ratelimit::SendLimiter;
use crate::store::{GroupCommit, GroupCommitConfig, Store};
use crate::topics::Topic;

pub use changes::{ChangeRequest, Changed};
pub use error::ChatError;
pub use membership::Direct;
pub use messages::{PendingSend, SendRequest, Sent, MAX_ATTACHMENTS};
pub use search::{SearchPage, SearchRequest, MAX_QUERY_CHARS};
pub use threads::{Mentions, Thread};

/// The user an operation acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: i64,
    pub name: String,
}

/// The operations and what they need; cheap to clone.
#[derive(Clone, Debug)]
pub struct Chat {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    commits: GroupCommit,
    bus: Bus,
    sends: SendLimiter,
    limits: Arc<Limits>,
}

impl Chat {
    /// Starts the group committer on `store`; every message it stores is published on its
    /// channel's topic in commit order, before any sender hears of it (a reply is followed by
    /// its thread's `thread_updated` event).
    pub fn new(
        store: Store,
        bus: Bus,
        limits: Arc<Limits>,
        commit: GroupCommitConfig,
        metrics: &Metrics,
    ) -> Chat {
        let (publish, reader) = (bus.clone(), store.clone());
        let on_stored = Arc::new(move |m: &crate::Message| {
            let frame = ServerFrame::Message { message: m.clone() };
            publish.publish(Topic::Channel(m.channel_id), &frame);
            threads::announce_thread(&reader, &publish, m);
            threads::announce_mentions(&publish, m);
        });
        let commits = GroupCommit::spawn_with_hook(store.clone(), commit, metrics, on_stored);
        Chat {
            inner: Arc::new(Inner {
                sends: SendLimiter::new(&limits),
                store,
                commits,
                bus,
                limits,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Periodic upkeep: forget rate-limit state of idle users.
    pub fn upkeep(&self) {
        self.inner.sends.prune();
    }

    fn publish(&self, topic: Topic, frame: &ServerFrame) {
        self.inner.bus.publish(topic, frame);
    }

    /// 404 when the channel does not exist, 403 when it does and `user` is not in it.
    async fn not_member(&self, channel_id: i64) -> ChatError {
        match self.inner.store.channel(channel_id).await {
            Ok(Some(_)) => ChatError::NotMember,
            Ok(None) => ChatError::NoChannel,
            Err(e) => e.into(),
        }
    }

    /// Members only: 404 when the channel does not exist, 403 when `user` is not in it.
    pub async fn require_member(&self, channel_id: i64, user: i64) -> Result<(), ChatError> {
        if self.inner.store.is_member(channel_id, user).await? {
            return Ok(());
        }
        Err(self.not_member(channel_id).await)
    }
}

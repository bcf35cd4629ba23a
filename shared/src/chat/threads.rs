//! Threads and mentions, the two ways a message points at more than its channel. A reply
//! (`reply_to`) belongs to the thread of the message it answers (threads are flat:
//! `thread_root` is the first message of the chain). The root's `reply_count` and
//! `last_reply_at` change with each reply, in the reply's transaction; a `thread_updated`
//! event with the new counters follows it in the channel's seq stream. A thread's replies are
//! paged like history. A mention (`@username` of a member) is kept with the content that
//! makes it; a user's mentions are paged across channels.

use crate::bus::Bus;
use crate::protocol::{Message, ServerFrame};
use crate::store::Store;
use crate::topics::Topic;

use super::{Chat, ChatError};

/// A page of a thread: its root and some of its replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub root: Message,
    pub messages: Vec<Message>,
    /// The cursor for the next page in the same direction, or `None` at the end.
    pub next: Option<i64>,
}

impl Chat {
    /// A page of the replies to the thread whose root is message `root` (a seq), members
    /// only, with the cursors of [`Chat::history`]; the root in its current state with it.
    pub async fn thread(
        &self,
        user: i64,
        channel_id: i64,
        root: i64,
        before: Option<i64>,
        after: Option<i64>,
        limit: Option<i64>,
    ) -> Result<Thread, ChatError> {
        let limit = self.page_limit(limit)?;
        self.require_member(channel_id, user).await?;
        let mut head = self
            .store()
            .message_at(channel_id, root)
            .await?
            .ok_or(ChatError::NoMessage)?;
        if let Some(r) = head.thread_root {
            return Err(ChatError::Validation(format!(
                "message {root} is a reply in the thread of {r}, not a thread's root"
            )));
        }
        let page = self
            .store()
            .thread(channel_id, root, before, after, limit)
            .await?;
        let mut messages = page.messages;
        self.with_reactions(user, channel_id, std::slice::from_mut(&mut head))
            .await?;
        self.with_reactions(user, channel_id, &mut messages).await?;
        Ok(Thread {
            root: head,
            messages,
            next: page.next,
        })
    }
}

/// A page of the messages that mention a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mentions {
    pub messages: Vec<Message>,
    /// The message id to pass as `before` for the next page, or `None` at the end.
    pub next: Option<i64>,
}

impl Chat {
    /// Messages mentioning `user` (`@username`) in the channels they are in, newest first,
    /// below the message id `before`, with reactions as they see them.
    pub async fn mentions(
        &self,
        user: i64,
        before: Option<i64>,
        limit: Option<i64>,
    ) -> Result<Mentions, ChatError> {
        let limit = self.page_limit(limit)?;
        let mut messages = self.store().mentions_of(user, before, limit + 1).await?;
        let more = messages.len() as i64 > limit;
        messages.truncate(limit.max(0) as usize);
        let next = if more {
            messages.last().map(|m| m.id)
        } else {
            None
        };
        let mut by_channel: std::collections::BTreeMap<i64, Vec<usize>> = Default::default();
        for (i, m) in messages.iter().enumerate() {
            by_channel.entry(m.channel_id).or_default().push(i);
        }
        for (channel_id, at) in by_channel {
            let seqs: Vec<i64> = at.iter().map(|&i| messages[i].seq).collect();
            let mut reactions = self.store().reactions(channel_id, &seqs, user).await?;
            for i in at {
                let seq = messages[i].seq;
                messages[i].reactions = reactions.remove(&seq).unwrap_or_default();
            }
        }
        Ok(Mentions { messages, next })
    }
}

/// After a reply is stored: records the `thread_updated` event of its root (with the
/// channel's next seq) and publishes it, beside the committer (which must not wait for it).
/// Should the process stop in between, the root's counters are right all the same (they
/// change with the reply) and the next reply's event carries them.
pub(super) fn announce_thread(store: &Store, bus: &Bus, reply: &Message) {
    let Some(root) = reply.thread_root else {
        return;
    };
    let (store, bus) = (store.clone(), bus.clone());
    let (channel_id, user_id) = (reply.channel_id, reply.sender_id);
    tokio::spawn(async move {
        match store.record_thread_update(channel_id, root, user_id).await {
            Ok(Some(event)) => {
                bus.publish(Topic::Channel(channel_id), &ServerFrame::Event { event });
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(channel_id, root, error = %e, "thread_updated not recorded");
            }
        }
    });
}

/// After a message is stored: a `mention` on `user-{id}` of each member it names (never the
/// sender), so their clients can notify at once; `GET /api/me/channels` counts the unread ones.
pub(super) fn announce_mentions(bus: &Bus, m: &Message) {
    for &user in m.mentions.iter().filter(|&&u| u != m.sender_id) {
        let frame = ServerFrame::Mention {
            channel_id: m.channel_id,
            seq: m.seq,
            message_id: m.id,
            sender_id: m.sender_id,
            sender: m.sender.clone(),
        };
        bus.publish(Topic::User(user), &frame);
    }
}

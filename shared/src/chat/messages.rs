//! Sending (validate, rate-limit, group commit; the committer publishes), read markers,
//! typing, history and the rows a `resume` replays.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{Actor, Chat, ChatError};
use crate::protocol::{Message, ServerFrame};
use crate::store::{Entry, History, NewMessage, Outcome, SendOutcome};
use crate::topics::Topic;
use crate::validate::{self, Content};

/// A send as a client asks for it.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub channel_id: i64,
    pub content: String,
    pub client_msg_id: Option<String>,
    /// The `seq` of an earlier message of the same channel.
    pub reply_to: Option<i64>,
    /// Ids of files the sender uploaded to the channel (at most [`MAX_ATTACHMENTS`], each
    /// once), linked to the message in its transaction.
    pub attachments: Vec<String>,
}

/// A send that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Stored now (and queued for publishing on the channel topic).
    Stored(Message),
    /// A retry: the message this `client_msg_id` stored before, not published again.
    Duplicate(Message),
}

impl Sent {
    pub fn into_message(self) -> Message {
        match self {
            Sent::Stored(m) | Sent::Duplicate(m) => m,
        }
    }
}

/// A send queued for commit: resolves once its batch has committed (or failed). Sends a
/// caller queues one after another are committed in that order.
#[derive(Debug)]
pub struct PendingSend(Outcome);

impl Future for PendingSend {
    type Output = Result<Sent, ChatError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| match r? {
            SendOutcome::Stored(m) => Ok(Sent::Stored(m)),
            SendOutcome::Duplicate(m) => Ok(Sent::Duplicate(m)),
            SendOutcome::NoChannel => Err(ChatError::NoChannel),
            SendOutcome::NotMember => Err(ChatError::NotMember),
            SendOutcome::BadReplyTo => Err(ChatError::Validation(
                "reply_to must be the seq of an earlier message of this channel".into(),
            )),
        })
    }
}

/// Most attachments one message carries.
pub const MAX_ATTACHMENTS: usize = 10;

impl Chat {
    /// Validates a send, takes a rate token, and queues it for the next group commit; returns
    /// at once with the future of its outcome, so a caller can pipeline its sends.
    pub async fn submit(&self, sender: i64, req: SendRequest) -> Result<PendingSend, ChatError> {
        let attachments = req.attachments;
        let limits = self.limits();
        let content = Content::parse(req.content, limits)?;
        let client_msg_id = validate::client_msg_id(req.client_msg_id, limits)?;
        let bad_reply = || {
            ChatError::Validation("reply_to must be the seq of a message of this channel".into())
        };
        if req.reply_to.is_some_and(|r| r < 1) {
            return Err(bad_reply());
        }
        self.inner
            .sends
            .check(sender)
            .map_err(|retry_after| ChatError::RateLimited { retry_after })?;
        if attachments.len() > MAX_ATTACHMENTS {
            return Err(ChatError::Validation(format!(
                "a message carries at most {MAX_ATTACHMENTS} attachments"
            )));
        }
        if (1..attachments.len()).any(|i| attachments[..i].contains(&attachments[i])) {
            return Err(ChatError::Validation("an attachment is named twice".into()));
        }
        if let Some(r) = req.reply_to {
            // A seq may be an event's: a reply answers a message (read after the rate token,
            // like every check that reaches the store).
            if self.store().message_at(req.channel_id, r).await?.is_none() {
                return Err(bad_reply());
            }
        }
        if !attachments.is_empty() {
            let foreign = self
                .store()
                .foreign_attachments(req.channel_id, sender, &attachments)
                .await?;
            if let Some(id) = foreign.first() {
                return Err(ChatError::Validation(format!(
                    "attachment {id:?} is not one you uploaded to this channel"
                )));
            }
        }
        let queued = self
            .inner
            .commits
            .enqueue(NewMessage {
                channel_id: req.channel_id,
                sender_id: sender,
                content: content.into_inner(),
                client_msg_id,
                reply_to: req.reply_to,
                attachments,
            })
            .await?;
        Ok(PendingSend(queued))
    }

    /// [`Chat::submit`] and wait for the commit.
    pub async fn send(&self, sender: i64, req: SendRequest) -> Result<Sent, ChatError> {
        self.submit(sender, req).await?.await
    }

    /// Moves the user's read marker forward (never backwards, never past the last message)
    /// and tells the channel with a `read` event when it moved. Returns the stored marker.
    pub async fn mark_read(&self, user: i64, channel_id: i64, seq: i64) -> Result<i64, ChatError> {
        if seq < 0 {
            return Err(ChatError::Validation("seq must not be negative".into()));
        }
        let Some((old, new)) = self.store().mark_read(channel_id, user, seq).await? else {
            return Err(self.not_member(channel_id).await);
        };
        if new > old {
            let frame = ServerFrame::Read {
                channel_id,
                user_id: user,
                seq: new,
            };
            self.publish(Topic::Channel(channel_id), &frame);
        }
        Ok(new)
    }

    /// Tells the channel's other members that `user` is typing (not stored). The caller has
    /// checked membership.
    pub fn typing(&self, user: &Actor, channel_id: i64) {
        let frame = ServerFrame::Typing {
            channel_id,
            user_id: user.id,
            username: user.name.clone(),
        };
        self.publish(Topic::Channel(channel_id), &frame);
    }

    /// A page of history, members only: newest first below `before` without `after`,
    /// ascending above `after` with it; `limit` defaults to and is capped by the limits.
    /// Messages come in their current state (edited content, tombstones) with their reactions
    /// as `user` sees them. Cursors are message seqs: the seqs of other log entries between
    /// them are simply not in any page.
    pub async fn history(
        &self,
        user: i64,
        channel_id: i64,
        before: Option<i64>,
        after: Option<i64>,
        limit: Option<i64>,
    ) -> Result<History, ChatError> {
        let limit = self.page_limit(limit)?;
        self.require_member(channel_id, user).await?;
        let mut page = self
            .store()
            .history(channel_id, before, after, limit)
            .await?;
        self.with_reactions(user, channel_id, &mut page.messages)
            .await?;
        Ok(page)
    }

    /// Fills in the reactions of `messages` (of one channel) as `user` sees them.
    pub(super) async fn with_reactions(
        &self,
        user: i64,
        channel_id: i64,
        messages: &mut [Message],
    ) -> Result<(), ChatError> {
        let seqs: Vec<i64> = messages.iter().map(|m| m.seq).collect();
        let mut reactions = self.store().reactions(channel_id, &seqs, user).await?;
        for m in messages {
            m.reactions = reactions.remove(&m.seq).unwrap_or_default();
        }
        Ok(())
    }

    /// A page size from `?limit=`: default and maximum from the limits, at least 1.
    pub fn page_limit(&self, limit: Option<i64>) -> Result<i64, ChatError> {
        let l = self.limits();
        match limit {
            None => Ok(l.history_default),
            Some(n) if n < 1 => Err(ChatError::Validation("limit must be at least 1".into())),
            Some(n) => Ok(n.min(l.history_max)),
        }
    }

    /// Refuses a `resume` seq below 0 (before any read is planned for it).
    pub fn check_resume_seq(after: i64) -> Result<(), ChatError> {
        if after < 0 {
            return Err(ChatError::Validation("resume seqs must be >= 0".into()));
        }
        Ok(())
    }

    /// Up to `limit` entries of a channel's log (messages and events) after `after`, ascending:
    /// the rows `resume`s replay.
    /// One read may serve several resumes of the channel, each replaying at most `RESUME_MAX`
    /// of them (the edge slices it). The caller has checked membership and the seq.
    pub async fn replay_rows(
        &self,
        channel_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Entry>, ChatError> {
        Ok(self
            .store()
            .log_between(channel_id, after, i64::MAX, limit.max(1))
            .await?)
    }
}

//! Changes to a message after it was sent (edit, delete, react, unreact): validated, decided
//! (who may do what, written once here), recorded with the channel's next seq in the same
//! transaction, then published on the channel's topic as an `event` frame.

use super::{Chat, ChatError};
use crate::protocol::{ClientFrame, Event, Message, ServerFrame};
use crate::store::{ChangeKind, ChangeOutcome, Facts, NewChange};
use crate::topics::Topic;
use crate::validate::{self, Content};

/// A change as a client asks for it; the message is named by its id (SPEC 3).
#[derive(Debug, Clone)]
pub struct ChangeRequest {
    pub channel_id: i64,
    pub message_id: i64,
    pub kind: ChangeKind,
    /// Idempotency key: a retry with the same key (same user, same channel) records nothing
    /// more and gets the first attempt's event.
    pub client_msg_id: Option<String>,
}

impl ChangeRequest {
    /// The change a WebSocket frame asks for (`edit`, `delete`, `react`, `unreact`); `None`
    /// for any other frame.
    pub fn from_frame(frame: ClientFrame) -> Option<ChangeRequest> {
        let (channel_id, message_id, kind, client_msg_id) = match frame {
            ClientFrame::Edit {
                channel_id,
                message_id,
                content,
                client_msg_id,
            } => (
                channel_id,
                message_id,
                ChangeKind::Edit { content },
                client_msg_id,
            ),
            ClientFrame::Delete {
                channel_id,
                message_id,
                client_msg_id,
            } => (channel_id, message_id, ChangeKind::Delete, client_msg_id),
            ClientFrame::React {
                channel_id,
                message_id,
                emoji,
                client_msg_id,
            } => (
                channel_id,
                message_id,
                ChangeKind::React { emoji },
                client_msg_id,
            ),
            ClientFrame::Unreact {
                channel_id,
                message_id,
                emoji,
                client_msg_id,
            } => (
                channel_id,
                message_id,
                ChangeKind::Unreact { emoji },
                client_msg_id,
            ),
            _ => return None,
        };
        Some(ChangeRequest {
            channel_id,
            message_id,
            kind,
            client_msg_id,
        })
    }
}

/// A change that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The message as it is now, with its reactions as the caller sees them.
    pub message: Message,
    /// The event recorded, or `None` when there was nothing to change (a reaction already
    /// there or already gone, a message already deleted).
    pub event: Option<Event>,
    /// A retry: `event` is the one recorded the first time (not published again).
    pub duplicate: bool,
}

impl Chat {
    /// Validates, rate-limits (changes share the send budget) and applies a change; the event
    /// is published on the channel's topic after the commit.
    pub async fn change(&self, user: i64, req: ChangeRequest) -> Result<Changed, ChatError> {
        let limits = self.limits();
        let client_msg_id = validate::client_msg_id(req.client_msg_id, limits)?;
        let kind = match req.kind {
            ChangeKind::Edit { content } => ChangeKind::Edit {
                content: Content::parse(content, limits)?.into_inner(),
            },
            ChangeKind::React { emoji } => {
                validate::emoji(&emoji)?;
                ChangeKind::React { emoji }
            }
            ChangeKind::Unreact { emoji } => {
                validate::emoji(&emoji)?;
                ChangeKind::Unreact { emoji }
            }
            ChangeKind::Delete => ChangeKind::Delete,
        };
        self.inner
            .sends
            .check(user)
            .map_err(|retry_after| ChatError::RateLimited { retry_after })?;
        let change = NewChange {
            channel_id: req.channel_id,
            user_id: user,
            message_id: req.message_id,
            kind,
            client_msg_id,
        };
        let outcome = self
            .store()
            .apply_change(&change, |facts| allowed(&change.kind, user, facts))
            .await?;
        let (mut message, event, duplicate) = match outcome {
            ChangeOutcome::Applied { event, message } => {
                tracing::debug!(
                    channel_id = event.channel_id,
                    seq = event.seq,
                    kind = event.change.kind(),
                    "change recorded"
                );
                let frame = ServerFrame::Event {
                    event: event.clone(),
                };
                self.publish(Topic::Channel(event.channel_id), &frame);
                (message, Some(event), false)
            }
            ChangeOutcome::Duplicate { event, message } => (message, Some(event), true),
            ChangeOutcome::Unchanged { message } => (message, None, false),
        };
        self.with_reactions(user, req.channel_id, std::slice::from_mut(&mut message))
            .await?;
        Ok(Changed {
            message,
            event,
            duplicate,
        })
    }
}

/// Who may make which change, on the facts read under the channel's lock: members only; only
/// the sender edits; the sender or an owner or admin deletes; a deleted message takes no
/// edit and no reaction (deleting it again, or taking back a reaction, changes nothing).
fn allowed(kind: &ChangeKind, user: i64, facts: &Facts<'_>) -> Result<(), ChatError> {
    if !facts.channel {
        return Err(ChatError::NoChannel);
    }
    let role = facts.role.ok_or(ChatError::NotMember)?;
    let m = facts.message.ok_or(ChatError::NoMessage)?;
    match kind {
        ChangeKind::Edit { .. } if m.sender_id != user => {
            Err(ChatError::Forbidden("only the sender may edit a message"))
        }
        ChangeKind::Delete if m.sender_id != user && !role.moderates() => Err(
            ChatError::Forbidden("only the sender or an owner or admin may delete a message"),
        ),
        ChangeKind::Edit { .. } | ChangeKind::React { .. } if m.deleted => {
            Err(ChatError::Conflict("the message is deleted"))
        }
        _ => Ok(()),
    }
}

//! Blocking: while either of two users blocks the other, their direct channel is closed to
//! the blocked user (they leave it, with the usual `member_left` / `channel_removed` events,
//! and `POST /api/dms` refuses both until the block is lifted), and the blocked user's
//! `@mentions` of the blocker do not count. Group channels are unaffected.

use super::{Actor, Chat, ChatError};
use crate::protocol::User;

impl Chat {
    /// `user` blocks `other` (idempotent).
    pub async fn block(&self, user: &Actor, other: i64) -> Result<(), ChatError> {
        if other == user.id {
            return Err(ChatError::Validation("you cannot block yourself".into()));
        }
        let other = self
            .store()
            .user_by_id(other)
            .await?
            .ok_or(ChatError::NoUser)?;
        if self.store().block(user.id, other.id).await? {
            tracing::info!(user_id = user.id, blocked = other.id, "blocked");
        }
        if let Some(dm) = self.store().direct_channel_id(user.id, other.id).await? {
            let blocked = Actor {
                id: other.id,
                name: other.username,
            };
            self.leave(&blocked, dm).await?;
        }
        Ok(())
    }

    /// `user` lifts their block of `other` (idempotent). The direct channel opens again with
    /// the next `POST /api/dms`, unless `other` blocks `user`.
    pub async fn unblock(&self, user: &Actor, other: i64) -> Result<(), ChatError> {
        if self.store().unblock(user.id, other).await? {
            tracing::info!(user_id = user.id, unblocked = other, "unblocked");
        }
        Ok(())
    }

    /// The users `user` blocks.
    pub async fn blocks(&self, user: &Actor) -> Result<Vec<User>, ChatError> {
        Ok(self.store().blocked_by(user.id).await?)
    }

    /// Refuses a direct channel between users when either blocks the other.
    pub(super) async fn check_not_blocked(&self, a: i64, b: i64) -> Result<(), ChatError> {
        if self.store().blocked_between(a, b).await? {
            return Err(ChatError::Forbidden(
                "one of you blocks the other: no direct channel",
            ));
        }
        Ok(())
    }
}

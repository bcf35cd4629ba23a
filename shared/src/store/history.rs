//! Reading messages in their current state, a page at a time: a channel's history and a
//! thread's replies. Cursors are message seqs; the seqs of other log entries (events) between
//! them are simply in no page.

use tokio_postgres::types::ToSql;

use super::messages::{message, MESSAGE_COLS};
use super::{Store, StoreError};
use crate::protocol::Message;

/// A page of history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    pub messages: Vec<Message>,
    /// The cursor for the next page in the same direction, or `None` at the end.
    pub next: Option<i64>,
}

impl Store {
    /// A page of history. With `after`: ascending from `after + 1`, `next` to pass as `after`.
    /// Otherwise newest first below `before` (or from the newest), `next` to pass as `before`.
    /// With both, the page lies strictly between them.
    pub async fn history(
        &self,
        channel_id: i64,
        before: Option<i64>,
        after: Option<i64>,
        limit: i64,
    ) -> Result<History, StoreError> {
        self.page(channel_id, None, before, after, limit).await
    }

    /// A page of the replies of the thread whose root is message `root` (by seq), with the
    /// cursors of [`Store::history`].
    pub async fn thread(
        &self,
        channel_id: i64,
        root: i64,
        before: Option<i64>,
        after: Option<i64>,
        limit: i64,
    ) -> Result<History, StoreError> {
        self.page(channel_id, Some(root), before, after, limit)
            .await
    }

    /// Messages that mention `user` in the channels they are in, newest first (by id, which
    /// is time-ordered across channels), below the message id `before`; one more than `limit`
    /// tells whether there is a next page.
    pub async fn mentions_of(
        &self,
        user: i64,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Message>, StoreError> {
        let c = self.client().await?;
        let q = c
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLS} FROM message_mentions mm
                 JOIN channel_members cm ON cm.channel_id = mm.channel_id AND cm.user_id = mm.user_id
                 JOIN messages m ON m.channel_id = mm.channel_id AND m.seq = mm.message_seq
                 JOIN users u ON u.id = m.sender_id
                 WHERE mm.user_id = $1 AND m.id < $2 ORDER BY m.id DESC LIMIT $3"
            ))
            .await?;
        let before = before.unwrap_or(i64::MAX);
        Ok(c.query(&q, &[&user, &before, &limit])
            .await?
            .iter()
            .map(message)
            .collect())
    }

    /// The channel's message with this seq, if it is one (a seq may be an event's).
    pub async fn message_at(
        &self,
        channel_id: i64,
        seq: i64,
    ) -> Result<Option<Message>, StoreError> {
        let c = self.client().await?;
        let q = c
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLS} FROM messages m JOIN users u ON u.id = m.sender_id
                 WHERE m.channel_id = $1 AND m.seq = $2"
            ))
            .await?;
        Ok(c.query_opt(&q, &[&channel_id, &seq])
            .await?
            .map(|r| message(&r)))
    }

    async fn page(
        &self,
        channel_id: i64,
        thread: Option<i64>,
        before: Option<i64>,
        after: Option<i64>,
        limit: i64,
    ) -> Result<History, StoreError> {
        let c = self.client().await?;
        let upper = before.unwrap_or(i64::MAX);
        let fetch = limit + 1;
        let lower = after.unwrap_or(0);
        // One statement per shape, so each keeps its own (index-friendly) plan.
        let in_thread = if thread.is_some() {
            "AND m.thread_root = $5"
        } else {
            ""
        };
        let order = if after.is_some() { "ASC" } else { "DESC" };
        let q = c
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLS} FROM messages m JOIN users u ON u.id = m.sender_id
                 WHERE m.channel_id = $1 AND m.seq > $2 AND m.seq < $3 {in_thread}
                 ORDER BY m.seq {order} LIMIT $4"
            ))
            .await?;
        let root = thread.unwrap_or(0);
        let mut args: Vec<&(dyn ToSql + Sync)> = vec![&channel_id, &lower, &upper, &fetch];
        if thread.is_some() {
            args.push(&root);
        }
        let mut messages: Vec<Message> = c.query(&q, &args).await?.iter().map(message).collect();
        let more = messages.len() as i64 > limit;
        messages.truncate(limit.max(0) as usize);
        let next = if more {
            messages.last().map(|m| m.seq)
        } else {
            None
        };
        Ok(History { messages, next })
    }
}

//! Sending and reading messages. A batch of sends is one transaction (one call of the SQL
//! function `send_messages`, migration 0003): channel rows are locked in id order, `seq` is
//! assigned from `channels.last_seq` under that lock (gap-free, SPEC 5.2), and a
//! `client_msg_id` already stored returns the original message (SPEC 5.3).

use std::collections::HashMap;

use tokio_postgres::Row;

use super::{Store, StoreError};
use crate::protocol::Message;

/// Columns of a message joined with its sender, in the order `message()` reads them.
const MESSAGE_COLS: &str = "m.id, m.channel_id, m.seq, m.sender_id, u.username, m.content, \
                            m.reply_to, m.client_msg_id, m.created_at";

fn message(r: &Row) -> Message {
    Message {
        id: r.get(0),
        channel_id: r.get(1),
        seq: r.get(2),
        sender_id: r.get(3),
        sender: r.get(4),
        content: r.get(5),
        reply_to: r.get(6),
        client_msg_id: r.get(7),
        created_at: r.get(8),
    }
}

/// A validated send.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub channel_id: i64,
    pub sender_id: i64,
    pub content: String,
    pub client_msg_id: Option<String>,
    /// The `seq` of an earlier message of the same channel.
    pub reply_to: Option<i64>,
}

/// What became of one send of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Stored now: publish it.
    Stored(Message),
    /// The same sender already stored this `client_msg_id` in this channel: the original.
    Duplicate(Message),
    /// No such channel.
    NoChannel,
    /// The sender is not a member of the channel.
    NotMember,
    /// `reply_to` names no message of the channel.
    BadReplyTo,
}

/// A page of history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    pub messages: Vec<Message>,
    /// The cursor for the next page in the same direction, or `None` at the end.
    pub next: Option<i64>,
}

impl Store {
    /// Stores one message; see [`Store::send_batch`].
    pub async fn send(&self, msg: NewMessage) -> Result<SendOutcome, StoreError> {
        let mut out = self.send_batch(std::slice::from_ref(&msg)).await?;
        out.pop()
            .ok_or_else(|| StoreError::Unexpected(anyhow::anyhow!("empty batch result")))
    }

    /// Stores a batch of messages in one transaction (one commit, one fsync) and returns one
    /// outcome per input, in input order. Either every `Stored` message is committed or the
    /// call fails and none is.
    ///
    /// The whole batch is one call of the SQL function `send_messages` (migration 0003) in
    /// autocommit mode: one round trip, and the rows arrive only after the commit (the reply
    /// ends with ReadyForQuery, sent after the WAL flush). Channel rows are locked in id order
    /// and seqs are assigned from `channels.last_seq` under that lock, in input order. The
    /// function checks channels and membership for the whole batch in one statement, inserts
    /// the new rows in one more, and builds the reply from the inputs; a `client_msg_id`
    /// already stored (or twice in the batch) is found by the insert itself (the unique index),
    /// which then rolls back and lets migration 0002's per-input algorithm
    /// (`send_messages_exact`) return the originals; it also decides batches with a bad
    /// `reply_to`. A single message takes scalar statements with `ON CONFLICT DO NOTHING`.
    pub async fn send_batch(&self, batch: &[NewMessage]) -> Result<Vec<SendOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let n = batch.len();
        let (mut c, mut s, mut b, mut r, mut k) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for m in batch {
            c.push(m.channel_id);
            s.push(m.sender_id);
            b.push(m.content.as_str());
            r.push(m.reply_to);
            k.push(m.client_msg_id.as_deref());
        }
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT outcome, id, channel_id, seq, sender_id, sender, content, reply_to, \
                        client_msg_id, created_at \
                 FROM send_messages($1::int8[], $2::int8[], $3::text[], $4::int8[], $5::text[])",
            )
            .await?;
        let rows = client.query(&stmt, &[&c, &s, &b, &r, &k]).await?;
        if rows.len() != n {
            return Err(StoreError::Unexpected(anyhow::anyhow!(
                "send_messages returned {} rows for {n} sends",
                rows.len()
            )));
        }
        rows.iter()
            .map(|row| {
                let code: i16 = row.get(0);
                let msg = || -> Result<Message, StoreError> {
                    let id: Option<i64> = row.get(1);
                    let id = id.ok_or_else(|| {
                        StoreError::Unexpected(anyhow::anyhow!("stored message not returned"))
                    })?;
                    Ok(Message {
                        id,
                        channel_id: row.get(2),
                        seq: row.get(3),
                        sender_id: row.get(4),
                        sender: row.get(5),
                        content: row.get(6),
                        reply_to: row.get(7),
                        client_msg_id: row.get(8),
                        created_at: row.get(9),
                    })
                };
                Ok(match code {
                    0 => SendOutcome::Stored(msg()?),
                    1 => SendOutcome::Duplicate(msg()?),
                    2 => SendOutcome::NoChannel,
                    3 => SendOutcome::NotMember,
                    4 => SendOutcome::BadReplyTo,
                    other => {
                        return Err(StoreError::Unexpected(anyhow::anyhow!(
                            "send_messages outcome {other}"
                        )))
                    }
                })
            })
            .collect()
    }

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
        let c = self.client().await?;
        let upper = before.unwrap_or(i64::MAX);
        let fetch = limit + 1;
        let mut messages: Vec<Message> = if let Some(after) = after {
            let q = c
                .prepare_cached(&format!(
                    "SELECT {MESSAGE_COLS} FROM messages m JOIN users u ON u.id = m.sender_id
                     WHERE m.channel_id = $1 AND m.seq > $2 AND m.seq < $3 ORDER BY m.seq LIMIT $4"
                ))
                .await?;
            c.query(&q, &[&channel_id, &after, &upper, &fetch])
                .await?
                .iter()
                .map(message)
                .collect()
        } else {
            let q = c
                .prepare_cached(&format!(
                    "SELECT {MESSAGE_COLS} FROM messages m JOIN users u ON u.id = m.sender_id
                     WHERE m.channel_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3"
                ))
                .await?;
            c.query(&q, &[&channel_id, &upper, &fetch])
                .await?
                .iter()
                .map(message)
                .collect()
        };
        let more = messages.len() as i64 > limit;
        messages.truncate(limit.max(0) as usize);
        let next = if more {
            messages.last().map(|m| m.seq)
        } else {
            None
        };
        Ok(History { messages, next })
    }

    /// Messages of the channel with `after < seq <= upto`, ascending, at most `limit`: used to
    /// fill holes and to replay on `resume`.
    pub async fn messages_between(
        &self,
        channel_id: i64,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<Message>, StoreError> {
        let c = self.client().await?;
        let q = c
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLS} FROM messages m JOIN users u ON u.id = m.sender_id
                 WHERE m.channel_id = $1 AND m.seq > $2 AND m.seq <= $3 ORDER BY m.seq LIMIT $4"
            ))
            .await?;
        Ok(c.query(&q, &[&channel_id, &after, &upto, &limit])
            .await?
            .iter()
            .map(message)
            .collect())
    }

    /// `last_seq` of each channel among `ids`.
    pub async fn last_seqs(&self, ids: &[i64]) -> Result<HashMap<i64, i64>, StoreError> {
        let c = self.client().await?;
        let q = c
            .prepare_cached("SELECT id, last_seq FROM channels WHERE id = ANY($1)")
            .await?;
        Ok(c.query(&q, &[&ids])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }
}

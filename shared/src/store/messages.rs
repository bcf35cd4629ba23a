//! Sending and reading messages. A batch of sends is one transaction (one call of the SQL
//! function `send_messages`, migration 0003): channel rows are locked in id order, `seq` is
//! assigned from `channels.last_seq` under that lock (gap-free, SPEC 5.2), and a
//! `client_msg_id` already stored returns the original message (SPEC 5.3).

use std::collections::HashMap;

use tokio_postgres::Row;

use super::attachments::{attachments, attachments_col};
use super::{Store, StoreError};
use crate::protocol::Message;

/// Columns of a message joined with its sender, in the order `message()` reads them.
pub(super) const MESSAGE_COLS: &str = concat!(
    "m.id, m.channel_id, m.seq, m.sender_id, u.username, \
     m.content, m.reply_to, m.client_msg_id, m.created_at, m.edited_at, \
     m.deleted_at IS NOT NULL, m.thread_root, m.reply_count, \
     m.last_reply_at, CASE WHEN strpos(m.content, '@') > 0 THEN \
     ARRAY(SELECT mm.user_id FROM message_mentions mm \
           WHERE mm.channel_id = m.channel_id \
             AND mm.message_seq = m.seq ORDER BY mm.user_id) END, ",
    attachments_col!()
);

/// A message row read with [`MESSAGE_COLS`], in its current state (reactions are read apart).
pub(super) fn message(r: &Row) -> Message {
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
        edited_at: r.get(9),
        deleted: r.get(10),
        reactions: Vec::new(),
        thread_root: r.get(11),
        reply_count: r.get(12),
        last_reply_at: r.get(13),
        mentions: r.get::<_, Option<Vec<i64>>>(14).unwrap_or_default(),
        attachments: attachments(r.get(15)),
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
    /// Ids of attachments the sender uploaded to the channel (checked before), in order.
    pub attachments: Vec<String>,
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
        let mut client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT outcome, id, channel_id, seq, sender_id, sender, content, reply_to, \
                        client_msg_id, created_at \
                 FROM send_messages($1::int8[], $2::int8[], $3::text[], $4::int8[], $5::text[])",
            )
            .await?;
        let rows = if batch.iter().all(|m| m.attachments.is_empty()) {
            client.query(&stmt, &[&c, &s, &b, &r, &k]).await?
        } else {
            // The messages and their attachments' links commit together: one transaction
            // (only for a batch that carries attachments; the others stay one round trip).
            let tx = client.transaction().await?;
            let rows = tx.query(&stmt, &[&c, &s, &b, &r, &k]).await?;
            link_attachments(&tx, batch, &rows).await?;
            tx.commit().await?;
            rows
        };
        if rows.len() != n {
            return Err(StoreError::Unexpected(anyhow::anyhow!(
                "send_messages returned {} rows for {n} sends",
                rows.len()
            )));
        }
        let mut out = rows
            .iter()
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
                        edited_at: None,
                        deleted: false,
                        reactions: Vec::new(),
                        thread_root: None,
                        reply_count: 0,
                        last_reply_at: None,
                        mentions: Vec::new(),
                        attachments: Vec::new(),
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
            .collect::<Result<Vec<_>, _>>()?;
        self.read_back(&client, batch, &mut out).await?;
        Ok(out)
    }

    /// Fills in what the insert's triggers and links derive, for the messages just stored (or
    /// found stored) that have any: `thread_root` of a reply, `mentions` of a content with an
    /// `@`, the `attachments` of a send that carried some. One query, only for a batch holding
    /// such messages, so the published `message` frame carries them.
    async fn read_back(
        &self,
        client: &deadpool_postgres::Object,
        batch: &[NewMessage],
        out: &mut [SendOutcome],
    ) -> Result<(), StoreError> {
        let mut derived: Vec<&mut Message> = out
            .iter_mut()
            .zip(batch)
            .filter_map(|(o, input)| match o {
                SendOutcome::Stored(m) | SendOutcome::Duplicate(m)
                    if m.reply_to.is_some()
                        || m.content.contains('@')
                        || !input.attachments.is_empty() =>
                {
                    Some(m)
                }
                _ => None,
            })
            .collect();
        if derived.is_empty() {
            return Ok(());
        }
        let c: Vec<i64> = derived.iter().map(|m| m.channel_id).collect();
        let s: Vec<i64> = derived.iter().map(|m| m.seq).collect();
        let q = client
            .prepare_cached(concat!(
                // A per-row primary-key lookup (LIMIT 1, as in send_messages), not a join that
                // could scan every partition.
                "SELECT (SELECT m.thread_root FROM messages m
                          WHERE m.channel_id = k.c AND m.seq = k.s LIMIT 1),
                        ARRAY(SELECT mm.user_id FROM message_mentions mm
                               WHERE mm.channel_id = k.c AND mm.message_seq = k.s
                               ORDER BY mm.user_id),
                        (SELECT ",
                attachments_col!(),
                " FROM messages m WHERE m.channel_id = k.c AND m.seq = k.s LIMIT 1)
                 FROM unnest($1::int8[], $2::int8[]) WITH ORDINALITY AS k(c, s, n)
                 ORDER BY k.n"
            ))
            .await?;
        let rows = client.query(&q, &[&c, &s]).await?;
        for (m, r) in derived.iter_mut().zip(&rows) {
            m.thread_root = r.get(0);
            m.mentions = r.get(1);
            m.attachments = attachments(r.get(2));
        }
        Ok(())
    }

    /// Messages of the channel with `after < seq <= upto`, ascending, at most `limit` (the
    /// messages only; [`Store::log_between`] reads every entry of the log).
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

/// Links the attachments of the sends `send_messages` stored now (outcome 0) to their
/// messages, in the send's transaction. A duplicate keeps the links of its original.
async fn link_attachments(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &[NewMessage],
    rows: &[Row],
) -> Result<(), StoreError> {
    let (mut c, mut s, mut p, mut a) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (m, row) in batch.iter().zip(rows) {
        if row.get::<_, i16>(0) != 0 {
            continue;
        }
        let seq: Option<i64> = row.get(3);
        let Some(seq) = seq else { continue };
        for (i, id) in m.attachments.iter().enumerate() {
            c.push(m.channel_id);
            s.push(seq);
            p.push(i as i16);
            a.push(id.as_str());
        }
    }
    if a.is_empty() {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO message_attachments (channel_id, message_seq, position, attachment_id)
         SELECT * FROM unnest($1::int8[], $2::int8[], $3::int2[], $4::text[])",
        &[&c, &s, &p, &a],
    )
    .await?;
    // The flag reads look at first (`attachments_col`); one row per message, by primary key.
    tx.execute(
        "UPDATE messages m SET has_attachments = true
           FROM (SELECT DISTINCT * FROM unnest($1::int8[], $2::int8[])) k(c, s)
          WHERE m.channel_id = k.c AND m.seq = k.s",
        &[&c, &s],
    )
    .await?;
    Ok(())
}

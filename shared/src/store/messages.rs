//! Sending and reading messages. A batch of sends is one transaction: channel rows are locked
//! in id order, `seq` is assigned from `channels.last_seq` under that lock (gap-free, SPEC 5.2),
//! and a `client_msg_id` already stored returns the original message (SPEC 5.3).

use std::collections::{HashMap, HashSet};

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

/// Where a send of the batch stands while the transaction runs.
enum Slot {
    Done(SendOutcome),
    /// Index into the rows being inserted.
    Insert(usize),
    /// Same key as an earlier send of this batch: gets the same message as a duplicate.
    SameAs(usize),
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
    pub async fn send_batch(&self, batch: &[NewMessage]) -> Result<Vec<SendOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await?;

        // 1. Lock the channels, in id order so concurrent batches cannot deadlock.
        let mut channel_ids: Vec<i64> = batch.iter().map(|m| m.channel_id).collect();
        channel_ids.sort_unstable();
        channel_ids.dedup();
        let lock = tx
            .prepare_cached(
                "SELECT id, last_seq FROM channels WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            )
            .await?;
        let mut last_seq: HashMap<i64, i64> = tx
            .query(&lock, &[&channel_ids])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();

        // 2. Membership of each sender.
        let (mc, mu): (Vec<i64>, Vec<i64>) =
            batch.iter().map(|m| (m.channel_id, m.sender_id)).unzip();
        let members_q = tx
            .prepare_cached(
                "SELECT cm.channel_id, cm.user_id FROM channel_members cm
                 JOIN unnest($1::int8[], $2::int8[]) AS k(c, u) ON cm.channel_id = k.c AND cm.user_id = k.u",
            )
            .await?;
        let members: HashSet<(i64, i64)> = tx
            .query(&members_q, &[&mc, &mu])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();

        // 3. Messages already stored under these client_msg_ids. Read after the channel lock,
        //    so a concurrent send of the same key has committed and is seen here.
        let keyed: Vec<&NewMessage> = batch.iter().filter(|m| m.client_msg_id.is_some()).collect();
        let mut existing: HashMap<(i64, i64, String), Message> = HashMap::new();
        if !keyed.is_empty() {
            let kc: Vec<i64> = keyed.iter().map(|m| m.channel_id).collect();
            let ks: Vec<i64> = keyed.iter().map(|m| m.sender_id).collect();
            let kk: Vec<&str> = keyed
                .iter()
                .filter_map(|m| m.client_msg_id.as_deref())
                .collect();
            let q = tx
                .prepare_cached(&format!(
                    "SELECT {MESSAGE_COLS} FROM messages m JOIN users u ON u.id = m.sender_id
                     JOIN unnest($1::int8[], $2::int8[], $3::text[]) AS k(c, s, cm)
                       ON m.channel_id = k.c AND m.sender_id = k.s AND m.client_msg_id = k.cm"
                ))
                .await?;
            for r in tx.query(&q, &[&kc, &ks, &kk]).await? {
                let m = message(&r);
                let key = (
                    m.channel_id,
                    m.sender_id,
                    m.client_msg_id.clone().unwrap_or_default(),
                );
                existing.insert(key, m);
            }
        }

        // 4. Assign seqs in input order.
        let mut slots = Vec::with_capacity(batch.len());
        let mut seen: HashMap<(i64, i64, &str), usize> = HashMap::new();
        let (mut ic, mut iq, mut is, mut ib, mut ir, mut ik) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for m in batch {
            let Some(last) = last_seq.get_mut(&m.channel_id) else {
                slots.push(Slot::Done(SendOutcome::NoChannel));
                continue;
            };
            if !members.contains(&(m.channel_id, m.sender_id)) {
                slots.push(Slot::Done(SendOutcome::NotMember));
                continue;
            }
            if let Some(k) = m.client_msg_id.as_deref() {
                if let Some(orig) = existing.get(&(m.channel_id, m.sender_id, k.to_owned())) {
                    slots.push(Slot::Done(SendOutcome::Duplicate(orig.clone())));
                    continue;
                }
                if let Some(&i) = seen.get(&(m.channel_id, m.sender_id, k)) {
                    slots.push(Slot::SameAs(i));
                    continue;
                }
            }
            if let Some(r) = m.reply_to {
                if r < 1 || r > *last {
                    slots.push(Slot::Done(SendOutcome::BadReplyTo));
                    continue;
                }
            }
            *last += 1;
            if let Some(k) = m.client_msg_id.as_deref() {
                seen.insert((m.channel_id, m.sender_id, k), ic.len());
            }
            slots.push(Slot::Insert(ic.len()));
            ic.push(m.channel_id);
            iq.push(*last);
            is.push(m.sender_id);
            ib.push(m.content.as_str());
            ir.push(m.reply_to);
            ik.push(m.client_msg_id.as_deref());
        }

        // 5. Insert, bump last_seq, and read back ids, timestamps and sender names.
        let mut stored: Vec<Option<Message>> = vec![None; ic.len()];
        if !ic.is_empty() {
            let insert = tx
                .prepare_cached(
                    "INSERT INTO messages (id, channel_id, seq, sender_id, content, reply_to, client_msg_id)
                     SELECT next_message_id(), k.c, k.q, k.s, k.b, k.r, k.k
                     FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::text[], $5::int8[], $6::text[])
                          WITH ORDINALITY AS k(c, q, s, b, r, k, n)
                     ORDER BY k.n
                     RETURNING channel_id, seq, id, created_at",
                )
                .await?;
            let rows = tx.query(&insert, &[&ic, &iq, &is, &ib, &ir, &ik]).await?;
            let index: HashMap<(i64, i64), usize> = ic
                .iter()
                .zip(&iq)
                .enumerate()
                .map(|(i, (c, q))| ((*c, *q), i))
                .collect();
            let mut senders: Vec<i64> = is.clone();
            senders.sort_unstable();
            senders.dedup();
            let names_q = tx
                .prepare_cached("SELECT id, username FROM users WHERE id = ANY($1)")
                .await?;
            let names: HashMap<i64, String> = tx
                .query(&names_q, &[&senders])
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            for r in rows {
                let (c, q): (i64, i64) = (r.get(0), r.get(1));
                let Some(&i) = index.get(&(c, q)) else {
                    continue;
                };
                stored[i] = Some(Message {
                    id: r.get(2),
                    channel_id: c,
                    seq: q,
                    sender_id: is[i],
                    sender: names.get(&is[i]).cloned().unwrap_or_default(),
                    content: ib[i].to_owned(),
                    reply_to: ir[i],
                    client_msg_id: ik[i].map(str::to_owned),
                    created_at: r.get(3),
                });
            }
            let (uc, uq): (Vec<i64>, Vec<i64>) = last_seq.iter().map(|(c, q)| (*c, *q)).unzip();
            let bump = tx
                .prepare_cached(
                    "UPDATE channels c SET last_seq = k.q
                     FROM unnest($1::int8[], $2::int8[]) AS k(id, q)
                     WHERE c.id = k.id AND c.last_seq <> k.q",
                )
                .await?;
            tx.execute(&bump, &[&uc, &uq]).await?;
        }
        tx.commit().await?;

        let lost = || StoreError::Unexpected(anyhow::anyhow!("inserted row not returned"));
        slots
            .into_iter()
            .map(|s| match s {
                Slot::Done(o) => Ok(o),
                Slot::Insert(i) => stored[i].clone().map(SendOutcome::Stored).ok_or_else(lost),
                Slot::SameAs(i) => stored[i]
                    .clone()
                    .map(SendOutcome::Duplicate)
                    .ok_or_else(lost),
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

//! Reading a channel's log: every entry (messages in their current state, and events) by seq
//! range, for gap fills and `resume` replays; and the reactions messages show in history.

use std::collections::HashMap;

use super::events::{event, EVENT_COLS};
use super::messages::{message, MESSAGE_COLS};
use super::{Store, StoreError};
use crate::protocol::{Event, Message, Reaction, ServerFrame};

/// One entry of a channel's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Message(Message),
    Event(Event),
}

impl Entry {
    pub fn seq(&self) -> i64 {
        match self {
            Entry::Message(m) => m.seq,
            Entry::Event(e) => e.seq,
        }
    }

    /// The frame a socket gets for it.
    pub fn into_frame(self) -> ServerFrame {
        match self {
            Entry::Message(message) => ServerFrame::Message { message },
            Entry::Event(event) => ServerFrame::Event { event },
        }
    }
}

impl Store {
    /// Every entry of the channel's log with `after < seq <= upto`, ascending, at most
    /// `limit`: messages (in their current state) and events, merged by seq. Used to fill
    /// holes and to replay on `resume`. Both reads are primary-key range scans, pipelined on
    /// one connection.
    pub async fn log_between(
        &self,
        channel_id: i64,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<Entry>, StoreError> {
        let c = self.client().await?;
        let messages = format!(
            "SELECT {MESSAGE_COLS} FROM messages m JOIN users u ON u.id = m.sender_id
             WHERE m.channel_id = $1 AND m.seq > $2 AND m.seq <= $3 ORDER BY m.seq LIMIT $4"
        );
        let events = format!(
            "SELECT {EVENT_COLS} FROM channel_events e
             WHERE e.channel_id = $1 AND e.seq > $2 AND e.seq <= $3 ORDER BY e.seq LIMIT $4"
        );
        let (qm, qe) = tokio::try_join!(c.prepare_cached(&messages), c.prepare_cached(&events))?;
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&channel_id, &after, &upto, &limit];
        let (ms, es) = tokio::try_join!(c.query(&qm, &args), c.query(&qe, &args))?;
        let es = es.iter().map(event).collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(ms.len() + es.len());
        let (mut ms, mut es) = (ms.iter().map(message).peekable(), es.into_iter().peekable());
        loop {
            let message_first = match (ms.peek(), es.peek()) {
                (Some(m), Some(e)) => m.seq < e.seq,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            out.extend(if message_first {
                ms.next().map(Entry::Message)
            } else {
                es.next().map(Entry::Event)
            });
        }
        out.truncate(limit.max(0) as usize);
        Ok(out)
    }

    /// The reactions of the channel's messages `seqs` as `viewer` sees them: per message, each
    /// emoji with its count and whether `viewer` reacted, in the order first used.
    pub async fn reactions(
        &self,
        channel_id: i64,
        seqs: &[i64],
        viewer: i64,
    ) -> Result<HashMap<i64, Vec<Reaction>>, StoreError> {
        let mut out: HashMap<i64, Vec<Reaction>> = HashMap::new();
        if seqs.is_empty() {
            return Ok(out);
        }
        let c = self.client().await?;
        let q = c
            .prepare_cached(
                "SELECT message_seq, emoji, count(*), bool_or(user_id = $3)
                 FROM message_reactions WHERE channel_id = $1 AND message_seq = ANY($2)
                 GROUP BY message_seq, emoji ORDER BY message_seq, min(created_at), emoji",
            )
            .await?;
        for r in c.query(&q, &[&channel_id, &seqs, &viewer]).await? {
            out.entry(r.get(0)).or_default().push(Reaction {
                emoji: r.get(1),
                count: r.get(2),
                me: r.get(3),
            });
        }
        Ok(out)
    }
}

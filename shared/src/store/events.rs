//! The channel log beyond messages: a change to a message (edit, delete, reaction) is applied
//! and recorded as a `channel_events` row with the channel's next seq, in one transaction
//! under the channel's row lock (the lock sends take, so the seq stream stays gap-free and
//! in commit order). The log of a channel is `messages` and `channel_events` merged by seq.
//!
//! Who may make which change is decided by the caller (`shared::chat`), on the facts read
//! here under the lock.

use deadpool_postgres::Transaction;
use tokio_postgres::{Row, Statement};

use super::messages::{message, MESSAGE_COLS};
use super::{Store, StoreError};
use crate::protocol::{Change, Event, Message, Role};

/// A change as the caller asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    Edit { content: String },
    Delete,
    React { emoji: String },
    Unreact { emoji: String },
}

/// A validated change to one message.
#[derive(Debug, Clone)]
pub struct NewChange {
    pub channel_id: i64,
    pub user_id: i64,
    pub message_id: i64,
    pub kind: ChangeKind,
    pub client_msg_id: Option<String>,
}

/// What is true when a change is decided, read under the channel's lock.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The channel exists.
    pub channel: bool,
    /// The user's role in it, `None` when not a member.
    pub role: Option<Role>,
    /// The message named, `None` when the channel has none with that id.
    pub message: Option<&'a Message>,
}

/// What a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// Applied and recorded now: publish the event.
    Applied { event: Event, message: Message },
    /// A retry: the event this `client_msg_id` recorded before (not published again), and the
    /// message as it is now.
    Duplicate { event: Event, message: Message },
    /// Nothing to change (the reaction is there already, or is not there; the message is
    /// deleted already): no event, no seq.
    Unchanged { message: Message },
}

pub(super) const EVENT_COLS: &str = "e.channel_id, e.seq, e.message_id, e.message_seq, e.user_id, \
                          e.client_msg_id, e.created_at, e.kind, e.content, e.emoji, e.count, e.at";

pub(super) fn event(r: &Row) -> Result<Event, StoreError> {
    let kind: &str = r.get(7);
    let emoji = || r.get::<_, Option<String>>(9).unwrap_or_default();
    let count = || r.get::<_, Option<i64>>(10).unwrap_or_default();
    let change = match kind {
        "message_edited" => Change::MessageEdited {
            content: r.get::<_, Option<String>>(8).unwrap_or_default(),
            edited_at: r.get::<_, Option<_>>(11).unwrap_or_else(|| r.get(6)),
        },
        "message_deleted" => Change::MessageDeleted {},
        "reaction_added" => Change::ReactionAdded {
            emoji: emoji(),
            count: count(),
        },
        "reaction_removed" => Change::ReactionRemoved {
            emoji: emoji(),
            count: count(),
        },
        "thread_updated" => Change::ThreadUpdated {
            reply_count: count(),
            last_reply_at: r.get::<_, Option<_>>(11).unwrap_or_else(|| r.get(6)),
        },
        other => {
            return Err(StoreError::Unexpected(anyhow::anyhow!(
                "unknown event kind {other:?}"
            )))
        }
    };
    Ok(Event {
        channel_id: r.get(0),
        seq: r.get(1),
        message_id: r.get(2),
        message_seq: r.get(3),
        user_id: r.get(4),
        client_msg_id: r.get(5),
        created_at: r.get(6),
        change,
    })
}

impl Store {
    /// Applies `change` if `allow` agrees, recording its event with the channel's next seq in
    /// the same transaction. The channel row is locked first, so the facts `allow` sees (the
    /// caller's role, the message's sender and state) cannot change before the commit, and a
    /// retry with the same `client_msg_id` finds the event of the first attempt.
    pub async fn apply_change<E: From<StoreError>>(
        &self,
        change: &NewChange,
        allow: impl FnOnce(&Facts<'_>) -> Result<(), E>,
    ) -> Result<ChangeOutcome, E> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(StoreError::from)?;
        let (channel, last_seq, role) = lock_channel(&tx, change).await?;
        if let (Some(_), Some(key)) = (role, &change.client_msg_id) {
            if let Some(event) = recorded(&tx, change, key).await? {
                let message = message_at(&tx, change.channel_id, event.message_seq).await?;
                return Ok(ChangeOutcome::Duplicate { event, message });
            }
        }
        let target = if channel && role.is_some() {
            message_by_id(&tx, change.channel_id, change.message_id).await?
        } else {
            None
        };
        allow(&Facts {
            channel,
            role,
            message: target.as_ref(),
        })?;
        let Some(mut message) = target else {
            return Err(StoreError::Unexpected(anyhow::anyhow!(
                "change allowed without a message"
            ))
            .into());
        };
        let Some(applied) = apply(&tx, change, &mut message).await? else {
            return Ok(ChangeOutcome::Unchanged { message });
        };
        let by = (
            change.channel_id,
            change.user_id,
            change.client_msg_id.as_deref(),
        );
        let event = record(&tx, by, &message, last_seq + 1, applied).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(ChangeOutcome::Applied { event, message })
    }

    /// Records a `thread_updated` event for the thread whose root is message `root`: its
    /// counters as they are now (the replies' inserts keep them), with the channel's next seq.
    /// `user_id` is the sender of the reply that caused it. `None` when `root` is no message
    /// with replies.
    pub async fn record_thread_update(
        &self,
        channel_id: i64,
        root: i64,
        user_id: i64,
    ) -> Result<Option<Event>, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let Some(ch) = tx
            .query_opt(
                &prepared(
                    &tx,
                    "SELECT last_seq FROM channels WHERE id = $1 FOR UPDATE",
                )
                .await?,
                &[&channel_id],
            )
            .await?
        else {
            return Ok(None);
        };
        let last_seq: i64 = ch.get(0);
        let root = message_at(&tx, channel_id, root).await?;
        let Some(last_reply_at) = root.last_reply_at else {
            return Ok(None);
        };
        let applied = Change::ThreadUpdated {
            reply_count: root.reply_count,
            last_reply_at,
        };
        let by = (channel_id, user_id, None);
        let event = record(&tx, by, &root, last_seq + 1, applied).await?;
        tx.commit().await?;
        Ok(Some(event))
    }
}

/// `sql` through the connection's statement cache: a change runs ten-odd statements, each
/// parsed and planned once per pooled connection rather than once per change.
async fn prepared(tx: &Transaction<'_>, sql: &str) -> Result<Statement, StoreError> {
    Ok(tx.prepare_cached(sql).await?)
}

/// Locks the channel row (as sends do) and reads the caller's role: `(exists, last_seq, role)`.
async fn lock_channel(
    tx: &Transaction<'_>,
    change: &NewChange,
) -> Result<(bool, i64, Option<Role>), StoreError> {
    let Some(ch) = tx
        .query_opt(
            &prepared(tx, "SELECT last_seq FROM channels WHERE id = $1 FOR UPDATE").await?,
            &[&change.channel_id],
        )
        .await?
    else {
        return Ok((false, 0, None));
    };
    let role = tx
        .query_opt(
            &prepared(
                tx,
                "SELECT role FROM channel_members WHERE channel_id = $1 AND user_id = $2",
            )
            .await?,
            &[&change.channel_id, &change.user_id],
        )
        .await?
        .map(|r| Role::parse(r.get(0)));
    Ok((true, ch.get(0), role))
}

/// The event the user recorded under `key` in the channel, if any.
async fn recorded(
    tx: &Transaction<'_>,
    change: &NewChange,
    key: &str,
) -> Result<Option<Event>, StoreError> {
    let q = format!(
        "SELECT {EVENT_COLS} FROM channel_events e
         WHERE e.channel_id = $1 AND e.user_id = $2 AND e.client_msg_id = $3"
    );
    tx.query_opt(
        &prepared(tx, &q).await?,
        &[&change.channel_id, &change.user_id, &key],
    )
    .await?
    .map(|r| event(&r))
    .transpose()
}

async fn message_by_id(
    tx: &Transaction<'_>,
    channel_id: i64,
    id: i64,
) -> Result<Option<Message>, StoreError> {
    let q = format!(
        "SELECT {MESSAGE_COLS} FROM messages m JOIN users u ON u.id = m.sender_id
         WHERE m.channel_id = $1 AND m.id = $2"
    );
    Ok(tx
        .query_opt(&prepared(tx, &q).await?, &[&channel_id, &id])
        .await?
        .map(|r| message(&r)))
}

async fn message_at(
    tx: &Transaction<'_>,
    channel_id: i64,
    seq: i64,
) -> Result<Message, StoreError> {
    let q = format!(
        "SELECT {MESSAGE_COLS} FROM messages m JOIN users u ON u.id = m.sender_id
         WHERE m.channel_id = $1 AND m.seq = $2"
    );
    Ok(message(
        &tx.query_one(&prepared(tx, &q).await?, &[&channel_id, &seq])
            .await?,
    ))
}

/// Applies the change to the message's state (and `message`); `None` when it changes nothing.
async fn apply(
    tx: &Transaction<'_>,
    change: &NewChange,
    message: &mut Message,
) -> Result<Option<Change>, StoreError> {
    let (ch, seq) = (change.channel_id, message.seq);
    Ok(Some(match &change.kind {
        ChangeKind::Edit { content } => {
            let r = tx
                .query_one(
                    &prepared(
                        tx,
                        "UPDATE messages SET content = $3, edited_at = now()
                     WHERE channel_id = $1 AND seq = $2 RETURNING edited_at",
                    )
                    .await?,
                    &[&ch, &seq, content],
                )
                .await?;
            message.content.clone_from(content);
            message.edited_at = r.get(0);
            // The content's mentions, as the update's trigger left them.
            message.mentions = tx
                .query_one(
                    &prepared(
                        tx,
                        "SELECT ARRAY(SELECT user_id FROM message_mentions
                                   WHERE channel_id = $1 AND message_seq = $2 ORDER BY user_id)",
                    )
                    .await?,
                    &[&ch, &seq],
                )
                .await?
                .get(0);
            Change::MessageEdited {
                content: content.clone(),
                edited_at: r.get(0),
            }
        }
        ChangeKind::Delete => {
            if message.deleted {
                return Ok(None);
            }
            // The content leaves storage: the message row, its edits, and its reactions.
            tx.execute(
                &prepared(
                    tx,
                    "UPDATE messages SET content = '', deleted_at = now()
                 WHERE channel_id = $1 AND seq = $2",
                )
                .await?,
                &[&ch, &seq],
            )
            .await?;
            tx.execute(
                &prepared(
                    tx,
                    "UPDATE channel_events SET content = NULL
                 WHERE channel_id = $1 AND message_seq = $2 AND content IS NOT NULL",
                )
                .await?,
                &[&ch, &seq],
            )
            .await?;
            tx.execute(
                &prepared(
                    tx,
                    "DELETE FROM message_reactions WHERE channel_id = $1 AND message_seq = $2",
                )
                .await?,
                &[&ch, &seq],
            )
            .await?;
            message.content.clear();
            message.mentions.clear();
            message.deleted = true;
            Change::MessageDeleted {}
        }
        ChangeKind::React { emoji } | ChangeKind::Unreact { emoji } => {
            let add = matches!(change.kind, ChangeKind::React { .. });
            let sql = if add {
                "INSERT INTO message_reactions (channel_id, message_seq, emoji, user_id)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM message_reactions
                 WHERE channel_id = $1 AND message_seq = $2 AND emoji = $3 AND user_id = $4"
            };
            if tx
                .execute(
                    &prepared(tx, sql).await?,
                    &[&ch, &seq, emoji, &change.user_id],
                )
                .await?
                == 0
            {
                return Ok(None);
            }
            let count: i64 = tx
                .query_one(
                    &prepared(
                        tx,
                        "SELECT count(*) FROM message_reactions
                     WHERE channel_id = $1 AND message_seq = $2 AND emoji = $3",
                    )
                    .await?,
                    &[&ch, &seq, emoji],
                )
                .await?
                .get(0);
            let emoji = emoji.clone();
            if add {
                Change::ReactionAdded { emoji, count }
            } else {
                Change::ReactionRemoved { emoji, count }
            }
        }
    }))
}

/// Records the event at `seq` and moves the channel's `last_seq` to it; `by` is the channel,
/// the user who made the change and its idempotency key.
async fn record(
    tx: &Transaction<'_>,
    (channel_id, user_id, key): (i64, i64, Option<&str>),
    message: &Message,
    seq: i64,
    applied: Change,
) -> Result<Event, StoreError> {
    let (content, emoji, count, at) = match &applied {
        Change::MessageEdited { content, edited_at } => {
            (Some(content.as_str()), None, None, Some(*edited_at))
        }
        Change::MessageDeleted {} => (None, None, None, None),
        Change::ReactionAdded { emoji, count } | Change::ReactionRemoved { emoji, count } => {
            (None, Some(emoji.as_str()), Some(*count), None)
        }
        Change::ThreadUpdated {
            reply_count,
            last_reply_at,
        } => (None, None, Some(*reply_count), Some(*last_reply_at)),
    };
    let r = tx.query_one(&prepared(tx, "INSERT INTO channel_events (channel_id, seq, kind, message_id, message_seq, user_id,
                                         content, emoji, count, at, client_msg_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING created_at").await?,
            &[
                &channel_id,
                &seq,
                &applied.kind(),
                &message.id,
                &message.seq,
                &user_id,
                &content,
                &emoji,
                &count,
                &at,
                &key,
            ],
        )
        .await?;
    tx.execute(
        &prepared(tx, "UPDATE channels SET last_seq = $2 WHERE id = $1").await?,
        &[&channel_id, &seq],
    )
    .await?;
    Ok(Event {
        channel_id,
        seq,
        message_id: message.id,
        message_seq: message.seq,
        user_id,
        client_msg_id: key.map(str::to_owned),
        created_at: r.get(0),
        change: applied,
    })
}

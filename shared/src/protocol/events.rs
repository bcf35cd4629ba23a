//! The channel log's entries other than messages: edits, deletes, reactions and thread
//! counters, each with its own `seq` in the channel's stream, and the reactions a message
//! shows in history.
//!
//! An event carries the absolute state it leaves behind (the new content, the emoji's count
//! after the change, the thread's reply count), never a delta: a client that receives a message in its current state (a
//! gap fill or a `resume` reads messages as they are now) and then the events after it ends in
//! the right state whatever it applied before.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::id_string;

/// One sequenced change to a message of a channel (`{"type":"event","event":{...}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub channel_id: i64,
    /// Its place in the channel's seq stream, shared with messages.
    pub seq: i64,
    /// The message changed (a string on the wire, like every message id).
    #[serde(with = "id_string")]
    pub message_id: i64,
    pub message_seq: i64,
    /// Who made the change.
    pub user_id: i64,
    /// The idempotency key the change was made with.
    pub client_msg_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// What changed; `kind` on the wire.
    #[serde(flatten)]
    pub change: Change,
}

/// What an [`Event`] changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// The sender replaced the content (`""` in a replay once the message is deleted).
    MessageEdited {
        content: String,
        edited_at: DateTime<Utc>,
    },
    /// The message became a tombstone: its content is gone from storage.
    MessageDeleted {},
    /// `user_id` reacted with `emoji`; `count` users now have.
    ReactionAdded { emoji: String, count: i64 },
    /// `user_id` took back `emoji`; `count` users still have it.
    ReactionRemoved { emoji: String, count: i64 },
    /// The message is a thread's root and a reply by `user_id` came: the root's counters now.
    ThreadUpdated {
        reply_count: i64,
        last_reply_at: DateTime<Utc>,
    },
}

impl Change {
    /// The name stored in `channel_events.kind` (and written as `kind` on the wire).
    pub fn kind(&self) -> &'static str {
        match self {
            Change::MessageEdited { .. } => "message_edited",
            Change::MessageDeleted {} => "message_deleted",
            Change::ReactionAdded { .. } => "reaction_added",
            Change::ReactionRemoved { .. } => "reaction_removed",
            Change::ThreadUpdated { .. } => "thread_updated",
        }
    }
}

/// One emoji on a message in history: how many users reacted with it, and whether the caller
/// is one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub emoji: String,
    pub count: i64,
    pub me: bool,
}

/// A member's role in a channel. The creator of a group channel is its owner; owners and
/// admins moderate (they may delete anyone's message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    pub fn parse(s: &str) -> Role {
        match s {
            "owner" => Role::Owner,
            "admin" => Role::Admin,
            _ => Role::Member,
        }
    }

    /// The name stored in `channel_members.role` (and written on the wire).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// Owners and admins.
    pub fn moderates(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_flat_with_its_kind_and_a_string_message_id() {
        let e = Event {
            channel_id: 5,
            seq: 43,
            message_id: 9_007_199_254_740_993,
            message_seq: 42,
            user_id: 1,
            client_msg_id: Some("e-1".into()),
            created_at: DateTime::from_timestamp(0, 0).unwrap_or_default(),
            change: Change::ReactionAdded {
                emoji: "👍".into(),
                count: 2,
            },
        };
        let v = serde_json::to_value(&e).unwrap_or_default();
        assert_eq!(v["kind"], "reaction_added");
        assert_eq!(v["message_id"], "9007199254740993");
        assert_eq!(v["count"], 2);
        let back: Event = serde_json::from_value(v).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(back, e);
        let deleted = Event {
            change: Change::MessageDeleted {},
            ..e
        };
        let v = serde_json::to_value(&deleted).unwrap_or_default();
        assert_eq!(v["kind"], "message_deleted");
        let back: Event = serde_json::from_value(v).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(back, deleted);
    }
}

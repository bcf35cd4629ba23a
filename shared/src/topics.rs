//! Redis pub/sub topics (SPEC section 1) as one type: every name is built by its `Display`
//! and read back by [`Topic::parse`], nowhere else.

use std::fmt;

/// Name of the topic carrying presence changes between edges.
const PRESENCE: &str = "presence";

/// A topic of the event bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `channel-{id}`: every event of channel `id`.
    Channel(i64),
    /// `user-{id}`: per-user control events (joined/left a channel, new DM).
    User(i64),
    /// `presence`: a user's first socket in the cluster opened or last closed.
    Presence,
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Channel(id) => write!(f, "channel-{id}"),
            Topic::User(id) => write!(f, "user-{id}"),
            Topic::Presence => f.write_str(PRESENCE),
        }
    }
}

impl Topic {
    /// Reads a topic name back; `None` for names that are not ours.
    pub fn parse(name: &str) -> Option<Topic> {
        if name == PRESENCE {
            return Some(Topic::Presence);
        }
        if let Some(id) = name.strip_prefix("channel-") {
            return id.parse().ok().map(Topic::Channel);
        }
        if let Some(id) = name.strip_prefix("user-") {
            return id.parse().ok().map(Topic::User);
        }
        None
    }

    /// The topic name.
    pub fn name(&self) -> String {
        self.to_string()
    }

    /// Whether the topic goes through sharded pub/sub (`SPUBLISH` / `SSUBSCRIBE`) on a Redis
    /// Cluster: channel and user topics do, spread over the shards by their names' slots.
    /// `presence` stays classic: every edge listens to it, so a cluster-wide broadcast is what
    /// it needs, and the presence script publishes it next to its keys.
    pub fn sharded(&self) -> bool {
        !matches!(self, Topic::Presence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_round_trip() {
        assert_eq!(Topic::Channel(5).name(), "channel-5");
        assert_eq!(Topic::User(7).name(), "user-7");
        assert_eq!(Topic::Presence.name(), "presence");
        for t in [Topic::Channel(5), Topic::User(7), Topic::Presence] {
            assert_eq!(Topic::parse(&t.name()), Some(t));
        }
        assert_eq!(Topic::parse("channel-x"), None);
        assert_eq!(Topic::parse("other"), None);
    }
}

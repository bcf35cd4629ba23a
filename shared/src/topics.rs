//! Redis pub/sub topic names (SPEC section 1) and the presence keys built on them.

/// Topic carrying every event of channel `id`.
pub fn channel(id: i64) -> String {
    format!("channel-{id}")
}

/// Topic carrying per-user control events (joined/left a channel, new DM).
pub fn user(id: i64) -> String {
    format!("user-{id}")
}

/// Parses `channel-{id}` or `user-{id}` back into its kind and id.
pub fn parse(topic: &str) -> Option<Topic> {
    if let Some(id) = topic.strip_prefix("channel-") {
        return id.parse().ok().map(Topic::Channel);
    }
    if let Some(id) = topic.strip_prefix("user-") {
        return id.parse().ok().map(Topic::User);
    }
    None
}

/// A parsed topic name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Channel(i64),
    User(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_round_trip() {
        assert_eq!(channel(5), "channel-5");
        assert_eq!(user(7), "user-7");
        assert_eq!(parse("channel-5"), Some(Topic::Channel(5)));
        assert_eq!(parse("user-7"), Some(Topic::User(7)));
        assert_eq!(parse("channel-x"), None);
        assert_eq!(parse("other"), None);
    }
}

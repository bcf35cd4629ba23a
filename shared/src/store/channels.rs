//! Channels, direct channels, membership and read markers.

use tokio_postgres::Row;

use super::{Store, StoreError};
use crate::protocol::{Channel, ChannelKind, MyChannel, Role, User};

const CHANNEL_COLS: &str = "c.id, c.name, c.kind, c.created_by, c.last_seq, c.created_at";

fn channel(r: &Row) -> Channel {
    let kind: &str = r.get("kind");
    Channel {
        id: r.get("id"),
        name: r.get("name"),
        kind: ChannelKind::parse(kind).unwrap_or(ChannelKind::Group),
        created_by: r.get("created_by"),
        last_seq: r.get("last_seq"),
        created_at: r.get("created_at"),
    }
}

fn my_channel(r: &Row) -> MyChannel {
    let kind: &str = r.get("kind");
    let last_seq: i64 = r.get("last_seq");
    let last_read_seq: i64 = r.get("last_read_seq");
    MyChannel {
        id: r.get("id"),
        name: r.get("name"),
        kind: ChannelKind::parse(kind).unwrap_or(ChannelKind::Group),
        last_seq,
        last_read_seq,
        unread: (last_seq - last_read_seq).max(0),
        mentions: r.get("mentions"),
    }
}

/// Columns of a channel with the member's read state; `c` the channel, `m` the membership.
/// `mentions`: unread messages naming the member, not counting their own.
const MY_CHANNEL_COLS: &str = "c.id, c.name, c.kind, c.last_seq, m.last_read_seq,
    (SELECT count(*) FROM message_mentions mm WHERE mm.user_id = m.user_id
       AND mm.channel_id = c.id AND mm.message_seq > m.last_read_seq
       AND NOT EXISTS (SELECT 1 FROM messages s WHERE s.channel_id = mm.channel_id
                       AND s.seq = mm.message_seq AND s.sender_id = m.user_id)) AS mentions";

/// What a join did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Join {
    NoChannel,
    /// A direct channel the user is not in: not joinable.
    Direct,
    /// Joined now; `last_seq` is exact as of the join.
    Joined(MyChannel),
    /// Already a member.
    Already(MyChannel),
}

/// Result of a get-or-create of a direct channel.
#[derive(Debug, Clone)]
pub struct DirectChannel {
    pub channel: Channel,
    pub created: bool,
}

impl Store {
    /// Creates a group channel with `creator` as its first member and owner.
    pub async fn create_channel(&self, name: &str, creator: i64) -> Result<Channel, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let r = tx
            .query_one(
                &format!(
                    "INSERT INTO channels AS c (kind, name, created_by) VALUES ('group', $1, $2)
                     RETURNING {CHANNEL_COLS}"
                ),
                &[&name, &creator],
            )
            .await?;
        let ch = channel(&r);
        tx.execute(
            "INSERT INTO channel_members (channel_id, user_id, role) VALUES ($1, $2, 'owner')",
            &[&ch.id, &creator],
        )
        .await?;
        tx.commit().await?;
        Ok(ch)
    }

    pub async fn channel(&self, id: i64) -> Result<Option<Channel>, StoreError> {
        let c = self.client().await?;
        let r = c
            .query_opt(
                &format!("SELECT {CHANNEL_COLS} FROM channels c WHERE c.id = $1"),
                &[&id],
            )
            .await?;
        Ok(r.as_ref().map(channel))
    }

    /// Group channels with id greater than `after`, ascending, at most `limit`.
    pub async fn public_channels(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Channel>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {CHANNEL_COLS} FROM channels c
                     WHERE c.kind = 'group' AND c.id > $1 ORDER BY c.id LIMIT $2"
                ),
                &[&after, &limit],
            )
            .await?;
        Ok(rows.iter().map(channel).collect())
    }

    /// The user's channels with read state, ascending by id.
    pub async fn my_channels(&self, user_id: i64) -> Result<Vec<MyChannel>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {MY_CHANNEL_COLS}
                     FROM channel_members m JOIN channels c ON c.id = m.channel_id
                     WHERE m.user_id = $1 ORDER BY c.id"
                ),
                &[&user_id],
            )
            .await?;
        Ok(rows.iter().map(my_channel).collect())
    }

    /// One of the user's channels with read state, or `None` when not a member.
    pub async fn my_channel(
        &self,
        user_id: i64,
        channel_id: i64,
    ) -> Result<Option<MyChannel>, StoreError> {
        let c = self.client().await?;
        let r = c
            .query_opt(
                &format!(
                    "SELECT {MY_CHANNEL_COLS}
                     FROM channel_members m JOIN channels c ON c.id = m.channel_id
                     WHERE m.user_id = $1 AND m.channel_id = $2"
                ),
                &[&user_id, &channel_id],
            )
            .await?;
        Ok(r.as_ref().map(my_channel))
    }

    pub async fn is_member(&self, channel_id: i64, user_id: i64) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let r = c
            .query_opt(
                "SELECT 1 FROM channel_members WHERE channel_id = $1 AND user_id = $2",
                &[&channel_id, &user_id],
            )
            .await?;
        Ok(r.is_some())
    }

    /// Joins a group channel. The channel row is share-locked, so no send commits between
    /// reading `last_seq` and adding the member: every later message has a higher seq and
    /// reaches them.
    pub async fn join(&self, channel_id: i64, user_id: i64) -> Result<Join, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let Some(ch) = tx
            .query_opt(
                "SELECT name, kind, last_seq FROM channels WHERE id = $1 FOR SHARE",
                &[&channel_id],
            )
            .await?
        else {
            return Ok(Join::NoChannel);
        };
        let kind = ChannelKind::parse(ch.get("kind")).unwrap_or(ChannelKind::Group);
        let inserted = kind == ChannelKind::Group
            && tx
                .execute(
                    "INSERT INTO channel_members (channel_id, user_id) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING",
                    &[&channel_id, &user_id],
                )
                .await?
                == 1;
        let read = tx
            .query_opt(
                "SELECT last_read_seq FROM channel_members WHERE channel_id = $1 AND user_id = $2",
                &[&channel_id, &user_id],
            )
            .await?;
        tx.commit().await?;
        let Some(read) = read else {
            return Ok(Join::Direct);
        };
        let last_seq: i64 = ch.get("last_seq");
        let last_read_seq: i64 = read.get(0);
        let my = MyChannel {
            id: channel_id,
            name: ch.get("name"),
            kind,
            last_seq,
            last_read_seq,
            unread: (last_seq - last_read_seq).max(0),
            // Only members are mentioned: none while not one.
            mentions: 0,
        };
        Ok(if inserted {
            Join::Joined(my)
        } else {
            Join::Already(my)
        })
    }

    /// Removes the user from the channel; `true` when they were a member.
    pub async fn leave(&self, channel_id: i64, user_id: i64) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let n = c
            .execute(
                "DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2",
                &[&channel_id, &user_id],
            )
            .await?;
        Ok(n == 1)
    }

    /// Members of the channel, ascending by user id.
    pub async fn members(&self, channel_id: i64) -> Result<Vec<User>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT u.id, u.username, u.created_at
                 FROM channel_members m JOIN users u ON u.id = m.user_id
                 WHERE m.channel_id = $1 ORDER BY u.id",
                &[&channel_id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| User {
                id: r.get("id"),
                username: r.get("username"),
                created_at: r.get("created_at"),
            })
            .collect())
    }

    /// Ids of the channel's members.
    pub async fn member_ids(&self, channel_id: i64) -> Result<Vec<i64>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT user_id FROM channel_members WHERE channel_id = $1 ORDER BY user_id",
                &[&channel_id],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Gets or creates the direct channel of two distinct users; both are members.
    pub async fn direct_channel(
        &self,
        a: i64,
        b: i64,
        name: &str,
    ) -> Result<DirectChannel, StoreError> {
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        let key = dm_key(a, b);
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let inserted = tx
            .query_opt(
                &format!(
                    "INSERT INTO channels AS c (kind, name, created_by, dm_key)
                     VALUES ('direct', $1, $2, $3) ON CONFLICT (dm_key) DO NOTHING
                     RETURNING {CHANNEL_COLS}"
                ),
                &[&name, &a, &key],
            )
            .await?;
        let (ch, created) = match inserted {
            Some(r) => {
                let ch = channel(&r);
                tx.execute(
                    "INSERT INTO channel_members (channel_id, user_id) VALUES ($1, $2), ($1, $3)",
                    &[&ch.id, &lo, &hi],
                )
                .await?;
                (ch, true)
            }
            None => {
                let r = tx
                    .query_one(
                        &format!("SELECT {CHANNEL_COLS} FROM channels c WHERE c.dm_key = $1"),
                        &[&key],
                    )
                    .await?;
                // A participant may have left the direct channel: bring both back.
                let ch = channel(&r);
                tx.execute(
                    "INSERT INTO channel_members (channel_id, user_id) VALUES ($1, $2), ($1, $3)
                     ON CONFLICT DO NOTHING",
                    &[&ch.id, &lo, &hi],
                )
                .await?;
                (ch, false)
            }
        };
        tx.commit().await?;
        Ok(DirectChannel {
            channel: ch,
            created,
        })
    }

    /// The id of the direct channel of `a` and `b`, if they have one.
    pub async fn direct_channel_id(&self, a: i64, b: i64) -> Result<Option<i64>, StoreError> {
        let c = self.client().await?;
        let r = c
            .query_opt(
                "SELECT id FROM channels WHERE dm_key = $1",
                &[&dm_key(a, b)],
            )
            .await?;
        Ok(r.map(|r| r.get(0)))
    }

    /// Current members of the direct channel of `a` and `b` (empty when it does not exist).
    pub async fn direct_members(&self, a: i64, b: i64) -> Result<Vec<i64>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT m.user_id FROM channels c JOIN channel_members m ON m.channel_id = c.id
                 WHERE c.dm_key = $1",
                &[&dm_key(a, b)],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Moves the read marker forward (never backwards, never past `last_seq`). Returns the
    /// marker before and after, or `None` when the user is not a member.
    pub async fn mark_read(
        &self,
        channel_id: i64,
        user_id: i64,
        seq: i64,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        let c = self.client().await?;
        let r = c
            .query_opt(
                "WITH old AS (
                     SELECT last_read_seq FROM channel_members
                     WHERE channel_id = $1 AND user_id = $2 FOR UPDATE)
                 UPDATE channel_members m
                 SET last_read_seq = GREATEST(m.last_read_seq, LEAST($3, c.last_seq))
                 FROM channels c, old
                 WHERE c.id = m.channel_id AND m.channel_id = $1 AND m.user_id = $2
                 RETURNING old.last_read_seq, m.last_read_seq",
                &[&channel_id, &user_id, &seq],
            )
            .await?;
        Ok(r.map(|r| (r.get(0), r.get(1))))
    }
}

/// What an owner or admin does to another member of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moderation {
    SetRole(Role),
    Remove,
}

impl Store {
    /// Sets `target`'s role in the channel, or removes them from it, if `allow(actor's role,
    /// target's role)` agrees (each `None` when not a member); both member rows are locked
    /// while it decides. Returns whether anything changed.
    pub async fn moderate<E: From<StoreError>>(
        &self,
        channel_id: i64,
        (actor, target): (i64, i64),
        action: Moderation,
        allow: impl FnOnce(Option<Role>, Option<Role>) -> Result<(), E>,
    ) -> Result<bool, E> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(StoreError::from)?;
        let rows = tx
            .query(
                "SELECT user_id, role FROM channel_members
                 WHERE channel_id = $1 AND user_id IN ($2, $3) ORDER BY user_id FOR UPDATE",
                &[&channel_id, &actor, &target],
            )
            .await
            .map_err(StoreError::from)?;
        let role_of = |u: i64| {
            rows.iter()
                .find(|r| r.get::<_, i64>(0) == u)
                .map(|r| Role::parse(r.get(1)))
        };
        let (mine, theirs) = (role_of(actor), role_of(target));
        allow(mine, theirs)?;
        match action {
            Moderation::SetRole(role) if theirs == Some(role) => return Ok(false),
            Moderation::SetRole(role) => {
                tx.execute(
                    "UPDATE channel_members SET role = $3 WHERE channel_id = $1 AND user_id = $2",
                    &[&channel_id, &target, &role.as_str()],
                )
                .await
            }
            Moderation::Remove if theirs.is_none() => return Ok(false),
            Moderation::Remove => {
                tx.execute(
                    "DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2",
                    &[&channel_id, &target],
                )
                .await
            }
        }
        .map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(true)
    }
}

/// The key that makes a direct channel unique per pair of users.
fn dm_key(a: i64, b: i64) -> String {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    format!("{lo}:{hi}")
}

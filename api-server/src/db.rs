//! Queries this server needs beyond `shared::store::Store`: a join that reads `last_seq` under
//! the channel lock, the current members of a direct channel, and a read marker that says
//! whether it moved.

use shared::protocol::{ChannelKind, MyChannel};
use shared::store::{Store, StoreError};

/// What a join did.
#[derive(Debug)]
pub enum Join {
    NoChannel,
    /// A direct channel the caller is not in: not joinable.
    Direct,
    /// Joined now; `last_seq` is exact as of the join (sends wait on the channel row lock).
    Joined(MyChannel),
    /// Already a member.
    Already(MyChannel),
}

/// Joins a group channel. The channel row is share-locked, so no send commits between reading
/// `last_seq` and adding the member: every later message has a higher seq and reaches them.
pub async fn join(store: &Store, channel_id: i64, user_id: i64) -> Result<Join, StoreError> {
    let mut c = store.client().await?;
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
    let inserted = if kind == ChannelKind::Group {
        tx.execute(
            "INSERT INTO channel_members (channel_id, user_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            &[&channel_id, &user_id],
        )
        .await?
            == 1
    } else {
        false
    };
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
    };
    Ok(if inserted {
        Join::Joined(my)
    } else {
        Join::Already(my)
    })
}

/// Current members of the direct channel of `a` and `b` (empty when it does not exist yet).
pub async fn direct_members(store: &Store, a: i64, b: i64) -> Result<Vec<i64>, StoreError> {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let c = store.client().await?;
    let rows = c
        .query(
            "SELECT m.user_id FROM channels c JOIN channel_members m ON m.channel_id = c.id
             WHERE c.dm_key = $1",
            &[&format!("{lo}:{hi}")],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Moves the read marker forward (never backwards, never past `last_seq`). Returns the marker
/// before and after, or `None` when the user is not a member.
pub async fn mark_read(
    store: &Store,
    channel_id: i64,
    user_id: i64,
    seq: i64,
) -> Result<Option<(i64, i64)>, StoreError> {
    let c = store.client().await?;
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

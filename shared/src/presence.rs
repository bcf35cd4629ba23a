//! Cluster-wide presence (SPEC 5.6) kept in Redis with per-edge leases.
//!
//! Each edge keeps a hash `{presence}:edge:<edge>` of user id -> open sockets on that edge, and
//! refreshes a lease key `{presence}:lease:<edge>` every [`LEASE_REFRESH`]. A user is online while
//! some edge with a live lease counts a socket of theirs. When an edge dies its lease expires
//! (after [`LEASE_TTL`]); the first live edge to notice claims the dead edge's hash with
//! `SREM {presence}:edges`, deletes it, and announces those users offline.
//! Every key carries the hash tag `{presence}`, so on a Redis Cluster they all live in one slot
//! and the open/close step stays one atomic script.
//! Changes are published on [`Topic::Presence`] as [`PresenceEvent`] JSON; every edge
//! subscribes to it and forwards a `presence` frame to its sockets that share a channel.

use std::collections::HashSet;
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::{HashesInterface, KeysInterface, LuaInterface, SetsInterface};
use fred::types::Expiration;
use serde::{Deserialize, Serialize};

use crate::protocol::PresenceStatus;
use crate::topics::Topic;

/// Set of edge ids that hold (or held) presence hashes.
pub const EDGES_KEY: &str = "{presence}:edges";
/// How long an edge's lease lives without a refresh.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
/// How often a live edge refreshes its lease and sweeps dead edges.
pub const LEASE_REFRESH: Duration = Duration::from_secs(10);

/// A presence change, published on [`Topic::Presence`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceEvent {
    pub user_id: i64,
    pub status: PresenceStatus,
    /// The user's channels: sockets in any of them get the `presence` frame.
    pub channels: Vec<i64>,
}

/// Prefix of an edge's hash of user id -> open sockets.
const EDGE_PREFIX: &str = "{presence}:edge:";
/// Prefix of an edge's lease key.
const LEASE_PREFIX: &str = "{presence}:lease:";

pub fn edge_key(edge: &str) -> String {
    format!("{EDGE_PREFIX}{edge}")
}

pub fn lease_key(edge: &str) -> String {
    format!("{LEASE_PREFIX}{edge}")
}

impl PresenceEvent {
    /// The payload published on [`Topic::Presence`].
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One socket opened or closed, as one atomic step in Redis: count it on the edge, add up the
/// user's sockets on the other live edges, and publish the change when it was the user's first
/// socket in the cluster or the last. Every key name and the topic come from Rust (KEYS and
/// ARGV), so they are written once; the other edges' keys are built from the prefixes.
const CHANGE_SCRIPT: &str = r#"
local mine, edges = KEYS[1], KEYS[2]
local me, user, delta = ARGV[1], ARGV[2], tonumber(ARGV[3])
local edge_prefix, lease_prefix, topic = ARGV[6], ARGV[7], ARGV[8]
local here = redis.call('HINCRBY', mine, user, delta)
if here <= 0 then
  redis.call('HDEL', mine, user)
end
local elsewhere = 0
for _, e in ipairs(redis.call('SMEMBERS', edges)) do
  if e ~= me and redis.call('EXISTS', lease_prefix .. e) == 1 then
    local c = tonumber(redis.call('HGET', edge_prefix .. e, user) or '0')
    if c > 0 then
      elsewhere = elsewhere + c
    end
  end
end
if elsewhere == 0 then
  if delta > 0 and here == delta then
    redis.call('PUBLISH', topic, ARGV[4])
  elseif delta < 0 and here <= 0 and here - delta > 0 then
    redis.call('PUBLISH', topic, ARGV[5])
  end
end
return here
"#;

/// Counts a socket of `user` opened (`delta` 1) or closed (`delta` -1) on `edge`, and in the
/// same atomic step publishes a [`PresenceEvent`] for `channels` when it was the user's first
/// socket on any live edge (online) or the last (offline). Returns the count left on `edge`.
///
/// One step per change: two edges changing the same user at once (the last socket closing
/// here while a new one opens there) cannot both miss the transition or both announce it, and
/// the events reach subscribers in the order of the changes.
pub async fn socket_change(
    r: &Client,
    edge: &str,
    user: i64,
    delta: i64,
    channels: &[i64],
) -> fred::prelude::FredResult<i64> {
    let event = |status| {
        PresenceEvent {
            user_id: user,
            status,
            channels: channels.to_vec(),
        }
        .to_json()
    };
    let keys = vec![edge_key(edge), EDGES_KEY.to_owned()];
    let args = vec![
        edge.to_owned(),
        user.to_string(),
        delta.to_string(),
        event(PresenceStatus::Online),
        event(PresenceStatus::Offline),
        EDGE_PREFIX.to_owned(),
        LEASE_PREFIX.to_owned(),
        Topic::Presence.name(),
    ];
    r.eval(CHANGE_SCRIPT, keys, args).await
}

/// Counts one more socket of `user` on `edge`, announcing nothing; returns the count on this
/// edge.
pub async fn socket_opened(r: &Client, edge: &str, user: i64) -> fred::prelude::FredResult<i64> {
    r.hincrby(edge_key(edge), user, 1).await
}

/// Counts one socket of `user` less on `edge`, announcing nothing; returns the count left on
/// this edge.
pub async fn socket_closed(r: &Client, edge: &str, user: i64) -> fred::prelude::FredResult<i64> {
    let left: i64 = r.hincrby(edge_key(edge), user, -1).await?;
    if left <= 0 {
        let _: i64 = r.hdel(edge_key(edge), user).await?;
    }
    Ok(left)
}

/// Refreshes the lease of `edge` and lists it in [`EDGES_KEY`].
pub async fn refresh_lease(r: &Client, edge: &str) -> fred::prelude::FredResult<()> {
    let ms = LEASE_TTL.as_millis() as i64;
    let _: () = r
        .set(lease_key(edge), 1, Some(Expiration::PX(ms)), None, false)
        .await?;
    let _: i64 = r.sadd(EDGES_KEY, edge).await?;
    Ok(())
}

/// Drops the presence of `edge` at once (clean shutdown); returns the users it held.
pub async fn release(r: &Client, edge: &str) -> fred::prelude::FredResult<Vec<i64>> {
    let users: Vec<i64> = r.hkeys(edge_key(edge)).await?;
    let _: i64 = r.del(vec![edge_key(edge), lease_key(edge)]).await?;
    let _: i64 = r.srem(EDGES_KEY, edge).await?;
    Ok(users)
}

/// Claims every edge whose lease has expired and returns the users they held. Only one caller
/// wins each dead edge.
pub async fn sweep_dead_edges(r: &Client) -> fred::prelude::FredResult<Vec<i64>> {
    let edges: Vec<String> = r.smembers(EDGES_KEY).await?;
    let mut users = Vec::new();
    for edge in edges {
        let alive: i64 = r.exists(lease_key(&edge)).await?;
        if alive == 1 {
            continue;
        }
        let won: i64 = r.srem(EDGES_KEY, &edge).await?;
        if won == 1 {
            let held: Vec<i64> = r.hkeys(edge_key(&edge)).await?;
            let _: i64 = r.del(edge_key(&edge)).await?;
            users.extend(held);
        }
    }
    Ok(users)
}

/// Every user with a socket on an edge whose lease is live.
pub async fn online_users(r: &Client) -> fred::prelude::FredResult<HashSet<i64>> {
    let edges: Vec<String> = r.smembers(EDGES_KEY).await?;
    let mut online = HashSet::new();
    for edge in edges {
        let alive: i64 = r.exists(lease_key(&edge)).await?;
        if alive == 1 {
            let users: Vec<i64> = r.hkeys(edge_key(&edge)).await?;
            online.extend(users);
        }
    }
    Ok(online)
}

//! Cluster-wide presence (SPEC 5.6) kept in Redis with per-edge leases.
//!
//! Each edge keeps a hash `presence:edge:{edge}` of user id -> open sockets on that edge, and
//! refreshes a lease key `presence:lease:{edge}` every [`LEASE_REFRESH`]. A user is online while
//! some edge with a live lease counts a socket of theirs. When an edge dies its lease expires
//! (after [`LEASE_TTL`]); the first live edge to notice claims the dead edge's hash with
//! `SREM presence:edges`, deletes it, and announces those users offline.
//! Changes are published on the [`TOPIC`] topic as [`PresenceEvent`] JSON; every edge
//! subscribes to it and forwards a `presence` frame to its sockets that share a channel.

use std::collections::HashSet;
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::{HashesInterface, KeysInterface, SetsInterface};
use fred::types::Expiration;
use serde::{Deserialize, Serialize};

use crate::protocol::PresenceStatus;

/// Topic on which presence changes are published.
pub const TOPIC: &str = "presence";
/// Set of edge ids that hold (or held) presence hashes.
pub const EDGES_KEY: &str = "presence:edges";
/// How long an edge's lease lives without a refresh.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
/// How often a live edge refreshes its lease and sweeps dead edges.
pub const LEASE_REFRESH: Duration = Duration::from_secs(10);

/// A presence change, published on [`TOPIC`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceEvent {
    pub user_id: i64,
    pub status: PresenceStatus,
    /// The user's channels: sockets in any of them get the `presence` frame.
    pub channels: Vec<i64>,
}

pub fn edge_key(edge: &str) -> String {
    format!("presence:edge:{edge}")
}

pub fn lease_key(edge: &str) -> String {
    format!("presence:lease:{edge}")
}

/// Counts one more socket of `user` on `edge`; returns the count on this edge.
pub async fn socket_opened(r: &Client, edge: &str, user: i64) -> fred::prelude::FredResult<i64> {
    r.hincrby(edge_key(edge), user, 1).await
}

/// Counts one socket of `user` less on `edge`; returns the count left on this edge.
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

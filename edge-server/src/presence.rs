//! Cluster-wide presence (SPEC 5.6) on top of `shared::presence`: one task per edge applies
//! socket opens and closes in order, refreshes the edge's lease, sweeps dead edges, and
//! publishes `PresenceEvent`s when a user's first socket in the cluster opens or last closes.

use fred::clients::Client;
use fred::interfaces::{HashesInterface, KeysInterface, PubsubInterface, SetsInterface};
use shared::presence::{self as sp, PresenceEvent};
use shared::protocol::PresenceStatus;
use shared::store::Store;
use shared::topics::Topic;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug)]
pub enum PresenceCmd {
    Opened { user: i64, channels: Vec<i64> },
    Closed { user: i64, channels: Vec<i64> },
}

/// Whether `user` has a socket on a live edge other than `me`.
async fn online_elsewhere(r: &Client, me: &str, user: i64) -> fred::prelude::FredResult<bool> {
    let edges: Vec<String> = r.smembers(sp::EDGES_KEY).await?;
    for e in edges.iter().filter(|e| e.as_str() != me) {
        let alive: i64 = r.exists(sp::lease_key(e)).await?;
        if alive == 1 {
            let has: bool = r.hexists(sp::edge_key(e), user).await?;
            if has {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Announces `user` offline to the sockets that share a channel with them.
async fn announce_offline(r: &Client, store: &Store, user: i64) {
    let channels = store
        .my_channels(user)
        .await
        .map(|c| c.into_iter().map(|c| c.id).collect())
        .unwrap_or_default();
    let ev = PresenceEvent {
        user_id: user,
        status: PresenceStatus::Offline,
        channels,
    };
    // Awaited, not queued on the bus: the last announcements of a draining edge must go out
    // before it quits Redis.
    if let Err(e) = r
        .publish::<i64, _, _>(Topic::Presence.name(), ev.to_json())
        .await
    {
        tracing::warn!(user, error = %e, "presence publish failed");
    }
}

/// Runs until `shutdown`, then releases the edge's presence and announces its users offline.
pub async fn run(
    r: Client,
    store: Store,
    me: String,
    mut rx: mpsc::UnboundedReceiver<PresenceCmd>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(sp::LEASE_REFRESH);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            cmd = rx.recv() => match cmd {
                None => break,
                Some(PresenceCmd::Opened { user, channels }) => {
                    if let Err(e) = sp::socket_change(&r, &me, user, 1, &channels).await {
                        tracing::warn!(user, error = %e, "presence open failed");
                    }
                }
                Some(PresenceCmd::Closed { user, channels }) => {
                    if let Err(e) = sp::socket_change(&r, &me, user, -1, &channels).await {
                        tracing::warn!(user, error = %e, "presence close failed");
                    }
                }
            },
            _ = tick.tick() => {
                if let Err(e) = sp::refresh_lease(&r, &me).await {
                    tracing::warn!(edge = %me, error = %e, "lease refresh failed");
                    continue;
                }
                match sp::sweep_dead_edges(&r).await {
                    Ok(users) => {
                        for u in users {
                            if sp::online_users(&r).await.map(|s| s.contains(&u)).unwrap_or(true) {
                                continue;
                            }
                            announce_offline(&r, &store, u).await;
                        }
                    }
                    Err(e) => tracing::warn!(edge = %me, error = %e, "presence sweep failed"),
                }
            }
        }
    }
    // Drain what the closing sockets reported, then give the rest up at once.
    while let Ok(cmd) = rx.try_recv() {
        if let PresenceCmd::Closed { user, channels } = cmd {
            let _ = sp::socket_change(&r, &me, user, -1, &channels).await;
        }
    }
    match sp::release(&r, &me).await {
        Ok(users) => {
            for u in users {
                if !online_elsewhere(&r, &me, u).await.unwrap_or(true) {
                    announce_offline(&r, &store, u).await;
                }
            }
        }
        Err(e) => tracing::warn!(edge = %me, error = %e, "presence release failed"),
    }
}

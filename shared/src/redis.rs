//! Redis connections of both servers, built in one place: a single Redis (`redis://host:port`)
//! or a Redis Cluster (`redis-cluster://host:port?node=host:port&node=...`, any reachable nodes
//! of it), with no Nagle, reconnects that never give up, and bounded command timeouts.
//!
//! On a cluster, channel and user topics go through sharded pub/sub (`SPUBLISH` /
//! `SSUBSCRIBE`, routed by the topic name's slot, one subscriber connection per shard); the
//! `presence` topic and every key stay where they are in single-Redis mode (see
//! [`crate::topics::Topic::sharded`] and [`crate::presence`]).

use std::time::Duration;

use anyhow::Context;
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::ClientLike;
use fred::types::config::{
    Config, ConnectionConfig, PerformanceConfig, ReconnectPolicy, TcpConfig,
};

/// How long one command may take before it fails (a publish is then filled from PostgreSQL by
/// its subscribers; a presence step is logged).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a new connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Received publishes buffered for the reader before it counts as lagging (and catches up
/// from PostgreSQL).
const MESSAGE_BUFFER: usize = 1 << 16;
/// Delay between reconnect attempts: short, since events lost meanwhile are filled from
/// PostgreSQL only once the connection is back.
const RECONNECT_DELAY_MS: u32 = 100;

/// The parsed `REDIS_URL` and the settings every connection of ours uses.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    config: Config,
}

impl RedisSettings {
    /// Parses `url` (`redis://` or `redis-cluster://`).
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let config = Config::from_url(url).context("parse REDIS_URL")?;
        Ok(RedisSettings { config })
    }

    /// Whether `url` names a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.config.server.is_clustered()
    }

    fn perf() -> PerformanceConfig {
        PerformanceConfig {
            default_command_timeout: COMMAND_TIMEOUT,
            broadcast_channel_capacity: MESSAGE_BUFFER,
            ..Default::default()
        }
    }

    fn connection() -> ConnectionConfig {
        ConnectionConfig {
            connection_timeout: CONNECT_TIMEOUT,
            internal_command_timeout: CONNECT_TIMEOUT,
            // No Nagle: a publish written while the previous one is unacknowledged goes out
            // at once.
            tcp: TcpConfig {
                nodelay: Some(true),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn policy() -> ReconnectPolicy {
        ReconnectPolicy::new_constant(0, RECONNECT_DELAY_MS)
    }

    /// A command client (publishes, presence, health pings); not connected yet.
    pub fn client(&self) -> Client {
        Client::new(
            self.config.clone(),
            Some(Self::perf()),
            Some(Self::connection()),
            Some(Self::policy()),
        )
    }

    /// A subscriber client (one connection per shard on a cluster); not connected yet.
    pub fn subscriber(&self) -> SubscriberClient {
        SubscriberClient::new(
            self.config.clone(),
            Some(Self::perf()),
            Some(Self::connection()),
            Some(Self::policy()),
        )
    }
}

/// Starts `clients`' connection tasks (they reconnect by themselves from then on) and waits up
/// to `within` for all of them to be connected.
pub async fn connect(clients: &[&Client], within: Duration) -> anyhow::Result<()> {
    for c in clients {
        drop(c.connect());
    }
    tokio::time::timeout(within, async {
        for c in clients {
            c.wait_for_connect().await?;
        }
        Ok::<_, fred::error::Error>(())
    })
    .await
    .context("connect to Redis: timed out")?
    .context("connect to Redis")
}

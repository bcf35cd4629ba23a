//! The edge server: a stateless WebSocket gateway (SPEC sections 4 and 5). It holds client
//! sockets, subscribes one Redis connection to the topics its sockets need, puts each
//! channel's messages in `seq` order (filling holes from PostgreSQL), and delivers them once
//! to every local member.

mod channel;
pub mod config;
mod edge;
mod fanout;
mod frames;
mod http;
mod hub;
mod metrics;
mod presence;
mod queue;
mod replays;
mod session;
mod socket;
mod sse;
mod subs;
mod wire;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use fred::clients::{Client, SubscriberClient};
use fred::interfaces::ClientLike;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use shared::bus::Bus;
use shared::chat::Chat;
use shared::redis::RedisSettings;
use shared::store::{GroupCommitConfig, Store};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use channel::ChannelEnv;
pub use config::Config;
use edge::Edge;
use metrics::EdgeMetrics;

/// How often histograms are drained into their buckets.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// The edge's two Redis clients (commands, and the subscriber), connected within 10 s.
async fn connect_redis(url: &str) -> anyhow::Result<(Client, SubscriberClient)> {
    let settings = RedisSettings::parse(url)?;
    let (client, sub) = (settings.client(), settings.subscriber());
    shared::redis::connect(&[&client, &sub.to_client()], Duration::from_secs(10)).await?;
    Ok((client, sub))
}

/// Serves `listener` until `shutdown` is cancelled, then drains: `/health` turns 503, no new
/// sockets, every socket closes with 1012 (spread over `drain_spread`), presence is released.
pub async fn run(
    mut config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let port = listener.local_addr()?.port();
    if config.edge_id.is_empty() {
        config.edge_id = format!("edge-{port}");
    }
    let store = Store::connect(&config.database_url, config.db_pool_size)?;
    let (redis, sub) = connect_redis(&config.redis_url).await?;

    let tasks = CancellationToken::new();
    let presence_stop = CancellationToken::new();
    let registry = shared::metrics::Metrics::new(&[("edge", &config.edge_id)]);
    let metrics = EdgeMetrics::new(&registry);
    let bus = Bus::spawn(redis.clone(), &registry, tasks.clone());
    let commit = GroupCommitConfig {
        max_batch: config.send_batch_max,
        shards: config.send_workers,
        ..GroupCommitConfig::default()
    };
    let limits = Arc::new(config.limits.clone());
    let chat = Chat::new(store.clone(), bus, limits, commit, &registry);
    let reads = (config.db_pool_size / 4).clamp(1, 4);
    let replays =
        replays::Replays::new(chat.clone(), metrics.clone(), reads, config.resume_spacing);
    let (subs_tx, subs_rx) = mpsc::unbounded_channel();
    let (presence_tx, presence_rx) = mpsc::unbounded_channel();
    let tracker = TaskTracker::new();
    let env = Arc::new(ChannelEnv {
        store: store.clone(),
        metrics: metrics.clone(),
        gap_grace: config.gap_grace,
        tracker: tracker.clone(),
    });
    let hub = Arc::new(hub::Hub::new(subs_tx, env));
    let edge = Arc::new(Edge {
        id: config.edge_id.clone(),
        chat,
        hub: hub.clone(),
        replays: Arc::new(replays),
        registry,
        metrics: metrics.clone(),
        redis: redis.clone(),
        presence: presence_tx,
        draining: Default::default(),
        tracker,
        config,
    });
    tracing::info!(edge = %edge.id, port, "edge listening");

    let background = TaskTracker::new();
    background.spawn(subs::run(
        hub.clone(),
        metrics.clone(),
        sub.clone(),
        subs_rx,
        tasks.clone(),
    ));
    background.spawn(fanout::run(
        hub,
        metrics,
        sub.clone(),
        edge.config.catchup_interval,
        tasks.clone(),
    ));
    background.spawn(presence::run(
        redis.clone(),
        store,
        edge.id.clone(),
        presence_rx,
        presence_stop.clone(),
    ));
    background.spawn(upkeep(edge.clone(), tasks.clone()));

    // The listener stays open through the drain so `/health` can answer 503 (and `/ws` 503).
    let stop_accept = CancellationToken::new();
    let acceptor = tokio::spawn(accept_loop(edge.clone(), listener, stop_accept.clone()));
    shutdown.cancelled().await;
    drain(&edge).await;
    stop_accept.cancel();
    let _ = acceptor.await;
    presence_stop.cancel();
    tasks.cancel();
    background.close();
    let _ = tokio::time::timeout(Duration::from_secs(3), background.wait()).await;
    // Bounded: a Redis that does not answer must not keep the process from exiting.
    let quit = async {
        let _ = redis.quit().await;
        let _ = sub.quit().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), quit).await;
    tracing::info!(edge = %edge.id, "edge stopped");
    Ok(())
}

async fn accept_loop(edge: Arc<Edge>, listener: TcpListener, stop: CancellationToken) {
    while let Some((stream, _)) = shared::net::accept(&listener, &stop).await {
        let e = edge.clone();
        let header_read_timeout = edge.config.header_read_timeout;
        tokio::spawn(async move {
            let svc = service_fn(move |req| http::handle(e.clone(), req));
            // Without a timer hyper enforces no header read timeout at all (slowloris).
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            let _ = conn.await;
        });
    }
}

/// Drains histograms and forgets idle rate-limit state, until `shutdown`.
async fn upkeep(edge: Arc<Edge>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(METRICS_UPKEEP);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                edge.registry.upkeep();
                edge.chat.upkeep();
            }
        }
    }
}

/// Closes every socket with 1012, spread over `drain_spread`, and waits for them.
async fn drain(edge: &Arc<Edge>) {
    edge.draining.store(true, Relaxed);
    let sockets = edge.hub.all_sockets();
    tracing::info!(edge = %edge.id, sockets = sockets.len(), "draining");
    let n = sockets.len().max(1) as u32;
    let step = edge.config.drain_spread / n;
    let start = tokio::time::Instant::now();
    for (i, s) in (1u32..).zip(sockets) {
        s.queue.close(session::RESTARTING, "edge restarting");
        // On a schedule, not a sleep per socket: with thousands of sockets the step is below
        // the timer's millisecond, and each sleep's overshoot would add up to many spreads.
        if !step.is_zero() {
            tokio::time::sleep_until(start + step * i).await;
        }
    }
    edge.tracker.close();
    if tokio::time::timeout(edge.config.drain_timeout, edge.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(edge = %edge.id, "drain timed out with sockets still open");
    }
}

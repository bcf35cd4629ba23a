//! The REST api-server of SPEC section 3: accounts, channels, membership, direct messages,
//! history, sends over HTTP, read markers, search and attachments, plus `/health`, `/metrics`
//! and the web client.
//!
//! `run(config, listener, shutdown)` serves until the token is cancelled; `main` only reads
//! the configuration, starts tracing and binds.

mod config;
mod error;
mod extract;
pub mod files;
mod limiter;
mod password;
mod routes;
mod state;
pub mod thumbs;
mod track;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::ConnectInfo;
use fred::interfaces::ClientLike;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use shared::auth::JwtKeys;
use shared::bus::Bus;
use shared::chat::Chat;
use shared::metrics::Metrics;
use shared::store::{GroupCommitConfig, Store};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

pub use config::Config;
pub use error::ApiError;
pub use routes::HistoryQuery;

use crate::limiter::LoginLimiter;
use crate::password::Passwords;
use crate::state::AppState;

/// How long a graceful shutdown may wait for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long start-up waits for PostgreSQL to accept the migrations.
const MIGRATE_DEADLINE: Duration = Duration::from_secs(30);

/// Migrates the database, connects to Redis and serves HTTP on `listener` until `shutdown`.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let jwt = JwtKeys::new(config.jwt_secret.as_bytes(), config.jwt_ttl)?;
    let store = Store::connect(&config.database_url, config.db_pool_size)?;
    migrate(&store, &shutdown).await?;
    let search_language = check_search_language(&store, &config.search_language).await?;
    let files = files::Files::open(
        config.attachment_store.as_deref(),
        &config.attachment_store_options,
        &config.data_dir,
        config.attachment_max_bytes,
    )?;
    files.check().await?;
    let redis = connect_redis(&config.redis_url).await?;
    let metrics = Metrics::default();
    let limits = Arc::new(config.limits.clone());
    let bus = Bus::spawn(redis.clone(), &metrics, shutdown.child_token());
    let chat = Chat::new(
        store.clone(),
        bus,
        limits.clone(),
        GroupCommitConfig::default(),
        &metrics,
    );
    let state = AppState {
        chat,
        store,
        redis: redis.clone(),
        jwt,
        limits,
        passwords: Passwords::new(config.argon2_memory_kib).await?,
        logins: Arc::new(LoginLimiter::new(&config.limits)),
        metrics,
        search_language: search_language.into(),
        files,
    };
    let tracker = TaskTracker::new();
    tracker.spawn(housekeeping(state.clone(), shutdown.clone()));
    let app = routes::router(state);
    tracing::info!(addr = %listener.local_addr()?, "api-server listening");
    let server = serve(listener, app, config.header_read_timeout, shutdown.clone());
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        () = server => {}
        () = deadline => tracing::warn!("in-flight requests outlived the shutdown grace period"),
    }
    shutdown.cancel();
    tracker.close();
    tracker.wait().await;
    let _ = redis.quit().await;
    Ok(())
}

/// Serves HTTP/1 on `listener` until `shutdown`, then lets each connection finish its request
/// in flight. What `axum::serve` does, plus a header read timeout (it sets no timer, so a
/// client trickling header bytes held its connection forever): see `Config`.
async fn serve(
    listener: TcpListener,
    app: axum::Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) {
    let conns = TaskTracker::new();
    while let Some((stream, peer)) = shared::net::accept(&listener, &shutdown).await {
        let app = app.clone();
        // `ConnectInfo<SocketAddr>` for the extractors, as `into_make_service_with_connect_info`.
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req)
        });
        let stop = shutdown.clone();
        conns.spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            let done = tokio::select! {
                r = conn.as_mut() => Some(r),
                () = stop.cancelled() => None,
            };
            let r = match done {
                Some(r) => r,
                None => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = r {
                tracing::debug!(error = %e, %peer, "connection ended");
            }
        });
    }
    conns.close();
    conns.wait().await;
}

/// Applies migrations, retrying while PostgreSQL is not up yet.
async fn migrate(store: &Store, shutdown: &CancellationToken) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        match store.migrate().await {
            Ok(n) => {
                tracing::info!(applied = n, "migrations done");
                return Ok(());
            }
            Err(e) if start.elapsed() < MIGRATE_DEADLINE && !shutdown.is_cancelled() => {
                tracing::warn!(error = format!("{e:#}"), "migrations failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.context("apply migrations")),
        }
    }
}

/// The configured search language as PostgreSQL names it; an error when it is not the one
/// `messages.search` is built with (queries would not match what the index holds).
async fn check_search_language(store: &Store, wanted: &str) -> anyhow::Result<String> {
    let (built, wanted) = store
        .search_languages(wanted)
        .await
        .map_err(|e| anyhow::anyhow!(e))
        .with_context(|| format!("SEARCH_LANGUAGE={wanted:?}"))?;
    if built != wanted {
        anyhow::bail!(
            "SEARCH_LANGUAGE={wanted:?} but messages.search is built with {built:?}: run \
             `SELECT set_search_language('{wanted}')` first (docs/API.md, \"Search\")"
        );
    }
    Ok(wanted)
}

/// A Redis client that reconnects by itself forever. Start-up does not wait for Redis longer
/// than a few seconds: `/health` reports it, and publishes resume once it is back.
async fn connect_redis(url: &str) -> anyhow::Result<fred::clients::Client> {
    let client = shared::redis::RedisSettings::parse(url)?.client();
    if let Err(e) = shared::redis::connect(&[&client], Duration::from_secs(5)).await {
        tracing::warn!(
            error = format!("{e:#}"),
            "Redis not reachable yet; will keep trying"
        );
    }
    Ok(client)
}

/// Periodic upkeep: prune idle rate-limit entries and drain metric histograms.
async fn housekeeping(state: AppState, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {
                state.chat.upkeep();
                state.logins.prune(Instant::now());
                state.metrics.upkeep();
            }
        }
    }
}

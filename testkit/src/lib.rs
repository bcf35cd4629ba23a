//! Test harness: real PostgreSQL and Redis servers on free ports, started once per test
//! process (or taken from `DATABASE_URL` / `REDIS_URL`), and a fresh migrated database per test;
//! Redis Clusters too (shared, or owned by a test that breaks them: [`RedisCluster`]), and an
//! S3-compatible server for the attachment store ([`s3`]).
//!
//! Servers are spawned through `procs` (one long-lived spawner thread with `PR_SET_PDEATHSIG`),
//! so they die with the test process even when it is killed.
#![allow(clippy::unwrap_used)]

mod postgres;
mod redis;
mod redis_cluster;
mod s3;
pub mod scratch;
pub mod slowloris;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use anyhow::Context;

pub use postgres::PgServer;
pub use redis::RedisServer;
pub use redis_cluster::{redis_cluster_url, slot_of, RedisCluster, NODE_TIMEOUT_MS};
pub use s3::{s3, S3Server};

/// A JWT secret for tests (32 bytes).
pub const JWT_SECRET: &str = "test-secret-0123456789abcdef-0123456789";

/// The servers shared by every test of this process.
#[derive(Debug)]
pub struct Shared {
    /// URL of a database we may `CREATE DATABASE` from.
    admin_url: String,
    /// Migrated database cloned for each test.
    template: String,
    pub redis_url: String,
    /// Taken and killed at exit (a static is never dropped).
    pg: Mutex<Option<PgServer>>,
    _redis: Option<RedisServer>,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

/// The process-wide servers, started on first use.
pub fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
        // Start from a plain thread: the caller may be inside a runtime.
        std::thread::spawn(|| start_shared().expect("start test servers"))
            .join()
            .expect("test server start panicked")
    })
}

/// Kills the process-wide PostgreSQL and removes its directory; registered with `atexit`.
extern "C" fn kill_shared_pg() {
    let pg = SHARED
        .get()
        .and_then(|s| s.pg.try_lock().ok().and_then(|mut g| g.take()));
    if let Some(pg) = pg {
        pg.kill();
    }
}

fn start_shared() -> anyhow::Result<Shared> {
    let (admin_url, pg) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => (url, None),
        _ => {
            let pg = PgServer::start().context("start PostgreSQL")?;
            procs::at_exit(kill_shared_pg);
            (pg.url("postgres"), Some(pg))
        }
    };
    let (redis_url, redis) = match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => (url, None),
        _ => {
            let r = RedisServer::start().context("start Redis")?;
            (r.url(), Some(r))
        }
    };
    let template = format!("chat_template_{}", uuid::Uuid::new_v4().simple());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(postgres::make_template(&admin_url, &template))?;
    Ok(Shared {
        admin_url,
        template,
        redis_url,
        pg: Mutex::new(pg),
        _redis: redis,
    })
}

/// A fresh database for one test.
#[derive(Debug, Clone)]
pub struct TestDb {
    pub url: String,
    pub name: String,
}

static DB_COUNTER: AtomicU64 = AtomicU64::new(1);

/// Creates a fresh, migrated database on the shared server. User and channel ids start at a
/// random offset so tests sharing one Redis never publish on the same topic.
pub async fn fresh_db() -> TestDb {
    let s = shared();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    postgres::clone_template(&s.admin_url, &s.template, &name)
        .await
        .expect("create test database");
    let url = postgres::with_dbname(&s.admin_url, &name);
    let offset = (uuid::Uuid::new_v4().as_u128() % 1_000_000) as i64 * 1_000_000
        + DB_COUNTER.fetch_add(1, Ordering::Relaxed) as i64 * 1000;
    postgres::offset_ids(&url, offset.max(1))
        .await
        .expect("offset ids");
    TestDb { url, name }
}

/// Creates a migrated database `name` on the server at `admin_url` and returns its URL.
pub async fn create_db(admin_url: &str, name: &str) -> anyhow::Result<String> {
    postgres::make_template(admin_url, name).await?;
    Ok(postgres::with_dbname(admin_url, name))
}

/// The shared Redis URL.
pub fn redis_url() -> String {
    shared().redis_url.clone()
}

/// Logs to the test output when `TEST_LOG` is set; silent otherwise.
pub fn init_tracing() {
    // The subscriber belongs to the binaries; tests only set RUST_LOG for them.
    if std::env::var("TEST_LOG").is_ok() && std::env::var("RUST_LOG").is_err() {
        // Nothing to install here: crates under test install their own subscriber.
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port")
}

/// The value of the first Prometheus sample in `text` whose series starts with `series`
/// (a name, or a name with the start of its labels).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
}

/// A plain Redis command client on `url`, connected, as another process would use it.
pub async fn redis_client(url: &str) -> anyhow::Result<fred::clients::Client> {
    use fred::interfaces::ClientLike;
    let cfg = fred::types::config::Config::from_url(url)?;
    let c = fred::clients::Client::new(cfg, None, None, None);
    c.init().await?;
    Ok(c)
}

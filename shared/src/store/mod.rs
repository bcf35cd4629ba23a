//! The PostgreSQL store: the source of truth for users, channels, membership, messages and
//! the rest of each channel's log (edits, deletes, reactions), search and attachments' facts.

mod attachments;
mod channels;
mod events;
mod group_commit;
mod history;
mod log;
mod messages;
pub mod migrate;
mod search;
mod users;

use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

pub use attachments::{attachment_url, thumbnail_url, NewAttachment, THUMBNAIL_TYPES};
pub use channels::{DirectChannel, Join, Moderation};
pub use events::{ChangeKind, ChangeOutcome, Facts, NewChange};
pub use group_commit::{GroupCommit, GroupCommitConfig, OnStored, Outcome};
pub use history::History;
pub use log::Entry;
pub use messages::{NewMessage, SendOutcome};
pub use search::{Hit, SearchCursor, MARK_END, MARK_START};

/// Errors of the store, split the way callers must treat them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken (username, ...).
    #[error("conflict")]
    Conflict,
    /// PostgreSQL cannot be reached or the pool is exhausted: retry later.
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            if *code == tokio_postgres::error::SqlState::UNIQUE_VIOLATION {
                return StoreError::Conflict;
            }
            // The server is going away or refusing work: treat as unavailable.
            if code.code().starts_with("57")
                || code.code().starts_with("08")
                || code.code() == "53300"
            {
                return StoreError::Unavailable(e.into());
            }
            return StoreError::Unexpected(e.into());
        }
        // No database error code: the connection failed or closed.
        StoreError::Unavailable(e.into())
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Unavailable(e.into())
    }
}

/// Handle to the connection pool; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("status", &self.pool.status())
            .finish()
    }
}

impl Store {
    /// A pool of up to `max_size` connections to `database_url`. Connections are made lazily,
    /// so a process can start while PostgreSQL is down and serve once it is back.
    pub fn connect(database_url: &str, max_size: usize) -> anyhow::Result<Self> {
        let pg: tokio_postgres::Config = database_url.parse().context("parse DATABASE_URL")?;
        let mgr = Manager::from_config(
            pg,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(max_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(3)))
            .recycle_timeout(Some(Duration::from_secs(3)))
            .build()
            .context("build PostgreSQL pool")?;
        Ok(Store { pool })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> anyhow::Result<usize> {
        let mut client = self.pool.get().await.context("connect to PostgreSQL")?;
        migrate::run(&mut client).await
    }

    /// `SELECT 1` with a short timeout, for `/health`.
    pub async fn ping(&self) -> bool {
        let q = async {
            let c = self.pool.get().await.ok()?;
            c.query_one("SELECT 1", &[]).await.ok()
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(2), q).await,
            Ok(Some(_))
        )
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }
}

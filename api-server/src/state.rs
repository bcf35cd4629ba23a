//! The state shared by every request: a cheap-to-clone handle around the server's resources.

use std::sync::Arc;

use fred::clients::Client;
use shared::auth::JwtKeys;
use shared::limits::Limits;
use shared::store::{GroupCommit, Store};

use crate::limiter::{LoginLimiter, SendLimiter};
use crate::observe::Metrics;
use crate::password::Passwords;

/// Handle to one server's resources.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    /// Sends go through the group committer: concurrent sends share transactions.
    pub commits: GroupCommit,
    /// Commands and publishes (never subscribed).
    pub redis: Client,
    pub jwt: JwtKeys,
    pub limits: Arc<Limits>,
    pub passwords: Arc<Passwords>,
    pub logins: Arc<LoginLimiter>,
    pub sends: Arc<SendLimiter>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// Publishes `frame` on `topic`; see [`crate::publish::publish`].
    pub async fn publish(&self, topic: String, frame: &shared::ServerFrame) {
        crate::publish::publish(&self.redis, &self.metrics, topic, frame).await;
    }
}

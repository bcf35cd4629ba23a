//! The state shared by every request: a cheap-to-clone handle around the server's resources.

use std::sync::Arc;

use fred::clients::Client;
use shared::auth::JwtKeys;
use shared::chat::Chat;
use shared::limits::Limits;
use shared::metrics::Metrics;
use shared::store::Store;

use crate::files::Files;
use crate::limiter::LoginLimiter;
use crate::password::Passwords;

/// Handle to one server's resources.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The chat operations; every route that sends, joins or marks goes through them.
    pub chat: Chat,
    /// Accounts and lookups the operations do not cover (users, channel lists).
    pub store: Store,
    /// Commands only (presence reads, health); publishes go through `chat`'s bus.
    pub redis: Client,
    pub jwt: JwtKeys,
    pub limits: Arc<Limits>,
    pub passwords: Arc<Passwords>,
    pub logins: Arc<LoginLimiter>,
    pub metrics: Metrics,
    /// The text search configuration of queries, the one `messages.search` is built with.
    pub search_language: Arc<str>,
    /// Attachments' bytes.
    pub files: Files,
}

//! The router: every route of SPEC section 3, the web client, and JSON fallbacks.

mod accounts;
mod attachments;
mod changes;
mod channels;
mod messages;
mod ops;
mod search;

pub use messages::HistoryQuery;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let body_limit = state.limits.max_frame_bytes;
    let assets = ops::ASSETS.iter().fold(Router::new(), |r, (path, _, _)| {
        r.route(path, get(ops::asset))
    });
    Router::new()
        .route("/api/register", post(accounts::register))
        .route("/api/login", post(accounts::login))
        .route("/api/me", get(accounts::me))
        .route("/api/users", get(accounts::users))
        .route("/api/channels", post(channels::create).get(channels::list))
        .route("/api/me/channels", get(channels::mine))
        .route("/api/me/mentions", get(messages::mentions))
        .route("/api/search", get(search::search))
        .route(
            "/api/channels/{id}/attachments",
            // The upload counts its bytes itself, against its own limit.
            post(attachments::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/attachments/{id}", get(attachments::download))
        .route(
            "/api/attachments/{id}/thumbnail",
            get(attachments::thumbnail),
        )
        .route("/api/me/blocks", get(accounts::blocks))
        .route(
            "/api/me/blocks/{user_id}",
            put(accounts::block).delete(accounts::unblock),
        )
        .route("/api/channels/{id}/join", post(channels::join))
        .route("/api/channels/{id}/leave", post(channels::leave))
        .route("/api/channels/{id}/members", get(channels::members))
        .route(
            "/api/channels/{id}/members/{user_id}",
            delete(channels::remove_member),
        )
        .route(
            "/api/channels/{id}/members/{user_id}/role",
            put(channels::set_role),
        )
        .route("/api/dms", post(channels::direct))
        .route(
            "/api/channels/{id}/messages",
            get(messages::history).post(messages::send),
        )
        .route(
            "/api/channels/{id}/messages/{message_id}",
            axum::routing::patch(changes::edit).delete(changes::delete),
        )
        .route(
            "/api/channels/{id}/messages/{message_id}/reactions/{emoji}",
            put(changes::react).delete(changes::unreact),
        )
        .route(
            "/api/channels/{id}/threads/{root_seq}",
            get(messages::thread),
        )
        .route("/api/channels/{id}/read", post(messages::read))
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .route("/", get(ops::index))
        .merge(assets)
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::track::track,
        ))
        .with_state(state)
}

/// One page of `items` fetched with `limit + 1`: the first `limit`, and the cursor (`key` of
/// the last one) when there was more.
fn page<T>(mut items: Vec<T>, limit: i64, key: impl Fn(&T) -> i64) -> (Vec<T>, Option<i64>) {
    let more = items.len() as i64 > limit;
    items.truncate(limit.max(0) as usize);
    let next = if more { items.last().map(key) } else { None };
    (items, next)
}

/// Presence from Redis; unreachable Redis is a 503, not a silent "everyone offline".
async fn online_users(state: &AppState) -> Result<std::collections::HashSet<i64>, ApiError> {
    shared::presence::online_users(&state.redis)
        .await
        .map_err(|e| ApiError::Unavailable(anyhow::anyhow!("presence: {e}")))
}

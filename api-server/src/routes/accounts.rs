//! Accounts: register, login, the caller, the user list with presence, and blocks.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::protocol::{User, UserPresence};
use shared::store::StoreError;
use shared::validate::{Password, Username};

use super::{online_users, page};
use crate::error::ApiError;
use crate::extract::{AuthUser, ClientAddr, Json, Path, Query};
use crate::state::AppState;

/// The one answer to a failed login, whether the user exists or not.
const BAD_CREDENTIALS: &str = "invalid username or password";

#[derive(Debug, Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
}

#[derive(Debug, Serialize)]
pub struct LoginResponse {
    token: String,
    expires_at: DateTime<Utc>,
    user: User,
}

/// `POST /api/register`: 201 user; 409 when the name is taken (case-insensitively).
pub async fn register(
    State(s): State<AppState>,
    Json(c): Json<Credentials>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let name = Username::parse(&c.username, &s.limits)?;
    let password = Password::parse(&c.password, &s.limits)?;
    const TAKEN: ApiError = ApiError::Conflict("username is taken");
    if s.store.user_with_hash(name.as_str()).await?.is_some() {
        return Err(TAKEN);
    }
    let hash = s.passwords.hash(password.expose().to_owned()).await?;
    let user = s
        .store
        .create_user(name.as_str(), &hash)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => TAKEN,
            e => e.into(),
        })?;
    tracing::info!(user_id = user.id, username = %user.username, "registered");
    Ok((StatusCode::CREATED, Json(user)))
}

/// `POST /api/login`: 200 `{token, expires_at, user}`; 401 with the same body for an unknown
/// user or a wrong password; 429 when the username or the address used its attempts.
pub async fn login(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Json(c): Json<Credentials>,
) -> Result<Json<LoginResponse>, ApiError> {
    let name_key: String = c.username.to_lowercase().chars().take(64).collect();
    let keys = [format!("user:{name_key}"), format!("addr:{addr}")];
    s.logins
        .begin(&keys, Instant::now())
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    let (user, hash) = match s.store.user_with_hash(&c.username).await? {
        Some((u, h)) => (Some(u), Some(h)),
        None => (None, None),
    };
    let ok = s.passwords.verify(c.password, hash).await?;
    let Some(user) = user.filter(|_| ok) else {
        s.metrics
            .record(|| metrics::counter!("login_failures_total").increment(1));
        return Err(ApiError::Unauthorized(BAD_CREDENTIALS));
    };
    s.logins.succeeded(&keys);
    let (token, expires_at) = s.jwt.issue(user.id, &user.username)?;
    Ok(Json(LoginResponse {
        token,
        expires_at,
        user,
    }))
}

/// `GET /api/me`: the caller.
pub async fn me(State(s): State<AppState>, me: AuthUser) -> Result<Json<User>, ApiError> {
    s.store
        .user_by_id(me.id)
        .await?
        .map(Json)
        .ok_or(ApiError::Unauthorized("unknown user"))
}

#[derive(Debug, Deserialize)]
pub struct UsersQuery {
    #[serde(default)]
    online: bool,
    after: Option<i64>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct UserList {
    users: Vec<UserPresence>,
    next: Option<i64>,
}

/// `GET /api/users[?online=true][&after=ID][&limit=N]`: users ascending by id, each with
/// `online`; with `online=true` only those online.
pub async fn users(
    State(s): State<AppState>,
    _me: AuthUser,
    Query(q): Query<UsersQuery>,
) -> Result<Json<UserList>, ApiError> {
    let limit = s.chat.page_limit(q.limit)?;
    let after = q.after.unwrap_or(0);
    let online = online_users(&s).await?;
    let users = if q.online {
        let mut ids: Vec<i64> = online.iter().copied().filter(|id| *id > after).collect();
        ids.sort_unstable();
        ids.truncate(limit as usize + 1);
        s.store.users_by_ids(&ids).await?
    } else {
        s.store.list_users(after, limit + 1).await?
    };
    let (users, next) = page(users, limit, |u| u.id);
    Ok(Json(UserList {
        users: users
            .into_iter()
            .map(|u| UserPresence {
                online: online.contains(&u.id),
                id: u.id,
                username: u.username,
            })
            .collect(),
        next,
    }))
}

#[derive(Debug, Serialize)]
pub struct BlockList {
    users: Vec<User>,
}

/// `GET /api/me/blocks`: the users the caller blocks.
pub async fn blocks(State(s): State<AppState>, me: AuthUser) -> Result<Json<BlockList>, ApiError> {
    let users = s.chat.blocks(&me.actor()).await?;
    Ok(Json(BlockList { users }))
}

/// `PUT /api/me/blocks/{user_id}`: 204; idempotent.
pub async fn block(
    State(s): State<AppState>,
    me: AuthUser,
    Path(user_id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    s.chat.block(&me.actor(), user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/me/blocks/{user_id}`: 204; idempotent.
pub async fn unblock(
    State(s): State<AppState>,
    me: AuthUser,
    Path(user_id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    s.chat.unblock(&me.actor(), user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

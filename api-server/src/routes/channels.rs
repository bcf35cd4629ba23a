//! Channels, membership and direct channels: adapters over `shared::chat` (which publishes
//! the control events).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::protocol::{Channel, ChannelKind, MyChannel, Role, UserPresence};

use super::{online_users, page};
use crate::error::ApiError;
use crate::extract::{AuthUser, Json, Path, Query};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct NewChannel {
    name: String,
}

/// `POST /api/channels`: 201 channel; the creator is its first member.
pub async fn create(
    State(s): State<AppState>,
    me: AuthUser,
    Json(body): Json<NewChannel>,
) -> Result<(StatusCode, Json<Channel>), ApiError> {
    let ch = s.chat.create_channel(&me.actor(), &body.name).await?;
    Ok((StatusCode::CREATED, Json(ch)))
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    after: Option<i64>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct ChannelList<T> {
    channels: Vec<T>,
    next: Option<i64>,
}

/// `GET /api/channels[?after=ID][&limit=N]`: public (group) channels, ascending by id.
pub async fn list(
    State(s): State<AppState>,
    _me: AuthUser,
    Query(q): Query<PageQuery>,
) -> Result<Json<ChannelList<Channel>>, ApiError> {
    let limit = s.chat.page_limit(q.limit)?;
    let channels = s
        .store
        .public_channels(q.after.unwrap_or(0), limit + 1)
        .await?;
    let (channels, next) = page(channels, limit, |c| c.id);
    Ok(Json(ChannelList { channels, next }))
}

/// `GET /api/me/channels`: the caller's channels with read state (not paged).
pub async fn mine(
    State(s): State<AppState>,
    me: AuthUser,
) -> Result<Json<ChannelList<MyChannel>>, ApiError> {
    let channels = s.store.my_channels(me.id).await?;
    Ok(Json(ChannelList {
        channels,
        next: None,
    }))
}

/// `POST /api/channels/{id}/join`: 200 the channel with read state; idempotent. Direct
/// channels cannot be joined by others (403).
pub async fn join(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<i64>,
) -> Result<Json<MyChannel>, ApiError> {
    Ok(Json(s.chat.join(&me.actor(), id).await?))
}

/// `POST /api/channels/{id}/leave`: 204; idempotent.
pub async fn leave(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    s.chat.leave(&me.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize)]
pub struct MemberList {
    members: Vec<UserPresence>,
}

/// `GET /api/channels/{id}/members`: members with `online`. Members of a direct channel are
/// visible to its participants only.
pub async fn members(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<i64>,
) -> Result<Json<MemberList>, ApiError> {
    let ch = s
        .store
        .channel(id)
        .await?
        .ok_or(ApiError::NotFound("no such channel"))?;
    if ch.kind == ChannelKind::Direct && !s.store.is_member(id, me.id).await? {
        return Err(ApiError::Forbidden("not a member of this channel"));
    }
    let users = s.store.members(id).await?;
    let online = online_users(&s).await?;
    Ok(Json(MemberList {
        members: users
            .into_iter()
            .map(|u| UserPresence {
                online: online.contains(&u.id),
                id: u.id,
                username: u.username,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
pub struct NewDirect {
    user_id: i64,
}

/// `POST /api/dms` `{user_id}`: get-or-create the direct channel of the caller and that user;
/// 201 when created, 200 when it existed. Both are (again) members afterwards.
pub async fn direct(
    State(s): State<AppState>,
    me: AuthUser,
    Json(body): Json<NewDirect>,
) -> Result<(StatusCode, Json<Channel>), ApiError> {
    let dm = s.chat.direct(&me.actor(), body.user_id).await?;
    let status = if dm.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(dm.channel)))
}

#[derive(Debug, Deserialize)]
pub struct RoleBody {
    role: Role,
}

#[derive(Debug, Serialize)]
pub struct MemberRole {
    channel_id: i64,
    user_id: i64,
    role: Role,
}

/// `PUT /api/channels/{id}/members/{user_id}/role` `{role}`: the owner makes a member an
/// `admin` or a `member` again.
pub async fn set_role(
    State(s): State<AppState>,
    me: AuthUser,
    Path((id, user_id)): Path<(i64, i64)>,
    Json(body): Json<RoleBody>,
) -> Result<Json<MemberRole>, ApiError> {
    let role = s.chat.set_role(&me.actor(), id, user_id, body.role).await?;
    Ok(Json(MemberRole {
        channel_id: id,
        user_id,
        role,
    }))
}

/// `DELETE /api/channels/{id}/members/{user_id}`: an owner or admin removes a member (204,
/// also when they were not one); the member's sockets get `channel_removed`.
pub async fn remove_member(
    State(s): State<AppState>,
    me: AuthUser,
    Path((id, user_id)): Path<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    s.chat.remove_member(&me.actor(), id, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

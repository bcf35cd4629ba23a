//! Channels, membership and direct channels, with their Redis control events.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::protocol::{Channel, ChannelKind, MyChannel, UserPresence};
use shared::validate::ChannelName;
use shared::{topics, ServerFrame};

use super::{online_users, page_limit};
use crate::db::{self, Join};
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
    let name = ChannelName::parse(&body.name, &s.limits)?;
    let ch = s.store.create_channel(name.as_str(), me.id).await?;
    tracing::info!(channel_id = ch.id, user_id = me.id, "channel created");
    if let Some(my) = s.store.my_channel(me.id, ch.id).await? {
        s.publish(
            topics::user(me.id),
            &ServerFrame::ChannelAdded { channel: my },
        )
        .await;
    }
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
    let limit = page_limit(q.limit, &s.limits)?;
    let mut channels = s
        .store
        .public_channels(q.after.unwrap_or(0), limit + 1)
        .await?;
    let more = channels.len() as i64 > limit;
    channels.truncate(limit as usize);
    let next = if more {
        channels.last().map(|c| c.id)
    } else {
        None
    };
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
    match db::join(&s.store, id, me.id).await? {
        Join::NoChannel => Err(ApiError::NotFound("no such channel")),
        Join::Direct => Err(ApiError::Forbidden("direct channels cannot be joined")),
        Join::Already(my) => Ok(Json(my)),
        Join::Joined(my) => {
            tracing::info!(channel_id = id, user_id = me.id, "joined");
            let joined = ServerFrame::MemberJoined {
                channel_id: id,
                user_id: me.id,
                username: me.name.clone(),
            };
            s.publish(topics::channel(id), &joined).await;
            let added = ServerFrame::ChannelAdded {
                channel: my.clone(),
            };
            s.publish(topics::user(me.id), &added).await;
            Ok(Json(my))
        }
    }
}

/// `POST /api/channels/{id}/leave`: 204; idempotent.
pub async fn leave(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if s.store.channel(id).await?.is_none() {
        return Err(ApiError::NotFound("no such channel"));
    }
    if s.store.leave(id, me.id).await? {
        tracing::info!(channel_id = id, user_id = me.id, "left");
        let left = ServerFrame::MemberLeft {
            channel_id: id,
            user_id: me.id,
        };
        s.publish(topics::channel(id), &left).await;
        let removed = ServerFrame::ChannelRemoved { channel_id: id };
        s.publish(topics::user(me.id), &removed).await;
    }
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
/// 201 when created, 200 when it existed. Both are (again) members afterwards; whoever was not
/// gets `channel_added` on `user-{id}`.
pub async fn direct(
    State(s): State<AppState>,
    me: AuthUser,
    Json(body): Json<NewDirect>,
) -> Result<(StatusCode, Json<Channel>), ApiError> {
    if body.user_id == me.id {
        return Err(ApiError::Validation(
            "a direct channel needs another user".into(),
        ));
    }
    let other = s
        .store
        .user_by_id(body.user_id)
        .await?
        .ok_or(ApiError::NotFound("no such user"))?;
    let before = db::direct_members(&s.store, me.id, other.id).await?;
    let name = if me.id < other.id {
        format!("{},{}", me.name, other.username)
    } else {
        format!("{},{}", other.username, me.name)
    };
    let dm = s.store.direct_channel(me.id, other.id, &name).await?;
    let ch = dm.channel;
    for (user_id, username) in [(me.id, &me.name), (other.id, &other.username)] {
        if before.contains(&user_id) {
            continue;
        }
        if !dm.created {
            let joined = ServerFrame::MemberJoined {
                channel_id: ch.id,
                user_id,
                username: username.clone(),
            };
            s.publish(topics::channel(ch.id), &joined).await;
        }
        if let Some(my) = s.store.my_channel(user_id, ch.id).await? {
            s.publish(
                topics::user(user_id),
                &ServerFrame::ChannelAdded { channel: my },
            )
            .await;
        }
    }
    let status = if dm.created {
        tracing::info!(
            channel_id = ch.id,
            a = me.id,
            b = other.id,
            "direct channel created"
        );
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(ch)))
}

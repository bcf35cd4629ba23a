//! History, sends over HTTP (same rules as a WebSocket send) and read markers.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::store::{NewMessage, SendOutcome};
use shared::validate::{self, Content};
use shared::{topics, Message, ServerFrame};

use super::page_limit;
use crate::db;
use crate::error::ApiError;
use crate::extract::{AuthUser, Json, Path, Query};
use crate::state::AppState;

const NOT_MEMBER: ApiError = ApiError::Forbidden("not a member of this channel");
const NO_CHANNEL: ApiError = ApiError::NotFound("no such channel");

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    before: Option<i64>,
    after: Option<i64>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct HistoryPage {
    messages: Vec<Message>,
    next: Option<i64>,
}

/// Members only: 404 when the channel does not exist, 403 when the caller is not in it.
async fn require_member(s: &AppState, channel_id: i64, user_id: i64) -> Result<(), ApiError> {
    if s.store.is_member(channel_id, user_id).await? {
        return Ok(());
    }
    match s.store.channel(channel_id).await? {
        Some(_) => Err(NOT_MEMBER),
        None => Err(NO_CHANNEL),
    }
}

/// `GET /api/channels/{id}/messages?before=&after=&limit=`: newest first without `after`,
/// ascending with it; `next` is the cursor for the next page in the same direction.
pub async fn history(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<i64>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let limit = page_limit(q.limit, &s.limits)?;
    require_member(&s, id, me.id).await?;
    let page = s.store.history(id, q.before, q.after, limit).await?;
    Ok(Json(HistoryPage {
        messages: page.messages,
        next: page.next,
    }))
}

#[derive(Debug, Deserialize)]
pub struct SendBody {
    content: String,
    #[serde(default)]
    client_msg_id: Option<String>,
    #[serde(default)]
    reply_to: Option<i64>,
}

/// `POST /api/channels/{id}/messages`: 201 the stored message (committed through the group
/// committer, one transaction for concurrent sends), published on `channel-{id}` after the commit; 200 with the original for a retried `client_msg_id` (not published
/// again).
pub async fn send(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<i64>,
    Json(body): Json<SendBody>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let content = Content::parse(body.content, &s.limits)?;
    let client_msg_id = validate::client_msg_id(body.client_msg_id, &s.limits)?;
    if body.reply_to.is_some_and(|r| r < 1) {
        return Err(ApiError::Validation(
            "reply_to must be a seq of this channel".into(),
        ));
    }
    s.sends
        .check(me.id, Instant::now())
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    let outcome = s
        .commits
        .send(NewMessage {
            channel_id: id,
            sender_id: me.id,
            content: content.into_inner(),
            client_msg_id,
            reply_to: body.reply_to,
        })
        .await?;
    match outcome {
        SendOutcome::Stored(message) => {
            s.metrics
                .record(|| metrics::counter!("messages_sent_total").increment(1));
            let frame = ServerFrame::Message {
                message: message.clone(),
            };
            s.publish(topics::channel(id), &frame).await;
            Ok((StatusCode::CREATED, Json(message)))
        }
        SendOutcome::Duplicate(message) => Ok((StatusCode::OK, Json(message))),
        SendOutcome::NoChannel => Err(NO_CHANNEL),
        SendOutcome::NotMember => Err(NOT_MEMBER),
        SendOutcome::BadReplyTo => Err(ApiError::Validation(
            "reply_to must be the seq of an earlier message of this channel".into(),
        )),
    }
}

#[derive(Debug, Deserialize)]
pub struct ReadBody {
    seq: i64,
}

#[derive(Debug, Serialize)]
pub struct ReadMarker {
    channel_id: i64,
    last_read_seq: i64,
}

/// `POST /api/channels/{id}/read` `{seq}`: moves the marker forward (never backwards, never
/// past the last message); publishes `read` on `channel-{id}` when it moved.
pub async fn read(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<i64>,
    Json(body): Json<ReadBody>,
) -> Result<Json<ReadMarker>, ApiError> {
    if body.seq < 0 {
        return Err(ApiError::Validation("seq must not be negative".into()));
    }
    let Some((old, new)) = db::mark_read(&s.store, id, me.id, body.seq).await? else {
        require_member(&s, id, me.id).await?;
        return Err(NOT_MEMBER);
    };
    if new > old {
        let frame = ServerFrame::Read {
            channel_id: id,
            user_id: me.id,
            seq: new,
        };
        s.publish(topics::channel(id), &frame).await;
    }
    Ok(Json(ReadMarker {
        channel_id: id,
        last_read_seq: new,
    }))
}

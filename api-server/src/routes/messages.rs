//! History, threads, mentions, sends over HTTP and read markers: adapters over `shared::chat`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::chat::{SendRequest, Sent};
use shared::Message;

use crate::error::ApiError;
use crate::extract::{AuthUser, Json, Path, Query};
use crate::state::AppState;

/// The cursors of a history or thread page, `?before=SEQ&after=SEQ&limit=N` (public so the
/// fuzz target parses queries exactly as the route does).
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    pub before: Option<i64>,
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct HistoryPage {
    messages: Vec<Message>,
    next: Option<i64>,
}

/// `GET /api/channels/{id}/messages?before=&after=&limit=`: newest first without `after`,
/// ascending with it; `next` is the cursor for the next page in the same direction.
pub async fn history(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<i64>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let page = s
        .chat
        .history(me.id, id, q.before, q.after, q.limit)
        .await?;
    Ok(Json(HistoryPage {
        messages: page.messages,
        next: page.next,
    }))
}

#[derive(Debug, Serialize)]
pub struct ThreadPage {
    root: Message,
    messages: Vec<Message>,
    next: Option<i64>,
}

/// `GET /api/channels/{id}/threads/{root_seq}?before=&after=&limit=`: the root and a page of
/// its replies, with the cursors of history.
pub async fn thread(
    State(s): State<AppState>,
    me: AuthUser,
    Path((id, root)): Path<(i64, i64)>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<ThreadPage>, ApiError> {
    let t = s
        .chat
        .thread(me.id, id, root, q.before, q.after, q.limit)
        .await?;
    Ok(Json(ThreadPage {
        root: t.root,
        messages: t.messages,
        next: t.next,
    }))
}

#[derive(Debug, Deserialize)]
pub struct MentionsQuery {
    /// A message id (a string, as ids are written).
    before: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct MentionsPage {
    messages: Vec<Message>,
    /// The message id to pass as `before`, as a string.
    next: Option<String>,
}

/// `GET /api/me/mentions?before=ID&limit=N`: messages mentioning the caller, newest first.
pub async fn mentions(
    State(s): State<AppState>,
    me: AuthUser,
    Query(q): Query<MentionsQuery>,
) -> Result<Json<MentionsPage>, ApiError> {
    let before = q
        .before
        .map(|b| b.parse::<i64>())
        .transpose()
        .map_err(|_| ApiError::BadRequest("before must be a message id".into()))?;
    let page = s.chat.mentions(me.id, before, q.limit).await?;
    Ok(Json(MentionsPage {
        messages: page.messages,
        next: page.next.map(|id| id.to_string()),
    }))
}

#[derive(Debug, Deserialize)]
pub struct SendBody {
    content: String,
    #[serde(default)]
    client_msg_id: Option<String>,
    #[serde(default)]
    reply_to: Option<i64>,
    /// Ids of attachments the caller uploaded to this channel.
    #[serde(default)]
    attachments: Vec<String>,
}

/// `POST /api/channels/{id}/messages`: 201 the stored message (published on `channel-{id}`
/// after the commit), 200 the original for a retried `client_msg_id` (not published again).
pub async fn send(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<i64>,
    Json(body): Json<SendBody>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let req = SendRequest {
        channel_id: id,
        content: body.content,
        client_msg_id: body.client_msg_id,
        reply_to: body.reply_to,
        attachments: body.attachments,
    };
    match s.chat.send(me.id, req).await? {
        Sent::Stored(m) => {
            s.metrics
                .record(|| metrics::counter!("messages_sent_total").increment(1));
            Ok((StatusCode::CREATED, Json(m)))
        }
        Sent::Duplicate(m) => Ok((StatusCode::OK, Json(m))),
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
/// past the last message); the channel hears `read` when it moved.
pub async fn read(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<i64>,
    Json(body): Json<ReadBody>,
) -> Result<Json<ReadMarker>, ApiError> {
    let last_read_seq = s.chat.mark_read(me.id, id, body.seq).await?;
    Ok(Json(ReadMarker {
        channel_id: id,
        last_read_seq,
    }))
}

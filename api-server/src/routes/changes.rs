//! Changes to a message over HTTP (edit, delete, reactions): adapters over
//! `shared::chat::Chat::change`, answering the message as it is now and the event recorded.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use shared::chat::{ChangeRequest, Changed};
use shared::protocol::{Event, Message};
use shared::store::ChangeKind;

use crate::error::ApiError;
use crate::extract::{AuthUser, Json, Path, Query};
use crate::state::AppState;

/// What every change answers (200): the message after it, and the event it recorded (`null`
/// when there was nothing to change).
#[derive(Debug, Serialize)]
pub struct ChangeBody {
    message: Message,
    event: Option<Event>,
}

impl From<Changed> for ChangeBody {
    fn from(c: Changed) -> Self {
        ChangeBody {
            message: c.message,
            event: c.event,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct EditBody {
    content: String,
    #[serde(default)]
    client_msg_id: Option<String>,
}

/// The idempotency key of a change without a body (`?client_msg_id=`).
#[derive(Debug, Deserialize)]
pub struct KeyQuery {
    #[serde(default)]
    client_msg_id: Option<String>,
}

async fn apply(
    s: &AppState,
    me: &AuthUser,
    (channel_id, message_id): (i64, i64),
    kind: ChangeKind,
    client_msg_id: Option<String>,
) -> Result<Json<ChangeBody>, ApiError> {
    let req = ChangeRequest {
        channel_id,
        message_id,
        kind,
        client_msg_id,
    };
    Ok(Json(s.chat.change(me.id, req).await?.into()))
}

/// `PATCH /api/channels/{id}/messages/{message_id}` `{content, client_msg_id?}`: the sender
/// edits their message.
pub async fn edit(
    State(s): State<AppState>,
    me: AuthUser,
    Path(ids): Path<(i64, i64)>,
    Json(body): Json<EditBody>,
) -> Result<Json<ChangeBody>, ApiError> {
    let kind = ChangeKind::Edit {
        content: body.content,
    };
    apply(&s, &me, ids, kind, body.client_msg_id).await
}

/// `DELETE /api/channels/{id}/messages/{message_id}?client_msg_id=`: the sender, or an owner
/// or admin of the channel, deletes a message (a tombstone stays).
pub async fn delete(
    State(s): State<AppState>,
    me: AuthUser,
    Path(ids): Path<(i64, i64)>,
    Query(q): Query<KeyQuery>,
) -> Result<Json<ChangeBody>, ApiError> {
    apply(&s, &me, ids, ChangeKind::Delete, q.client_msg_id).await
}

/// `PUT /api/channels/{id}/messages/{message_id}/reactions/{emoji}?client_msg_id=`.
pub async fn react(
    State(s): State<AppState>,
    me: AuthUser,
    Path((channel_id, message_id, emoji)): Path<(i64, i64, String)>,
    Query(q): Query<KeyQuery>,
) -> Result<Json<ChangeBody>, ApiError> {
    let ids = (channel_id, message_id);
    apply(&s, &me, ids, ChangeKind::React { emoji }, q.client_msg_id).await
}

/// `DELETE /api/channels/{id}/messages/{message_id}/reactions/{emoji}?client_msg_id=`.
pub async fn unreact(
    State(s): State<AppState>,
    me: AuthUser,
    Path((channel_id, message_id, emoji)): Path<(i64, i64, String)>,
    Query(q): Query<KeyQuery>,
) -> Result<Json<ChangeBody>, ApiError> {
    let ids = (channel_id, message_id);
    apply(&s, &me, ids, ChangeKind::Unreact { emoji }, q.client_msg_id).await
}

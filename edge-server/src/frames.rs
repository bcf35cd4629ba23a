//! What each client frame does (SPEC section 4): an adapter over `shared::chat`. Every frame
//! that is answered yields a reply future; the session keeps them in arrival order and writes
//! each reply when its turn comes, so `ack`s, `error`s, `pong`s and `resumed` go out in the
//! order the frames came, while slow ones (a commit, a change to a message, a read marker, a
//! replay read from PostgreSQL, shared with concurrent resumes of the same channels) run
//! beside the socket's loop. `ChatError`s become `error` frames here only.

use std::future::{ready, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;
use shared::chat::{Actor, ChangeRequest, ChatError, SendRequest};
use shared::protocol::{ClientFrame, ErrorCode, ServerFrame};
use tokio::sync::oneshot;

use crate::channel::ChannelCmd;
use crate::edge::Edge;
use crate::socket::SocketHandle;

/// The frames that answer one client frame, in order; resolved beside the socket's loop.
pub type Reply = Pin<Box<dyn Future<Output = Vec<ServerFrame>> + Send>>;

fn now(frames: Vec<ServerFrame>) -> Reply {
    Box::pin(ready(frames))
}

/// The `error` frame for `e`, the one mapping of chat failures to WebSocket errors.
fn error_frame(e: &ChatError, client_msg_id: Option<String>) -> ServerFrame {
    let message = match e {
        ChatError::Unexpected(err) => {
            tracing::error!(error = format!("{err:#}"), "frame failed");
            "internal error".to_owned()
        }
        other => other.to_string(),
    };
    ServerFrame::Error {
        code: e.code(),
        message,
        client_msg_id,
        retry_after_ms: e.retry_after_ms(),
    }
}

fn refuse(e: ChatError, client_msg_id: Option<String>) -> Reply {
    now(vec![error_frame(&e, client_msg_id)])
}

/// A binary frame: refused, the socket stays open.
pub fn binary() -> Reply {
    now(vec![ServerFrame::error(
        ErrorCode::BadRequest,
        "frames must be JSON text",
    )])
}

/// Handles one text frame from the client; `None` when nothing answers it (`typing`).
pub async fn handle(edge: &Arc<Edge>, s: &Arc<SocketHandle>, text: &str) -> Option<Reply> {
    let frame = match ClientFrame::decode(text) {
        Ok(f) => f,
        Err(bad) => return Some(now(vec![bad.into()])),
    };
    match frame {
        ClientFrame::Send {
            channel_id,
            content,
            client_msg_id,
            reply_to,
            attachments,
        } => {
            let req = SendRequest {
                channel_id,
                content,
                client_msg_id,
                reply_to,
                attachments,
            };
            Some(send(edge, s, req).await)
        }
        f @ (ClientFrame::Edit { .. }
        | ClientFrame::Delete { .. }
        | ClientFrame::React { .. }
        | ClientFrame::Unreact { .. }) => {
            ChangeRequest::from_frame(f).map(|req| change(edge, s, req))
        }
        ClientFrame::Typing { channel_id } => {
            if !s.is_member(channel_id) {
                return Some(refuse(ChatError::NotMember, None));
            }
            let me = Actor {
                id: s.user_id,
                name: s.username.clone(),
            };
            edge.chat.typing(&me, channel_id);
            None
        }
        ClientFrame::Read { channel_id, seq } => {
            if !s.is_member(channel_id) {
                return Some(refuse(ChatError::NotMember, None));
            }
            let (chat, user) = (edge.chat.clone(), s.user_id);
            Some(Box::pin(async move {
                match chat.mark_read(user, channel_id, seq).await {
                    Ok(_) => Vec::new(),
                    Err(e) => vec![error_frame(&e, None)],
                }
            }))
        }
        ClientFrame::Resume { channels } => Some(resume(edge, s, channels)),
        ClientFrame::Ping => Some(now(vec![ServerFrame::Pong])),
    }
}

/// Queues a send for commit (at once, so a socket's sends commit in the order sent) and
/// answers with `ack` or `error` once it has committed.
async fn send(edge: &Arc<Edge>, s: &SocketHandle, req: SendRequest) -> Reply {
    let started = Instant::now();
    let cmid = req.client_msg_id.clone();
    // The socket knows its channels: a stranger's send costs no rate token and no commit.
    if !s.is_member(req.channel_id) {
        return refuse(ChatError::NotMember, cmid);
    }
    let pending = match edge.chat.submit(s.user_id, req).await {
        Ok(p) => p,
        Err(e) => return refuse(e, cmid),
    };
    let metrics = edge.metrics.clone();
    Box::pin(async move {
        match pending.await {
            Ok(sent) => {
                metrics.send_ack.record(started.elapsed());
                metrics.sends_acked.increment(1);
                vec![ServerFrame::Ack {
                    client_msg_id: cmid,
                    message: sent.into_message(),
                    event: None,
                }]
            }
            Err(e) => vec![error_frame(&e, cmid)],
        }
    })
}

/// Applies a change to a message (edit, delete, react, unreact) and answers with `ack` (the
/// message as it is now, and the event recorded) or `error`, with the frame's
/// `client_msg_id`. The event itself reaches every member, this socket too, on the channel.
/// A socket's changes apply one after another, in the order sent (each waits for the one
/// before; the socket's loop does not).
fn change(edge: &Arc<Edge>, s: &SocketHandle, req: ChangeRequest) -> Reply {
    let cmid = req.client_msg_id.clone();
    if !s.is_member(req.channel_id) {
        return refuse(ChatError::NotMember, cmid);
    }
    let (chat, user) = (edge.chat.clone(), s.user_id);
    let (previous, done) = s.next_change();
    Box::pin(async move {
        if let Some(previous) = previous {
            let _ = previous.await;
        }
        let result = chat.change(user, req).await;
        let _ = done.send(());
        match result {
            Ok(changed) => vec![ServerFrame::Ack {
                client_msg_id: cmid,
                message: changed.message,
                event: changed.event,
            }],
            Err(e) => vec![error_frame(&e, cmid)],
        }
    })
}

/// Replays every channel's missed messages, then `resumed`. Every channel's rows are asked
/// for at once (each request joins its channel's next shared read, see `replays`); then each
/// replay is handed to its channel's task, to deliver in order with its live messages.
fn resume(
    edge: &Arc<Edge>,
    s: &Arc<SocketHandle>,
    channels: std::collections::BTreeMap<i64, i64>,
) -> Reply {
    let (replays, hub, s) = (edge.replays.clone(), edge.hub.clone(), s.clone());
    Box::pin(async move {
        let reads = channels.into_iter().map(|(channel_id, after)| {
            let (replays, s) = (replays.clone(), s.clone());
            async move {
                let slice = if s.is_member(channel_id) {
                    replays.replay(channel_id, after).await
                } else {
                    Err(ChatError::NotMember)
                };
                (channel_id, after, slice)
            }
        });
        let mut out = Vec::new();
        for (channel_id, after, slice) in join_all(reads).await {
            let replay = match slice {
                Ok(r) => r,
                Err(e) => {
                    out.push(error_frame(&e, None));
                    continue;
                }
            };
            let Some(tx) = hub.channel(channel_id) else {
                out.push(error_frame(&ChatError::NotMember, None));
                continue;
            };
            let (done, delivered) = oneshot::channel();
            let cmd = ChannelCmd::Replay {
                socket: s.id,
                after,
                replay,
                done,
            };
            if tx.send(cmd).is_ok() {
                let _ = delivered.await;
            }
        }
        out.push(ServerFrame::Resumed);
        out
    })
}

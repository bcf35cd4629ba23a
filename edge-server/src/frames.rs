//! What each client frame does (SPEC section 4), and the one place where failures become
//! `error` frames.

use std::sync::Arc;
use std::time::Instant;

use shared::protocol::{ClientFrame, ErrorCode, ServerFrame};
use shared::store::{NewMessage, Outcome, SendOutcome, StoreError};
use shared::validate::{self, Content};
use tokio::sync::oneshot;

use crate::channel::ChannelCmd;
use crate::edge::Edge;
use crate::hub::SocketHandle;
use crate::sender::SendError;

/// Why a frame failed; turned into an `error` frame by [`reply`] only.
#[derive(Debug, thiserror::Error)]
enum FrameError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Validation(String),
    #[error("not a member of channel {0}")]
    NotMember(i64),
    #[error("too many sends; retry later")]
    RateLimited { retry_after_ms: u64 },
    #[error("the database is unavailable; retry later")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl From<StoreError> for FrameError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => FrameError::Unavailable,
            other => {
                tracing::error!(error = %other, "store error");
                FrameError::Internal
            }
        }
    }
}

impl From<SendError> for FrameError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Unavailable => FrameError::Unavailable,
            SendError::Internal => FrameError::Internal,
        }
    }
}

impl FrameError {
    fn code(&self) -> ErrorCode {
        match self {
            FrameError::BadRequest(_) => ErrorCode::BadRequest,
            FrameError::Validation(_) => ErrorCode::Validation,
            FrameError::NotMember(_) => ErrorCode::Forbidden,
            FrameError::RateLimited { .. } => ErrorCode::RateLimited,
            FrameError::Unavailable => ErrorCode::Unavailable,
            FrameError::Internal => ErrorCode::Internal,
        }
    }
}

/// Queues an `error` frame to the socket.
pub fn reply_error(s: &SocketHandle, code: ErrorCode, message: &str, cmid: Option<String>) {
    let f = ServerFrame::Error {
        code,
        message: message.to_owned(),
        client_msg_id: cmid,
        retry_after_ms: None,
    };
    s.queue.push(f.to_json().into());
}

fn reply(s: &SocketHandle, e: FrameError, cmid: Option<String>) {
    let retry_after_ms = match e {
        FrameError::RateLimited { retry_after_ms } => Some(retry_after_ms),
        _ => None,
    };
    let f = ServerFrame::Error {
        code: e.code(),
        message: e.to_string(),
        client_msg_id: cmid,
        retry_after_ms,
    };
    s.queue.push(f.to_json().into());
}

fn send_frame(s: &SocketHandle, f: &ServerFrame) {
    s.queue.push(f.to_json().into());
}

/// A send in the socket's pipeline: queued for commit, or already refused. The socket's task
/// awaits [`PendingSend::answer`] for the oldest one, then calls [`finish_send`], so a socket
/// with several sends in flight gets their replies (`ack` or `error`) in the order it sent them.
pub struct PendingSend {
    state: Pending,
    channel_id: i64,
    client_msg_id: Option<String>,
    started: Instant,
}

enum Pending {
    Queued(Outcome),
    Refused(Option<FrameError>),
}

/// What became of a pending send (opaque: only [`finish_send`] reads it).
pub struct Answer(Result<SendOutcome, FrameError>);

impl PendingSend {
    /// Resolves when the send's batch has committed (at once for a refused send).
    pub async fn answer(&mut self) -> Answer {
        match &mut self.state {
            Pending::Queued(outcome) => Answer(
                outcome
                    .await
                    .map_err(|e| FrameError::from(crate::sender::map_error(e))),
            ),
            Pending::Refused(e) => Answer(Err(e.take().unwrap_or(FrameError::Internal))),
        }
    }
}

/// Handles one text frame from the client. A valid `send` is queued for commit and returned:
/// its `ack` (or error) goes out when the caller has awaited the outcome.
pub async fn handle(edge: &Arc<Edge>, s: &Arc<SocketHandle>, text: &str) -> Option<PendingSend> {
    let frame: ClientFrame = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            let cmid = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("client_msg_id")?.as_str().map(str::to_owned));
            reply(s, FrameError::BadRequest(format!("bad frame: {e}")), cmid);
            return None;
        }
    };
    match frame {
        ClientFrame::Send {
            channel_id,
            content,
            client_msg_id,
            reply_to,
        } => {
            let started = Instant::now();
            let cmid = client_msg_id.clone();
            let state = match send(edge, s, channel_id, content, client_msg_id, reply_to).await {
                Ok(outcome) => Pending::Queued(outcome),
                Err(e) => Pending::Refused(Some(e)),
            };
            return Some(PendingSend {
                state,
                channel_id,
                client_msg_id: cmid,
                started,
            });
        }
        ClientFrame::Typing { channel_id } => {
            if !s.is_member(channel_id) {
                reply(s, FrameError::NotMember(channel_id), None);
                return None;
            }
            let f = ServerFrame::Typing {
                channel_id,
                user_id: s.user_id,
                username: s.username.clone(),
            };
            edge.publish(shared::topics::channel(channel_id), f.to_json());
        }
        ClientFrame::Read { channel_id, seq } => {
            if !s.is_member(channel_id) {
                reply(s, FrameError::NotMember(channel_id), None);
                return None;
            }
            match edge.store.mark_read(channel_id, s.user_id, seq).await {
                Ok(Some(seq)) => {
                    let f = ServerFrame::Read {
                        channel_id,
                        user_id: s.user_id,
                        seq,
                    };
                    edge.publish(shared::topics::channel(channel_id), f.to_json());
                }
                Ok(None) => reply(s, FrameError::NotMember(channel_id), None),
                Err(e) => reply(s, e.into(), None),
            }
        }
        ClientFrame::Resume { channels } => {
            for (channel_id, after) in channels {
                if let Err(e) = resume(edge, s, channel_id, after).await {
                    reply(s, e, None);
                }
            }
            send_frame(s, &ServerFrame::Resumed);
        }
        ClientFrame::Ping => send_frame(s, &ServerFrame::Pong),
    }
    None
}

/// Validates a send and queues it for commit.
async fn send(
    edge: &Arc<Edge>,
    s: &Arc<SocketHandle>,
    channel_id: i64,
    content: String,
    client_msg_id: Option<String>,
    reply_to: Option<i64>,
) -> Result<Outcome, FrameError> {
    let limits = &edge.config.limits;
    let content = Content::parse(content, limits).map_err(|e| FrameError::Validation(e.0))?;
    let client_msg_id =
        validate::client_msg_id(client_msg_id, limits).map_err(|e| FrameError::Validation(e.0))?;
    if !s.is_member(channel_id) {
        return Err(FrameError::NotMember(channel_id));
    }
    {
        let mut bucket = s.bucket.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(retry_after_ms) = bucket.take() {
            return Err(FrameError::RateLimited { retry_after_ms });
        }
    }
    Ok(edge
        .sends
        .enqueue(NewMessage {
            channel_id,
            sender_id: s.user_id,
            content: content.into_inner(),
            client_msg_id,
            reply_to,
        })
        .await?)
}

/// Answers a committed (or failed) send: `ack` with the stored message, or an `error`.
pub fn finish_send(edge: &Edge, s: &SocketHandle, pending: PendingSend, answer: Answer) {
    let PendingSend {
        channel_id,
        client_msg_id,
        started,
        ..
    } = pending;
    let message = match answer.0 {
        Ok(SendOutcome::Stored(m) | SendOutcome::Duplicate(m)) => m,
        Ok(SendOutcome::NoChannel | SendOutcome::NotMember) => {
            return reply(s, FrameError::NotMember(channel_id), client_msg_id)
        }
        Ok(SendOutcome::BadReplyTo) => {
            let e = FrameError::Validation(
                "reply_to must be the seq of an earlier message of the channel".into(),
            );
            return reply(s, e, client_msg_id);
        }
        Err(e) => return reply(s, e, client_msg_id),
    };
    send_frame(
        s,
        &ServerFrame::Ack {
            client_msg_id,
            message,
        },
    );
    edge.metrics.observe_ack(started.elapsed());
    edge.metrics
        .sends_acked
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

async fn resume(
    edge: &Arc<Edge>,
    s: &Arc<SocketHandle>,
    channel_id: i64,
    after: i64,
) -> Result<(), FrameError> {
    if after < 0 {
        return Err(FrameError::Validation("resume seqs must be >= 0".into()));
    }
    if !s.is_member(channel_id) {
        return Err(FrameError::NotMember(channel_id));
    }
    let Some(tx) = edge.hub.channel(channel_id) else {
        return Err(FrameError::NotMember(channel_id));
    };
    let (done, rx) = oneshot::channel();
    tx.send(ChannelCmd::Resume {
        socket: s.id,
        after,
        done,
    })
    .map_err(|_| FrameError::Internal)?;
    rx.await.map_err(|_| FrameError::Internal)??;
    Ok(())
}

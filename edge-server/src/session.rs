//! One WebSocket connection: a single task that reads client frames, writes the socket's
//! outbound queue, pings, and closes on expiry, drain or overflow.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::edge::Edge;
use crate::frames::{Answer, PendingSend};
use crate::hub::SocketHandle;
use crate::presence::PresenceCmd;
use crate::queue::SLOW_CONSUMER;

pub type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// Close codes of SPEC section 4.
pub const TOO_BIG: u16 = 1009;
pub const RESTARTING: u16 = 1012;
pub const TOKEN_EXPIRED: u16 = 4001;
pub const POLICY: u16 = 1008;

/// How long a close frame may take to get through to a client that is not reading.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames written per flush.
const WRITE_BATCH: usize = 64;
/// Sends one socket may have waiting for their commit; past this the socket's frames are not
/// read until the oldest is answered (back-pressure through TCP).
const MAX_PIPELINED_SENDS: usize = 64;

/// What ended the read/write loop.
enum End {
    /// The client went away or the connection broke: nothing more to write.
    Gone,
    /// Close with this code.
    Close(u16, &'static str),
}

/// Serves one upgraded socket until it closes, then unregisters it.
pub async fn run(
    edge: Arc<Edge>,
    mut ws: Ws,
    s: Arc<SocketHandle>,
    ready: Utf8Bytes,
    channels: Vec<(i64, i64)>,
    token_exp: i64,
) {
    edge.metrics.sockets.fetch_add(1, Relaxed);
    edge.hub.activate(&s, ready, &channels);
    let end = serve(&edge, &mut ws, &s, token_exp).await;
    if !matches!(end, End::Gone) {
        tracing::debug!(socket = s.id, user = s.user_id, "closing socket");
    }
    if let End::Close(code, reason) = end {
        Box::pin(close(&mut ws, code, reason)).await;
    }
    let ids = s.channel_ids();
    edge.hub.close_socket(&s);
    let _ = edge.presence.send(PresenceCmd::Closed {
        user: s.user_id,
        channels: if ids.is_empty() {
            channels.iter().map(|(c, _)| *c).collect()
        } else {
            ids
        },
    });
    edge.metrics.sockets.fetch_sub(1, Relaxed);
}

async fn serve(edge: &Arc<Edge>, ws: &mut Ws, s: &Arc<SocketHandle>, token_exp: i64) -> End {
    let cfg = &edge.config;
    let mut last_heard = Instant::now();
    let now = chrono::Utc::now().timestamp();
    let expiry = Instant::now() + Duration::from_secs(token_exp.saturating_sub(now).max(0) as u64);
    // One timer per socket, for whichever comes first: the next ping or the token's expiry.
    let mut next_ping = Instant::now() + cfg.ping_interval;
    let mut timer = pin!(tokio::time::sleep_until(next_ping.min(expiry)));
    // Sends waiting for their commit, answered in the order they came (no allocation until
    // the first send).
    let mut pending: VecDeque<PendingSend> = VecDeque::new();
    loop {
        tokio::select! {
            biased;
            _ = s.queue.ready() => {
                // Boxed: the idle task stays small; the state of a write lives on the heap
                // only while writing.
                if let Some(end) = Box::pin(write_queue(edge, ws, s)).await {
                    return end;
                }
            }
            r = oldest(&mut pending), if !pending.is_empty() => {
                if let Some(p) = pending.pop_front() {
                    crate::frames::finish_send(edge, s, p, r);
                }
            }
            m = ws.next(), if pending.len() < MAX_PIPELINED_SENDS => {
                last_heard = Instant::now();
                match m {
                    None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                        return End::Gone;
                    }
                    Some(Err(WsError::Capacity(_))) => return End::Close(TOO_BIG, "message too big"),
                    Some(Err(WsError::Protocol(_) | WsError::Utf8(_))) => {
                        return End::Close(POLICY, "protocol error");
                    }
                    Some(Err(_)) => return End::Gone,
                    Some(Ok(WsMessage::Text(t))) => {
                        edge.metrics.frames_in.fetch_add(1, Relaxed);
                        if let Some(p) = Box::pin(crate::frames::handle(edge, s, &t)).await {
                            pending.push_back(p);
                        }
                    }
                    Some(Ok(WsMessage::Binary(_))) => {
                        edge.metrics.frames_in.fetch_add(1, Relaxed);
                        crate::frames::reply_error(
                            s,
                            shared::protocol::ErrorCode::BadRequest,
                            "frames must be JSON text",
                            None,
                        );
                    }
                    Some(Ok(WsMessage::Close(_))) => {
                        // tungstenite queued the close reply: flush it and finish.
                        let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, ws.flush()).await;
                        return End::Gone;
                    }
                    Some(Ok(_)) => {} // ping (answered by tungstenite), pong, raw frame
                }
            }
            _ = &mut timer => {
                let now = Instant::now();
                if now >= expiry {
                    return End::Close(TOKEN_EXPIRED, "token expired");
                }
                if now >= next_ping {
                    if last_heard.elapsed() >= cfg.pong_timeout {
                        return End::Close(POLICY, "no pong");
                    }
                    // A client that reads nothing cannot block the socket's task for long.
                    let ping = ws.send(WsMessage::Ping(Default::default()));
                    if !matches!(tokio::time::timeout(cfg.pong_timeout, ping).await, Ok(Ok(()))) {
                        return End::Gone;
                    }
                    next_ping = now + cfg.ping_interval;
                }
                timer.as_mut().reset(next_ping.min(expiry));
            }
        }
    }
}

/// The answer to the oldest pending send (the queue is not empty: the branch is guarded).
async fn oldest(pending: &mut VecDeque<PendingSend>) -> Answer {
    match pending.front_mut() {
        Some(p) => p.answer().await,
        None => std::future::pending().await,
    }
}

/// Writes everything queued. Returns how the socket must end, if it must.
async fn write_queue(edge: &Edge, ws: &mut Ws, s: &SocketHandle) -> Option<End> {
    // Allocated for this burst only: an idle socket holds no write batch.
    let mut out: Vec<Utf8Bytes> = Vec::new();
    let end = loop {
        out.clear();
        let close = s.queue.take(WRITE_BATCH, &mut out);
        if let Some((SLOW_CONSUMER, reason)) = close {
            break Some(End::Close(SLOW_CONSUMER, reason));
        }
        if out.is_empty() {
            break close.map(|(c, r)| End::Close(c, r));
        }
        let n = out.len() as u64;
        let write = async {
            for f in out.drain(..) {
                ws.feed(WsMessage::Text(f)).await?;
            }
            ws.flush().await
        };
        let mut write = pin!(write);
        // Almost every write completes at once: the overflow watch and the timer are only set
        // up for one that blocks.
        let done = match poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
            Poll::Ready(r) => r,
            Poll::Pending => {
                // A client that does not read blocks the write: give up when its queue
                // overflows meanwhile, or when nothing moves for the pong timeout.
                let overflow = async {
                    loop {
                        s.queue.ready().await;
                        if s.queue.overflowed() {
                            return;
                        }
                    }
                };
                tokio::select! {
                    r = &mut write => r,
                    _ = overflow => break Some(End::Close(SLOW_CONSUMER, "slow consumer")),
                    _ = tokio::time::sleep(edge.config.pong_timeout) => break Some(End::Gone),
                }
            }
        };
        if done.is_err() {
            break Some(End::Gone);
        }
        edge.metrics.frames_out.fetch_add(n, Relaxed);
    };
    s.queue.release_if_empty();
    end
}

/// Sends a close frame and waits briefly for the client's reply, so that the client reads
/// everything before the connection goes away.
async fn close(ws: &mut Ws, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let closing = async {
        ws.close(Some(frame)).await?;
        while let Some(m) = ws.next().await {
            m?;
        }
        Ok::<(), WsError>(())
    };
    let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, closing).await;
}

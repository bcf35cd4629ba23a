//! One socket's whole life in one place: [`Session::open`] registers it (maps, `user-{id}`
//! subscription, presence) and builds `ready`; [`Session::run`] serves it (reads frames,
//! writes the outbound queue and the replies in order, pings, closes on expiry, drain or
//! overflow); dropping the session's [`Registration`] unregisters it, whatever ended it.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::stream::FuturesOrdered;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use shared::auth::Claims;
use shared::protocol::ServerFrame;
use shared::store::StoreError;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;

use crate::edge::Edge;
use crate::frames::{self, Reply};
use crate::presence::PresenceCmd;
use crate::queue::{OutQueue, SLOW_CONSUMER};
use crate::socket::SocketHandle;
use crate::wire::{Frame, Gather};

pub type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// Close codes of SPEC section 4.
pub const TOO_BIG: u16 = 1009;
pub const RESTARTING: u16 = 1012;
pub const TOKEN_EXPIRED: u16 = 4001;
pub const POLICY: u16 = 1008;

/// How long `user-{id}` may take to be subscribed before `ready` is read anyway.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(5);
/// How long a close frame may take to get through to a client that is not reading.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames written per flush.
const WRITE_BATCH: usize = 64;
/// Frames one socket may have waiting for their reply (sends waiting for their commit, read
/// markers, replays); past this the socket's frames are not read until the oldest is answered
/// (back-pressure through TCP).
const MAX_PENDING_REPLIES: usize = 64;

/// Why a socket could not be opened (before the upgrade: answered with an HTTP status).
#[derive(Debug)]
pub enum OpenError {
    /// The token names a user that no longer exists.
    NoUser,
    /// PostgreSQL cannot answer.
    Unavailable(StoreError),
}

/// A socket's place in the edge's maps and in the cluster's presence; dropping it takes the
/// socket out of both, from wherever the socket's life ended.
struct Registration {
    edge: Arc<Edge>,
    socket: Arc<SocketHandle>,
    /// The channels the socket opened with, announced to presence.
    opened_in: Vec<i64>,
    counted: bool,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let now_in = self.socket.channel_ids();
        self.edge.hub.close_socket(&self.socket);
        if self.counted {
            let channels = if now_in.is_empty() {
                std::mem::take(&mut self.opened_in)
            } else {
                now_in
            };
            let _ = self.edge.presence.send(PresenceCmd::Closed {
                user: self.socket.user_id,
                channels,
            });
        }
    }
}

/// An opened socket, ready to serve once the connection is upgraded.
pub struct Session {
    reg: Registration,
    ready: Frame,
    /// Channel ids with the seq `ready` announced for each.
    channels: Vec<(i64, i64)>,
    token_exp: i64,
}

/// An opened socket served by a transport other than the WebSocket (the SSE stream): active
/// in its channels, unregistered from the maps and from presence when dropped.
pub struct Opened {
    reg: Registration,
    pub token_exp: i64,
}

impl Opened {
    pub fn socket(&self) -> &Arc<SocketHandle> {
        &self.reg.socket
    }
}

/// What ended the read/write loop.
enum End {
    /// The client went away or the connection broke: nothing more to write.
    Gone,
    /// Close with this code.
    Close(u16, &'static str),
}

impl Session {
    /// Registers a socket of the token's user (and waits for `user-{id}` to be subscribed),
    /// then reads the user's channels: a membership change after this read reaches the socket
    /// as an event. Counts the socket in presence.
    pub async fn open(edge: &Arc<Edge>, claims: &Claims) -> Result<Session, OpenError> {
        let cfg = &edge.config;
        let queue = OutQueue::new(cfg.out_queue_frames, cfg.out_queue_bytes);
        let (socket, subscribed) = edge.hub.open_socket(claims.sub, &claims.name, queue);
        let mut reg = Registration {
            edge: edge.clone(),
            socket,
            opened_in: Vec::new(),
            counted: false,
        };
        let _ = tokio::time::timeout(SUBSCRIBE_WAIT, subscribed).await;
        let store = edge.chat.store();
        let user = store
            .user_by_id(claims.sub)
            .await
            .map_err(OpenError::Unavailable)?
            .ok_or(OpenError::NoUser)?;
        let mine = store
            .my_channels(claims.sub)
            .await
            .map_err(OpenError::Unavailable)?;
        let channels: Vec<(i64, i64)> = mine.iter().map(|c| (c.id, c.last_seq)).collect();
        let ready = ServerFrame::Ready {
            session_id: uuid::Uuid::new_v4().to_string(),
            user,
            edge: edge.id.clone(),
            channels: mine,
        }
        .to_json()
        .into();
        reg.opened_in = channels.iter().map(|(c, _)| *c).collect();
        let _ = edge.presence.send(PresenceCmd::Opened {
            user: claims.sub,
            channels: reg.opened_in.clone(),
        });
        reg.counted = true;
        Ok(Session {
            reg,
            ready,
            channels,
            token_exp: claims.exp,
        })
    }

    /// The channels `ready` announced, with their seqs.
    pub fn channels(&self) -> &[(i64, i64)] {
        &self.channels
    }

    /// Activates the socket for another transport: `ready` is queued, then the socket joins
    /// `channels`, each at the seq given (behind a channel's last seq: what it missed is
    /// delivered first, in order).
    pub fn activate(self, channels: &[(i64, i64)]) -> Opened {
        let Session {
            reg,
            ready,
            token_exp,
            ..
        } = self;
        reg.edge.hub.activate(&reg.socket, ready, channels);
        Opened { reg, token_exp }
    }

    /// Serves the upgraded socket until it closes; the registration goes with it. A `batch`
    /// socket (subprotocol `chat.v1.batch`) gets each wake-up's frames as one JSON array.
    pub async fn run(self, mut ws: Ws, batch: bool) {
        let Session {
            reg,
            ready,
            channels,
            token_exp,
        } = self;
        let (edge, s) = (&reg.edge, &reg.socket);
        edge.metrics.sockets.increment(1.0);
        edge.hub.activate(s, ready, &channels);
        // What a write given up on left unwritten: it goes out before the close frame, so
        // the client never reads a frame cut short.
        let mut unsent = Gather::default();
        let end = serve(edge, &mut ws, s, token_exp, batch, &mut unsent).await;
        if let End::Close(code, reason) = end {
            tracing::debug!(socket = s.id, user = s.user_id, code, "closing socket");
            Box::pin(close(&mut ws, code, reason, &mut unsent)).await;
        }
        edge.metrics.sockets.decrement(1.0);
        drop(reg);
    }
}

async fn serve(
    edge: &Arc<Edge>,
    ws: &mut Ws,
    s: &Arc<SocketHandle>,
    token_exp: i64,
    batch: bool,
    unsent: &mut Gather,
) -> End {
    let cfg = &edge.config;
    let mut last_heard = Instant::now();
    let now = chrono::Utc::now().timestamp();
    let expiry = Instant::now() + Duration::from_secs(token_exp.saturating_sub(now).max(0) as u64);
    // One timer per socket, for whichever comes first: the next ping or the token's expiry.
    let mut next_ping = Instant::now() + cfg.ping_interval;
    let mut timer = pin!(tokio::time::sleep_until(next_ping.min(expiry)));
    // Replies in the order their frames came; each resolves beside this loop.
    let mut replies: FuturesOrdered<Reply> = FuturesOrdered::new();
    loop {
        tokio::select! {
            biased;
            _ = s.queue.ready() => {
                // Boxed: the idle task stays small; the state of a write lives on the heap
                // only while writing.
                if let Some(end) = Box::pin(write_queue(edge, ws, s, batch, unsent)).await {
                    return end;
                }
            }
            Some(frames) = replies.next(), if !replies.is_empty() => {
                for f in frames {
                    s.queue.push(f.to_json().into());
                }
            }
            m = ws.next(), if replies.len() < MAX_PENDING_REPLIES => {
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
                        edge.metrics.frames_in.increment(1);
                        if let Some(r) = Box::pin(frames::handle(edge, s, &t)).await {
                            replies.push_back(r);
                        }
                    }
                    Some(Ok(WsMessage::Binary(_))) => {
                        edge.metrics.frames_in.increment(1);
                        replies.push_back(frames::binary());
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

/// Writes everything queued, each wake-up's frames in one vectored write (as one batch frame
/// for a batch socket). Returns how the socket must end, if it must.
/// A write given up on leaves the rest of its bytes in `gather`.
async fn write_queue(
    edge: &Edge,
    ws: &mut Ws,
    s: &SocketHandle,
    batch: bool,
    gather: &mut Gather,
) -> Option<End> {
    // Allocated for this burst only: an idle socket holds no write batch.
    let mut out: Vec<Frame> = Vec::new();
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
        gather.add(&out, batch);
        let mut write = pin!(write_all(ws, gather));
        // Almost every write completes at once: the overflow watch and the timer are only set
        // up for one that blocks.
        let done = match poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
            Poll::Ready(r) => r,
            Poll::Pending => {
                // A client that does not read blocks the write: give up when its queue
                // overflows meanwhile, or when nothing moves for the pong timeout.
                tokio::select! {
                    r = &mut write => r,
                    _ = s.queue.overflow() => break Some(End::Close(SLOW_CONSUMER, "slow consumer")),
                    _ = tokio::time::sleep(edge.config.pong_timeout) => break Some(End::Gone),
                }
            }
        };
        if done.is_err() {
            break Some(End::Gone);
        }
        edge.metrics.frames_out.increment(n);
    };
    s.queue.release_if_empty();
    end
}

/// Writes the gathered frames to the connection itself, past tungstenite (they are framed
/// already). Whatever tungstenite holds (a pong it owes) is flushed first, whole, so frames
/// never interleave.
async fn write_all(ws: &mut Ws, g: &mut Gather) -> Result<(), WsError> {
    ws.flush().await?;
    let io = ws.get_mut();
    while !g.is_empty() {
        let n = io.write_vectored(&g.slices()).await?;
        if n == 0 {
            return Err(WsError::Io(std::io::ErrorKind::WriteZero.into()));
        }
        g.advance(n);
    }
    Ok(())
}

/// Sends what a given-up write left and a close frame, and waits briefly for the client's
/// reply, so that the client reads everything before the connection goes away.
async fn close(ws: &mut Ws, code: u16, reason: &'static str, unsent: &mut Gather) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let closing = async {
        write_all(ws, unsent).await?;
        ws.close(Some(frame)).await?;
        while let Some(m) = ws.next().await {
            m?;
        }
        Ok::<(), WsError>(())
    };
    let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, closing).await;
}

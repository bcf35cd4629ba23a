//! One load-test socket: connect (from a chosen source address), wait for `ready`, send what it
//! is told, record every frame it receives, and with `--resume` reconnect and `resume`.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    net::{IpAddr, SocketAddr},
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use shared::{ClientFrame, ServerFrame};
use tokio::{
    net::{TcpSocket, TcpStream},
    sync::{mpsc, OwnedSemaphorePermit},
};
use tokio_tungstenite::{
    client_async_with_config,
    tungstenite::{client::IntoClientRequest, protocol::WebSocketConfig, Message as WsMessage},
    WebSocketStream,
};

use crate::{
    accounting::{Delivery, Track},
    frames::{self, Incoming},
    run::Shared,
    stats::Counters,
};

/// How long a connect, handshake or `ready` may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Duplicates and reorders described on stderr, at most (the totals are in the report).
static ANOMALIES_SHOWN: AtomicU32 = AtomicU32::new(0);
/// Commands written in one batch before a flush.
const WRITE_BATCH: usize = 64;

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Protocol(String),
}

/// What one socket is for.
#[derive(Debug, Clone)]
pub struct Plan {
    pub index: usize,
    /// Full WebSocket URLs, token included: the first for the first connection, the next ones
    /// in turn for reconnects (so `--resume` moves off a dead edge).
    pub urls: Vec<String>,
    pub source: Option<IpAddr>,
    /// The run's channels this socket's user is a member of.
    pub channels: Vec<i64>,
    /// Durable scenario: keep `pipeline` sends in flight to this channel.
    pub auto: Option<i64>,
}

/// A command from the scheduler.
#[derive(Debug, Clone, Copy)]
pub enum Cmd {
    Send { channel_id: i64 },
}

/// What a socket hands back at the end.
#[derive(Debug, Default)]
pub struct Outcome {
    pub tracks: HashMap<i64, Track>,
    /// `(channel, seq)` of every ack this socket received.
    pub acked: Vec<(i64, i64)>,
    /// Sends never acked nor refused.
    pub unacked: u64,
    pub connected: bool,
    /// Why the server side ended the last connection, if it did.
    pub closed_by_server: Option<String>,
    /// Why the first connection attempt failed, if it did.
    pub connect_error: Option<String>,
}

struct Pending {
    frame: String,
}

/// A socket's state across reconnects.
struct Socket {
    plan: Plan,
    shared: Arc<Shared>,
    out: Outcome,
    pending: HashMap<String, Pending>,
    retries: VecDeque<(Instant, String)>,
    next_id: u64,
    truncated: Vec<i64>,
}

enum End {
    Stop,
    Closed(String),
}

/// Runs one socket until the run stops; `permit` is released once the first `ready` arrives.
pub async fn run(
    plan: Plan,
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Cmd>,
    live: Arc<AtomicBool>,
    permit: OwnedSemaphorePermit,
) -> Outcome {
    let mut s = Socket {
        plan,
        shared: shared.clone(),
        out: Outcome::default(),
        pending: HashMap::new(),
        retries: VecDeque::new(),
        next_id: 0,
        truncated: Vec::new(),
    };
    let mut permit = Some(permit);
    let mut attempt = 0u32;
    loop {
        if shared.stop.is_cancelled() {
            break;
        }
        let t0 = Instant::now();
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, connect(&s.plan, attempt)).await;
        let (mut ws, ready) = match connected {
            Ok(Ok(x)) => x,
            failed => {
                if attempt == 0 {
                    s.out.connect_error = Some(match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => ConnError::Timeout.to_string(),
                    });
                    Counters::add(&shared.counters.connect_failed, 1);
                    break;
                }
                if !shared.resume || attempt >= shared.max_reconnects {
                    break;
                }
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
        };
        if attempt == 0 {
            permit.take();
            shared
                .connect
                .record(s.plan.index, t0.elapsed().as_micros() as u64);
            Counters::add(&shared.counters.connected, 1);
            s.out.connected = true;
            s.start_tracks(&ready);
        } else {
            Counters::add(&shared.counters.reconnects, 1);
            if s.after_reconnect(&mut ws, &ready).await.is_err() {
                attempt += 1;
                continue;
            }
        }
        live.store(true, Ordering::Relaxed);
        let end = s.session(&mut ws, &mut rx).await;
        live.store(false, Ordering::Relaxed);
        match end {
            End::Stop => break,
            End::Closed(why) => {
                Counters::add(&shared.counters.disconnects, 1);
                s.out.closed_by_server = Some(why);
                if !shared.resume || attempt >= shared.max_reconnects {
                    break;
                }
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
    drop(permit);
    s.out.unacked = s.pending.len() as u64;
    Counters::sub(&shared.counters.in_flight, s.out.unacked);
    s.out
}

/// Opens the TCP connection from the plan's source address and completes the handshake.
async fn connect(
    plan: &Plan,
    attempt: u32,
) -> Result<(WebSocketStream<TcpStream>, Vec<shared::protocol::MyChannel>), ConnError> {
    let url = plan
        .urls
        .get(attempt as usize % plan.urls.len().max(1))
        .ok_or_else(|| ConnError::Protocol("no URL".into()))?;
    let req = url.as_str().into_client_request()?;
    let host = req.uri().host().unwrap_or("127.0.0.1").to_owned();
    let port = req.uri().port_u16().unwrap_or(80);
    let addr: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
        .await?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| ConnError::Protocol(format!("no IPv4 address for {host}")))?;
    let sock = TcpSocket::new_v4()?;
    if let Some(ip) = plan.source {
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = sock.connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut ws, _) = client_async_with_config(req, stream, Some(ws_config())).await?;
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(t))) => {
                if let Ok(ServerFrame::Ready { channels, .. }) = serde_json::from_str(&t) {
                    return Ok((ws, channels));
                }
            }
            Some(Ok(WsMessage::Close(c))) => {
                return Err(ConnError::Protocol(format!("closed before ready: {c:?}")))
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err(ConnError::Protocol("closed before ready".into())),
        }
    }
}

/// Small buffers: the load generator holds as many sockets as the edges do.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

impl Socket {
    fn start_tracks(&mut self, ready: &[shared::protocol::MyChannel]) {
        for &c in &self.plan.channels {
            let start = ready.iter().find(|m| m.id == c).map_or(0, |m| m.last_seq);
            self.out.tracks.insert(c, Track::new(start));
        }
    }

    /// After a reconnect: `resume` every channel from what it has, then resend unacked sends.
    async fn after_reconnect(
        &mut self,
        ws: &mut WebSocketStream<TcpStream>,
        ready: &[shared::protocol::MyChannel],
    ) -> Result<(), ConnError> {
        let mut cursors = BTreeMap::new();
        for (c, t) in self.out.tracks.iter_mut() {
            let cur = t.contiguous();
            let ready_last = ready
                .iter()
                .find(|m| m.id == *c)
                .map_or(cur, |m| m.last_seq);
            t.begin_reconnect_replay(cur, ready_last);
            cursors.insert(*c, cur);
        }
        let resume = serde_json::to_string(&ClientFrame::Resume { channels: cursors })
            .map_err(|e| ConnError::Protocol(e.to_string()))?;
        ws.feed(WsMessage::text(resume)).await?;
        for p in self.pending.values() {
            ws.feed(WsMessage::text(p.frame.clone())).await?;
        }
        ws.flush().await?;
        Ok(())
    }

    fn new_send(&mut self, channel_id: i64) -> String {
        self.next_id += 1;
        let cmid = format!("{}-{}", self.plan.index, self.next_id);
        let content = frames::content(self.shared.now_micros(), self.shared.size);
        let frame = serde_json::to_string(&ClientFrame::Send {
            channel_id,
            content,
            client_msg_id: Some(cmid.clone()),
            reply_to: None,
        })
        .unwrap_or_default();
        self.pending.insert(
            cmid,
            Pending {
                frame: frame.clone(),
            },
        );
        Counters::add(&self.shared.counters.sends, 1);
        Counters::add(&self.shared.counters.in_flight, 1);
        frame
    }

    fn may_auto_send(&self) -> bool {
        self.plan.auto.is_some()
            && self.shared.start_sending.is_cancelled()
            && !self.shared.stop_sending.is_cancelled()
            && self.pending.len() < self.shared.pipeline
    }

    async fn session(
        &mut self,
        ws: &mut WebSocketStream<TcpStream>,
        rx: &mut mpsc::Receiver<Cmd>,
    ) -> End {
        let shared = self.shared.clone();
        let mut started = shared.start_sending.is_cancelled();
        loop {
            // Durable: top up the pipeline.
            let mut wrote = false;
            while self.may_auto_send() {
                let Some(ch) = self.plan.auto else { break };
                let f = self.new_send(ch);
                if let Err(e) = ws.feed(WsMessage::text(f)).await {
                    return End::Closed(e.to_string());
                }
                wrote = true;
            }
            if wrote {
                if let Err(e) = ws.flush().await {
                    return End::Closed(e.to_string());
                }
            }
            let next_retry = self.retries.front().map(|(t, _)| *t);
            tokio::select! {
                biased;
                _ = shared.stop.cancelled() => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                    return End::Stop;
                }
                _ = shared.start_sending.cancelled(), if !started => started = true,
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { continue };
                    let mut batch = vec![cmd];
                    while batch.len() < WRITE_BATCH {
                        match rx.try_recv() { Ok(c) => batch.push(c), Err(_) => break }
                    }
                    for Cmd::Send { channel_id } in batch {
                        let f = self.new_send(channel_id);
                        if let Err(e) = ws.feed(WsMessage::text(f)).await {
                            return End::Closed(e.to_string());
                        }
                    }
                    if let Err(e) = ws.flush().await {
                        return End::Closed(e.to_string());
                    }
                }
                _ = sleep_until(next_retry), if next_retry.is_some() => {
                    if let Err(e) = self.resend_due(ws).await {
                        return End::Closed(e.to_string());
                    }
                }
                msg = ws.next() => match msg {
                    Some(Ok(WsMessage::Text(t))) => {
                        if let Some(resume) = self.on_text(&t) {
                            if let Err(e) = ws.send(WsMessage::text(resume)).await {
                                return End::Closed(e.to_string());
                            }
                        }
                    }
                    Some(Ok(WsMessage::Close(c))) => {
                        return End::Closed(c.map_or("close".into(), |c| format!("close {}", u16::from(c.code))));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return End::Closed(e.to_string()),
                    None => return End::Closed("eof".into()),
                }
            }
        }
    }

    async fn resend_due(&mut self, ws: &mut WebSocketStream<TcpStream>) -> Result<(), ConnError> {
        let now = Instant::now();
        while let Some((t, _)) = self.retries.front() {
            if *t > now {
                break;
            }
            let Some((_, cmid)) = self.retries.pop_front() else {
                break;
            };
            if let Some(p) = self.pending.get(&cmid) {
                ws.feed(WsMessage::text(p.frame.clone())).await?;
            }
        }
        ws.flush().await?;
        Ok(())
    }

    /// Handles one text frame; returns a follow-up `resume` to send, if one is needed.
    fn on_text(&mut self, text: &str) -> Option<String> {
        let shared = &self.shared;
        match frames::parse(text) {
            Incoming::Message {
                channel_id,
                seq,
                sent_micros,
            } => {
                Counters::add(&shared.counters.deliveries, 1);
                if let Some(t) = sent_micros {
                    shared
                        .e2e
                        .record(self.plan.index, shared.now_micros().saturating_sub(t));
                }
                if let Some(track) = self.out.tracks.get_mut(&channel_id) {
                    let d = track.on_message(seq);
                    if matches!(d, Delivery::Duplicate | Delivery::OutOfOrder)
                        && ANOMALIES_SHOWN.fetch_add(1, Ordering::Relaxed) < 20
                    {
                        eprintln!(
                            "socket {} channel {channel_id}: {d:?} seq {seq} ({})",
                            self.plan.index,
                            track.state()
                        );
                    }
                }
            }
            Incoming::Ack {
                client_msg_id,
                channel_id,
                seq,
                sent_micros,
            } => {
                // A second ack for the same send (a retry) counts once.
                self.pending.remove(&client_msg_id)?;
                Counters::add(&shared.counters.acks, 1);
                Counters::sub(&shared.counters.in_flight, 1);
                let fan = shared
                    .channel_sockets
                    .get(&channel_id)
                    .copied()
                    .unwrap_or(0);
                Counters::add(&shared.counters.expected_live, fan);
                if let Some(t) = sent_micros {
                    shared
                        .ack
                        .record(self.plan.index, shared.now_micros().saturating_sub(t));
                }
                self.out.acked.push((channel_id, seq));
                if let Some(track) = self.out.tracks.get_mut(&channel_id) {
                    track.on_ack(seq);
                }
            }
            Incoming::Error {
                code,
                client_msg_id,
                retry_after_ms,
            } => {
                let Some(cmid) = client_msg_id.filter(|c| self.pending.contains_key(c)) else {
                    Counters::add(&shared.counters.errors, 1);
                    return None;
                };
                if code == "rate_limited" || code == "unavailable" {
                    Counters::add(&shared.counters.rate_limited, 1);
                    let wait = Duration::from_millis(retry_after_ms.unwrap_or(100).clamp(1, 5000));
                    self.retries.push_back((Instant::now() + wait, cmid));
                    self.retries.make_contiguous().sort_by_key(|(t, _)| *t);
                } else {
                    Counters::add(&shared.counters.errors, 1);
                    if self.pending.remove(&cmid).is_some() {
                        Counters::sub(&shared.counters.in_flight, 1);
                    }
                }
            }
            Incoming::ResumeTruncated { channel_id } => self.truncated.push(channel_id),
            Incoming::Resumed => {
                for t in self.out.tracks.values_mut() {
                    t.end_replay();
                }
                if !self.truncated.is_empty() {
                    let mut cursors = BTreeMap::new();
                    for c in std::mem::take(&mut self.truncated) {
                        if let Some(t) = self.out.tracks.get_mut(&c) {
                            let cur = t.contiguous();
                            t.begin_replay(cur);
                            cursors.insert(c, cur);
                        }
                    }
                    return serde_json::to_string(&ClientFrame::Resume { channels: cursors }).ok();
                }
            }
            Incoming::Other => {}
        }
        None
    }
}

/// Wait before reconnect `attempt`: 100 ms, growing to 1 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * u64::from(attempt.min(10)))
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

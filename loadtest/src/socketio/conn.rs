//! One load-test socket in `--protocol socketio` mode: a WebSocket to the peer's Socket.IO
//! endpoint (Engine.IO handshake, namespace connect with auth), pongs to every ping, sends
//! `send` events with acks as the scheduler (or the durable pipeline) says, and feeds every ack
//! and `message` into the same counters, histograms and seq tracks as the chat protocol's
//! sockets. No reconnect: a closed socket counts what it misses as lost.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use chat_client::{ConnectError, Track};
use futures_util::{SinkExt, StreamExt};
use tokio::{
    net::TcpStream,
    sync::{mpsc, OwnedSemaphorePermit},
};
use tokio_tungstenite::{
    client_async_with_config,
    tungstenite::{protocol::WebSocketConfig, Message as WsMessage, Utf8Bytes},
    WebSocketStream,
};

use super::{
    events::{self, Auth, Incoming},
    packet::{self, Kind, Packet},
};
use crate::{
    conn::{Cmd, Outcome, Plan},
    frames,
    state::Shared,
    stats::Counters,
};

/// How long the TCP connect, the WebSocket handshake and the namespace connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Commands written in one batch before a flush.
const WRITE_BATCH: usize = 64;
/// Duplicates and reorders described on stderr, at most (the totals are in the report).
static ANOMALIES_SHOWN: AtomicU32 = AtomicU32::new(0);

type Ws = WebSocketStream<TcpStream>;

/// A send waiting for its ack.
#[derive(Debug, Clone, Copy)]
struct Pending {
    channel_id: i64,
    sent_micros: u64,
}

/// One socket's state.
struct Socket {
    plan: Plan,
    shared: Arc<Shared>,
    tracks: HashMap<i64, Track>,
    pending: HashMap<u64, Pending>,
    next_ack: u64,
    out: Outcome,
}

/// Runs one socket until the run stops; `permit` is released once the namespace connect is
/// answered.
pub async fn run(
    plan: Plan,
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Cmd>,
    live: Arc<AtomicBool>,
    permit: OwnedSemaphorePermit,
) -> Outcome {
    let mut s = Socket::new(plan, shared.clone());
    if shared.stop.is_cancelled() {
        return s.finish();
    }
    let t0 = Instant::now();
    let opened = tokio::time::timeout(CONNECT_TIMEOUT, s.open()).await;
    let mut ws = match opened {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => return s.connect_failed(e),
        Err(_) => return s.connect_failed(ConnectError::Timeout),
    };
    drop(permit);
    shared
        .connect
        .record(s.plan.index, t0.elapsed().as_micros() as u64);
    Counters::add(&shared.counters.connected, 1);
    s.out.connected = true;
    live.store(true, Ordering::Relaxed);
    let ended = s.session(&mut ws, &mut rx).await;
    live.store(false, Ordering::Relaxed);
    if let Some(why) = ended {
        Counters::add(&shared.counters.disconnects, 1);
        s.out.closed_by_server = Some(why);
    }
    s.finish()
}

/// Small buffers, as for the chat protocol's sockets.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// The next text frame; a close or the end of the stream is an error here.
async fn next_text(ws: &mut Ws) -> Result<Utf8Bytes, ConnectError> {
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(t))) => return Ok(t),
            Some(Ok(WsMessage::Close(c))) => {
                return Err(ConnectError::Protocol(format!("closed: {c:?}")))
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err(ConnectError::Protocol("closed".into())),
        }
    }
}

impl Socket {
    fn new(plan: Plan, shared: Arc<Shared>) -> Self {
        let tracks = plan.channels.iter().map(|&c| (c, Track::new(0))).collect();
        Socket {
            plan,
            shared,
            tracks,
            pending: HashMap::new(),
            next_ack: 0,
            out: Outcome::default(),
        }
    }

    fn connect_failed(mut self, e: ConnectError) -> Outcome {
        self.out.connect_error = Some(e.to_string());
        Counters::add(&self.shared.counters.connect_failed, 1);
        self.finish()
    }

    fn finish(self) -> Outcome {
        let mut out = self.out;
        out.tracks = self.tracks;
        out.unacked = self.pending.len() as u64;
        Counters::sub(&self.shared.counters.in_flight, out.unacked);
        out
    }

    /// WebSocket handshake, Engine.IO open, namespace connect with auth, its answer.
    async fn open(&self) -> Result<Ws, ConnectError> {
        let url = self
            .plan
            .urls
            .first()
            .ok_or_else(|| ConnectError::Protocol("no URL".into()))?;
        let stream = chat_client::dial(url, self.plan.source).await?;
        let (mut ws, _) = client_async_with_config(url.as_str(), stream, Some(ws_config())).await?;
        let first = next_text(&mut ws).await?;
        match packet::decode(&first) {
            Ok(Packet::Open(_)) => {}
            _ => {
                return Err(ConnectError::Protocol(format!(
                    "not an open packet: {first}"
                )))
            }
        }
        let auth = Auth {
            user_id: self.plan.user_id,
            channels: &self.plan.channels,
        };
        let connect = packet::connect(&auth).map_err(|e| ConnectError::Protocol(e.to_string()))?;
        ws.send(WsMessage::text(connect)).await?;
        loop {
            let text = next_text(&mut ws).await?;
            match packet::decode(&text) {
                Ok(Packet::Ping(_)) => ws.send(WsMessage::text(packet::PONG)).await?,
                Ok(Packet::Socket(p)) if p.kind == Kind::Connect && p.namespace == "/" => {
                    p.payload::<events::Connected>()
                        .map_err(|e| ConnectError::Protocol(format!("{text}: {e}")))?;
                    return Ok(ws);
                }
                Ok(Packet::Socket(p)) if p.kind == Kind::ConnectError => {
                    return Err(ConnectError::Protocol(format!("connect error: {}", p.data)))
                }
                Ok(Packet::Close) => return Err(ConnectError::Protocol("engine.io close".into())),
                Ok(_) => {}
                Err(e) => return Err(ConnectError::Protocol(format!("{text}: {e}"))),
            }
        }
    }

    fn new_send(&mut self, channel_id: i64) -> Option<Utf8Bytes> {
        self.next_ack += 1;
        let ack_id = self.next_ack;
        let cmid = format!("{}-{}", self.plan.index, ack_id);
        let now = self.shared.now_micros();
        let content = frames::content(now, self.shared.size);
        let send = events::Send {
            channel_id,
            content: &content,
            client_msg_id: &cmid,
        };
        let text = packet::event_with_ack(ack_id, "send", &send).ok()?;
        self.pending.insert(
            ack_id,
            Pending {
                channel_id,
                sent_micros: now,
            },
        );
        Counters::add(&self.shared.counters.sends, 1);
        Counters::add(&self.shared.counters.in_flight, 1);
        Some(Utf8Bytes::from(text))
    }

    fn may_auto_send(&self) -> bool {
        self.plan.auto.is_some()
            && self.shared.start_sending.is_cancelled()
            && !self.shared.stop_sending.is_cancelled()
            && self.pending.len() < self.shared.pipeline
    }

    /// Runs the connected socket; returns why the server side ended it, if it did.
    async fn session(&mut self, ws: &mut Ws, rx: &mut mpsc::Receiver<Cmd>) -> Option<String> {
        let shared = self.shared.clone();
        let mut started = shared.start_sending.is_cancelled();
        loop {
            // Durable: top up the pipeline.
            let mut wrote = false;
            while self.may_auto_send() {
                let Some(ch) = self.plan.auto else { break };
                let Some(f) = self.new_send(ch) else { break };
                if let Err(e) = ws.feed(WsMessage::Text(f)).await {
                    return Some(e.to_string());
                }
                wrote = true;
            }
            if wrote {
                if let Err(e) = ws.flush().await {
                    return Some(e.to_string());
                }
            }
            tokio::select! {
                biased;
                _ = shared.stop.cancelled() => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                    return None;
                }
                _ = shared.start_sending.cancelled(), if !started => started = true,
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { continue };
                    let mut batch = vec![cmd];
                    while batch.len() < WRITE_BATCH {
                        match rx.try_recv() { Ok(c) => batch.push(c), Err(_) => break }
                    }
                    for Cmd::Send { channel_id } in batch {
                        let Some(f) = self.new_send(channel_id) else { continue };
                        if let Err(e) = ws.feed(WsMessage::Text(f)).await {
                            return Some(e.to_string());
                        }
                    }
                    if let Err(e) = ws.flush().await {
                        return Some(e.to_string());
                    }
                }
                msg = ws.next() => match msg {
                    Some(Ok(WsMessage::Text(t))) => match self.on_text(&t) {
                        Reply::Nothing => {}
                        Reply::Pong => {
                            if let Err(e) = ws.send(WsMessage::text(packet::PONG)).await {
                                return Some(e.to_string());
                            }
                        }
                        Reply::End(why) => return Some(why),
                    },
                    Some(Ok(WsMessage::Close(Some(c)))) => {
                        return Some(format!("close {}", u16::from(c.code)))
                    }
                    Some(Ok(WsMessage::Close(None))) => return Some("close".into()),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Some(e.to_string()),
                    None => return Some("eof".into()),
                }
            }
        }
    }

    /// Accounts one text frame.
    fn on_text(&mut self, text: &str) -> Reply {
        let shared = &self.shared;
        match events::read(text) {
            Ok(Incoming::Ping) => return Reply::Pong,
            Ok(Incoming::Message(m)) => {
                Counters::add(&shared.counters.deliveries, 1);
                if let Some(t) = frames::sent_micros(&m.content) {
                    shared
                        .e2e
                        .record(self.plan.index, shared.now_micros().saturating_sub(t));
                }
                if let Some(track) = self.tracks.get_mut(&m.channel_id) {
                    let d = track.on_message(m.seq);
                    if d.is_violation() && ANOMALIES_SHOWN.fetch_add(1, Ordering::Relaxed) < 20 {
                        eprintln!(
                            "socket {} channel {}: {d:?} seq {} ({})",
                            self.plan.index,
                            m.channel_id,
                            m.seq,
                            track.state()
                        );
                    }
                }
            }
            Ok(Incoming::Ack { ack_id, ack }) => {
                let Some(p) = self.pending.remove(&ack_id) else {
                    Counters::add(&shared.counters.errors, 1);
                    return Reply::Nothing;
                };
                Counters::sub(&shared.counters.in_flight, 1);
                match (ack.seq, ack.error) {
                    (Some(seq), None) => {
                        Counters::add(&shared.counters.acks, 1);
                        let fan = shared
                            .channel_sockets
                            .get(&p.channel_id)
                            .copied()
                            .unwrap_or(0);
                        Counters::add(&shared.counters.expected_live, fan);
                        shared.ack.record(
                            self.plan.index,
                            shared.now_micros().saturating_sub(p.sent_micros),
                        );
                        if let Some(t) = self.tracks.get_mut(&p.channel_id) {
                            t.on_ack(seq);
                        }
                        self.out.acked.push((p.channel_id, seq));
                    }
                    _ => Counters::add(&shared.counters.errors, 1),
                }
            }
            Ok(Incoming::Ended(why)) => return Reply::End(why),
            Ok(Incoming::Other) => {}
            Err(e) => {
                Counters::add(&shared.counters.errors, 1);
                if ANOMALIES_SHOWN.fetch_add(1, Ordering::Relaxed) < 20 {
                    eprintln!("socket {}: unreadable frame {text}: {e}", self.plan.index);
                }
            }
        }
        Reply::Nothing
    }
}

/// What a frame calls for.
enum Reply {
    Nothing,
    Pong,
    End(String),
}

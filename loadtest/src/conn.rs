//! One load-test socket: a `chat-client` connection (from a chosen source address) that sends
//! what it is told, accounts every frame it receives, and with `--resume` reconnects (backoff,
//! next target) and resumes.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use chat_client::{
    Client, Connection, Disconnect, Event, Incoming, Next, Options, Refusal, Track, Utf8Bytes,
    WebSocketConfig,
};
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use crate::{
    frames,
    mixed::{Mix, Op},
    state::Shared,
    stats::Counters,
};

/// How long a connect, handshake or `ready` may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Duplicates and reorders described on stderr, at most (the totals are in the report).
static ANOMALIES_SHOWN: AtomicU32 = AtomicU32::new(0);
/// Commands written in one batch before a flush.
const WRITE_BATCH: usize = 64;

/// What one socket is for.
#[derive(Debug, Clone)]
pub struct Plan {
    pub index: usize,
    /// The user this socket belongs to (the chat protocol names it by the token in the URL;
    /// `--protocol socketio` passes it in the connect packet's auth).
    pub user_id: i64,
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

/// A socket's state across reconnects.
struct Socket {
    index: usize,
    auto: Option<i64>,
    shared: Arc<Shared>,
    client: Client,
    out: Outcome,
    next_id: u64,
    /// Mixed scenario: own messages to change.
    mix: Option<Mix>,
}

enum End {
    Stop,
    Closed(Disconnect),
}

/// Runs one socket until the run stops; `permit` is released once the first `ready` arrives.
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
    let mut conn = match s.client.connect().await {
        Ok((conn, _)) => conn,
        Err(e) => {
            s.out.connect_error = Some(e.to_string());
            Counters::add(&shared.counters.connect_failed, 1);
            return s.finish();
        }
    };
    drop(permit);
    shared
        .connect
        .record(s.index, t0.elapsed().as_micros() as u64);
    Counters::add(&shared.counters.connected, 1);
    s.out.connected = true;
    loop {
        live.store(true, Ordering::Relaxed);
        let end = s.session(&mut conn, &mut rx).await;
        live.store(false, Ordering::Relaxed);
        let End::Closed(why) = end else { break };
        Counters::add(&shared.counters.disconnects, 1);
        shared.counters.disconnected_at(shared.now_micros());
        s.out.closed_by_server = Some(why.to_string());
        if !shared.resume || why.next() != Next::Reconnect {
            break;
        }
        let reconnected = tokio::select! {
            r = s.client.reconnect() => r,
            _ = shared.stop.cancelled() => break,
        };
        let Ok((next, _)) = reconnected else { break };
        Counters::add(&shared.counters.reconnects, 1);
        conn = next;
    }
    s.finish()
}

/// Small buffers: the load generator holds as many sockets as the edges do.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

impl Socket {
    fn new(plan: Plan, shared: Arc<Shared>) -> Self {
        let mut opts = Options::new(plan.urls);
        opts.source = plan.source;
        opts.channels = Some(plan.channels);
        opts.connect_timeout = CONNECT_TIMEOUT;
        opts.max_reconnects = shared.max_reconnects;
        opts.ws_config = ws_config();
        opts.batch = shared.batch;
        let mix = shared.mixed.then(Mix::default);
        Socket {
            index: plan.index,
            auto: plan.auto,
            shared,
            client: Client::new(opts),
            out: Outcome::default(),
            next_id: 0,
            mix,
        }
    }

    fn finish(self) -> Outcome {
        let mut out = self.out;
        let (seqs, outbox) = self.client.into_parts();
        out.tracks = seqs.into_tracks();
        out.unacked = outbox.len() as u64;
        Counters::sub(&self.shared.counters.in_flight, out.unacked);
        out
    }

    /// A new message to `channel_id`, or in the mixed scenario perhaps a change to one of
    /// this socket's own messages there.
    fn new_send(&mut self, channel_id: i64) -> Utf8Bytes {
        self.next_id += 1;
        let (now, size) = (self.shared.now_micros(), self.shared.size);
        Counters::add(&self.shared.counters.sends, 1);
        Counters::add(&self.shared.counters.in_flight, 1);
        let change = self.mix.as_mut().and_then(|m| {
            let content = || frames::content(now, size);
            m.next(
                &mut rand::rng(),
                channel_id,
                self.index,
                self.next_id,
                content,
            )
        });
        if let Some(f) = change.and_then(|(_, _, frame)| self.client.change(&frame)) {
            return f;
        }
        let cmid = Op::Send.client_msg_id(self.index, self.next_id);
        self.client
            .send(channel_id, frames::content(now, size), cmid)
    }

    fn may_auto_send(&self) -> bool {
        self.auto.is_some()
            && self.shared.start_sending.is_cancelled()
            && !self.shared.stop_sending.is_cancelled()
            && self.client.outbox().len() < self.shared.pipeline
    }

    async fn session(&mut self, conn: &mut Connection, rx: &mut mpsc::Receiver<Cmd>) -> End {
        let shared = self.shared.clone();
        let mut started = shared.start_sending.is_cancelled();
        loop {
            // Durable: top up the pipeline.
            let mut wrote = false;
            while self.may_auto_send() {
                let Some(ch) = self.auto else { break };
                let f = self.new_send(ch);
                if let Err(e) = conn.feed(f).await {
                    return End::Closed(e);
                }
                wrote = true;
            }
            if wrote {
                if let Err(e) = conn.flush().await {
                    return End::Closed(e);
                }
            }
            let retrying = self.client.next_retry().is_some();
            tokio::select! {
                biased;
                _ = shared.stop.cancelled() => {
                    conn.close(Duration::from_secs(2)).await;
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
                        if let Err(e) = conn.feed(f).await {
                            return End::Closed(e);
                        }
                    }
                    if let Err(e) = conn.flush().await {
                        return End::Closed(e);
                    }
                }
                _ = self.client.retry_due(), if retrying => {
                    if let Err(e) = self.client.resend_due(conn).await {
                        return End::Closed(e);
                    }
                }
                text = conn.next_text() => match text {
                    Ok(t) => {
                        if let Some(resume) = self.on_text(&t) {
                            if let Err(e) = conn.send_text(resume).await {
                                return End::Closed(e);
                            }
                        }
                    }
                    Err(e) => return End::Closed(e),
                }
            }
        }
    }

    /// Accounts one text frame; returns a follow-up `resume` to send, if one is needed.
    fn on_text(&mut self, text: &str) -> Option<Utf8Bytes> {
        let frame = chat_client::frames::parse(text);
        let event = self.client.handle(&frame);
        let shared = &self.shared;
        match (frame, event) {
            (Incoming::Event { channel_id, seq }, Event::Change(delivery)) => {
                Counters::add(&shared.counters.deliveries, 1);
                Counters::add(&shared.counters.changes_delivered, 1);
                self.show_violation(channel_id, seq, delivery);
            }
            (
                Incoming::Message {
                    channel_id,
                    seq,
                    content,
                },
                Event::Message(delivery),
            ) => {
                Counters::add(&shared.counters.deliveries, 1);
                if let Some(t) = frames::sent_micros(&content) {
                    let us = shared.now_micros().saturating_sub(t);
                    shared.e2e.record(self.index, us);
                    shared
                        .counters
                        .max_latency_us
                        .fetch_max(us, Ordering::Relaxed);
                }
                self.show_violation(channel_id, seq, delivery);
            }
            // A second ack for the same send (a retry) counts once.
            (
                Incoming::Ack {
                    client_msg_id,
                    channel_id,
                    seq,
                    content,
                    message_id,
                    change,
                },
                Event::Ack { first: true },
            ) => {
                let op = client_msg_id.as_deref().and_then(Op::of);
                if let Some(mix) = &mut self.mix {
                    match (op, client_msg_id.as_deref()) {
                        (Some(Op::Send), _) => mix.on_sent(channel_id, message_id),
                        (_, Some(id)) => mix.on_answered(id),
                        _ => {}
                    }
                }
                if let Some(op) = op.filter(|_| change) {
                    shared.counters.change_acked(op);
                }
                Counters::add(&shared.counters.acks, 1);
                Counters::sub(&shared.counters.in_flight, 1);
                let fan = shared
                    .channel_sockets
                    .get(&channel_id)
                    .copied()
                    .unwrap_or(0);
                Counters::add(&shared.counters.expected_live, fan);
                // A reaction's or a delete's ack carries the message's old content.
                if let Some(t) = frames::sent_micros(&content).filter(|_| !change) {
                    shared
                        .ack
                        .record(self.index, shared.now_micros().saturating_sub(t));
                }
                self.out.acked.push((channel_id, seq));
            }
            (_, Event::Error(Refusal::Retrying)) => {
                Counters::add(&shared.counters.rate_limited, 1);
            }
            (_, Event::Error(Refusal::Unrelated)) => Counters::add(&shared.counters.errors, 1),
            (Incoming::Error { client_msg_id, .. }, Event::Error(Refusal::Refused)) => {
                if let (Some(mix), Some(id)) = (&mut self.mix, client_msg_id.as_deref()) {
                    mix.on_answered(id);
                }
                Counters::add(&shared.counters.errors, 1);
                Counters::sub(&shared.counters.in_flight, 1);
            }
            (_, Event::Resumed(follow_up)) => {
                if follow_up.is_none() && self.client.reconnects() > 0 {
                    shared.counters.resumed_at(shared.now_micros());
                }
                return follow_up;
            }
            _ => {}
        }
        None
    }

    /// Describes a lost, duplicated or reordered delivery on stderr (the first few of the run).
    fn show_violation(&self, channel_id: i64, seq: i64, delivery: Option<chat_client::Delivery>) {
        let Some(d) = delivery.filter(|d| d.is_violation()) else {
            return;
        };
        if ANOMALIES_SHOWN.fetch_add(1, Ordering::Relaxed) < 20 {
            let track = self.client.seqs().get(channel_id);
            eprintln!(
                "socket {} channel {channel_id}: {d:?} seq {seq} ({})",
                self.index,
                track.map(Track::state).unwrap_or_default()
            );
        }
    }
}

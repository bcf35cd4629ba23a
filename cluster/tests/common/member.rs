//! A chat member as a well-behaved client: one `chat-client` socket through HAProxy at a time,
//! which on a dropped connection, 1012 or 4008 reconnects with backoff, sends `resume` with the
//! last contiguous seq of each channel and resends its unacked sends with the same
//! `client_msg_id`. It records what every socket received and flags any socket that sees a
//! seq twice or out of order (the accounting rules of loadtest, BENCHMARKS.md).
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_client::{
    Backoff, Client, ConnectError, Connection, Delivery, Disconnect, Event, Incoming, Next,
    Options, RecvError, Utf8Bytes,
};
use shared::protocol::ServerFrame;
use tokio::sync::{mpsc, oneshot};

use super::WAIT;

/// Reconnect attempts over a member's life: about 20 s of an unreachable cluster.
const RECONNECTS: u32 = 40;

enum Cmd {
    Send {
        channel: i64,
        content: String,
        id: String,
    },
    Close,
}

#[derive(Default)]
struct State {
    /// `ready.edge` of each socket, in order.
    edges: Vec<String>,
    /// Close code of each socket that ended (None: no close frame, e.g. the edge was killed).
    closes: Vec<Option<u16>>,
    /// Seqs known before this member's first socket, per channel.
    base: BTreeMap<i64, i64>,
    /// Seqs that reached this member as a `message`, per channel.
    received: BTreeMap<i64, BTreeSet<i64>>,
    /// Its own sends acked on a socket that ended before their `message` came, up to the
    /// `resume` cursor: the ack carried the stored message, so `resume` does not ask again.
    held_by_ack: BTreeSet<(i64, i64)>,
    acks: BTreeMap<String, (i64, i64)>,
    /// Sends not yet acked.
    pending: usize,
    violations: Vec<String>,
    errors: Vec<String>,
    /// Messages a `resume` replayed that this member already had (allowed).
    replayed: usize,
}

/// A member; dropping it ends its task.
pub struct Member {
    pub name: String,
    cmd: mpsc::UnboundedSender<Cmd>,
    state: Arc<Mutex<State>>,
    counter: Arc<AtomicU64>,
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.cmd.send(Cmd::Close);
    }
}

impl Member {
    /// Connects through HAProxy and returns once the first `ready` arrived.
    pub async fn connect(ws_url: &str, name: String, token: String) -> Member {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(Mutex::new(State::default()));
        let (ready_tx, ready_rx) = oneshot::channel();
        let mut opts = Options::new(vec![format!("{ws_url}?token={token}")]);
        opts.connect_timeout = WAIT;
        opts.max_reconnects = RECONNECTS;
        opts.backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let client = Client::new(opts);
        tokio::spawn(run(client, name.clone(), rx, state.clone(), ready_tx));
        tokio::time::timeout(WAIT, ready_rx)
            .await
            .unwrap_or_else(|_| panic!("{name}: no ready within {WAIT:?}"))
            .unwrap_or_else(|_| panic!("{name}: could not connect"));
        Member {
            name,
            cmd: tx,
            state,
            counter: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Sends a message (resent after reconnects until acked); returns its `client_msg_id`.
    pub fn send(&self, channel: i64, content: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n}", self.name);
        let _ = self.cmd.send(Cmd::Send {
            channel,
            content: content.to_owned(),
            id: id.clone(),
        });
        id
    }

    fn with<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.lock().unwrap())
    }

    /// The edge of the current (last) socket.
    pub fn edge(&self) -> String {
        self.with(|s| s.edges.last().cloned().unwrap_or_default())
    }

    pub fn edges(&self) -> Vec<String> {
        self.with(|s| s.edges.clone())
    }

    pub fn closes(&self) -> Vec<Option<u16>> {
        self.with(|s| s.closes.clone())
    }

    pub fn pending(&self) -> usize {
        self.with(|s| s.pending)
    }

    pub fn acked_seqs(&self, channel: i64) -> Vec<i64> {
        self.with(|s| {
            s.acks
                .values()
                .filter(|(c, _)| *c == channel)
                .map(|(_, seq)| *seq)
                .collect()
        })
    }

    pub fn received(&self, channel: i64) -> BTreeSet<i64> {
        self.with(|s| s.received.get(&channel).cloned().unwrap_or_default())
    }

    pub fn missing(&self, channel: i64, last: i64) -> Vec<i64> {
        self.with(|s| {
            let base = s.base.get(&channel).copied().unwrap_or(0);
            let got = s.received.get(&channel);
            (base + 1..=last)
                .filter(|q| !got.is_some_and(|g| g.contains(q)))
                .filter(|q| !s.held_by_ack.contains(&(channel, *q)))
                .collect()
        })
    }

    pub fn has_all(&self, channel: i64, last: i64) -> bool {
        self.missing(channel, last).is_empty()
    }

    pub fn violations(&self) -> Vec<String> {
        self.with(|s| s.violations.clone())
    }

    /// Messages a `resume` replayed that this member already had.
    pub fn replayed(&self) -> usize {
        self.with(|s| s.replayed)
    }

    pub fn errors(&self) -> Vec<String> {
        self.with(|s| s.errors.clone())
    }

    /// Waits until every send of this member is acked (call after its traffic stopped).
    pub async fn wait_acked(&self) {
        let deadline = Instant::now() + WAIT;
        let sent = usize::try_from(self.counter.load(Ordering::Relaxed)).unwrap_or(0);
        while self.pending() > 0 || self.with(|s| s.acks.len()) < sent {
            assert!(
                Instant::now() < deadline,
                "{}: {} sends unacked after {WAIT:?}; errors {:?}",
                self.name,
                self.pending(),
                self.errors()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The member's task: a socket at a time until `Cmd::Close`, a final close or no reconnect.
async fn run(
    mut client: Client,
    name: String,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    state: Arc<Mutex<State>>,
    ready_tx: oneshot::Sender<()>,
) {
    let mut ready_tx = Some(ready_tx);
    let mut opened = client.connect().await;
    loop {
        let (mut conn, ready) = match opened {
            Ok(x) => x,
            Err(ConnectError::NotReady(f)) => {
                return violation(&state, format!("{name}: first frame not ready: {f}"));
            }
            // The first connect is retried like a reconnect.
            Err(e) if !e.is_final() && ready_tx.is_some() => {
                opened = client.reconnect().await;
                continue;
            }
            Err(e) => return violation(&state, format!("{name}: reconnect failed: {e}")),
        };
        {
            let mut s = state.lock().unwrap();
            s.edges.push(ready.edge);
            if ready_tx.is_some() {
                for (c, t) in client.seqs().tracks() {
                    s.base.insert(*c, t.start());
                }
            }
        }
        if let Some(tx) = ready_tx.take() {
            let _ = tx.send(());
        }
        let socket = state.lock().unwrap().edges.len();
        let Some(end) = serve(&mut client, &mut conn, &mut rx, &state, socket).await else {
            return;
        };
        {
            let mut s = state.lock().unwrap();
            s.closes.push(end.code());
            s.hold_acked_unseen(&client);
        }
        if end.next() != Next::Reconnect {
            return violation(
                &state,
                format!("{name}: closed with {end}, not reconnecting"),
            );
        }
        opened = client.reconnect().await;
    }
}

impl State {
    /// At a socket's end: own acked seqs with no `message` yet, at or below the channel's
    /// `resume` cursor, will not be replayed.
    fn hold_acked_unseen(&mut self, client: &Client) {
        let unseen: Vec<(i64, i64)> = self
            .acks
            .values()
            .filter(|(c, seq)| !self.received.get(c).is_some_and(|r| r.contains(seq)))
            .filter(|(c, seq)| {
                client
                    .seqs()
                    .get(*c)
                    .is_some_and(|t| *seq <= t.contiguous())
            })
            .copied()
            .collect();
        self.held_by_ack.extend(unseen);
    }
}

fn violation(state: &Mutex<State>, v: String) {
    state.lock().unwrap().violations.push(v);
}

/// Serves one socket: sends, retries, frames. `None` once told to close.
async fn serve(
    client: &mut Client,
    conn: &mut Connection,
    rx: &mut mpsc::UnboundedReceiver<Cmd>,
    state: &Mutex<State>,
    socket: usize,
) -> Option<Disconnect> {
    loop {
        // A failed write is not the end: the read that follows says how the socket ended
        // (the close code the tests check), and the outbox resends after the reconnect.
        let _ = tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Cmd::Send { channel, content, id }) => {
                    let f = client.send(channel, content, id);
                    state.lock().unwrap().pending = client.outbox().len();
                    conn.send_text(f).await
                }
                Some(Cmd::Close) | None => {
                    conn.close(Duration::from_secs(2)).await;
                    return None;
                }
            },
            _ = client.retry_due() => client.resend_due(conn).await,
            got = conn.recv() => match got {
                Ok(frame) => match record(client, state, socket, &frame) {
                    Some(follow_up) => conn.send_text(follow_up).await,
                    None => Ok(()),
                },
                Err(RecvError::Malformed { text, error }) => {
                    violation(state, format!("socket {socket}: unreadable {text}: {error}"));
                    Ok(())
                }
                Err(RecvError::Disconnected(d)) => return Some(d),
            },
        };
    }
}

/// Applies one frame to the client and records it; returns a follow-up frame to write.
fn record(
    client: &mut Client,
    state: &Mutex<State>,
    socket: usize,
    frame: &ServerFrame,
) -> Option<Utf8Bytes> {
    let event = client.handle(&Incoming::from(frame));
    let mut s = state.lock().unwrap();
    s.pending = client.outbox().len();
    match (frame, event) {
        (ServerFrame::Message { message: m }, Event::Message(d)) => {
            if d.is_none_or(Delivery::is_new) {
                s.received.entry(m.channel_id).or_default().insert(m.seq);
            }
            match d {
                Some(Delivery::Replayed) => s.replayed += 1,
                Some(d) if d.is_violation() => {
                    let track = client.seqs().get(m.channel_id).map(|t| t.state());
                    let v = format!(
                        "socket {socket}: channel {} seq {}: {d:?} ({})",
                        m.channel_id,
                        m.seq,
                        track.unwrap_or_default()
                    );
                    s.violations.push(v);
                }
                _ => {}
            }
        }
        (
            ServerFrame::Ack {
                client_msg_id: Some(id),
                message: m,
                ..
            },
            Event::Ack { first: true },
        ) => {
            s.acks.insert(id.clone(), (m.channel_id, m.seq));
        }
        (ServerFrame::Error { code, message, .. }, _) => {
            s.errors.push(format!("{code:?}: {message}"));
        }
        (_, Event::Resumed(follow_up)) => return follow_up,
        _ => {}
    }
    None
}

/// Steady traffic: every member sends one message per `every` until stopped.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    pub fn start(members: &[Member], channel: i64, every: Duration) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = members
            .iter()
            .map(|m| {
                let cmd = m.cmd.clone();
                let counter = m.counter.clone();
                let name = m.name.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let n = counter.fetch_add(1, Ordering::Relaxed);
                        let id = format!("{name}-{n}");
                        let content = format!("{name} says {n}");
                        let _ = cmd.send(Cmd::Send {
                            channel,
                            content,
                            id,
                        });
                        tokio::time::sleep(every).await;
                    }
                })
            })
            .collect();
        Traffic { stop, tasks }
    }

    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

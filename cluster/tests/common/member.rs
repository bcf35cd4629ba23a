//! A chat member as a well-behaved client: one socket through HAProxy at a time; on close or
//! error it reconnects, sends `resume` with the last gap-free seq of each channel, and resends
//! its unacked sends with the same `client_msg_id`. It records what every socket received and
//! flags any socket that sees a seq twice or out of order.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use shared::protocol::{ClientFrame, ServerFrame};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::WAIT;

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
    received: BTreeMap<i64, BTreeSet<i64>>,
    /// Highest seq with nothing missing below it, per channel: what `resume` asks after.
    contiguous: BTreeMap<i64, i64>,
    acks: BTreeMap<String, (i64, i64)>,
    /// Unacked sends: id -> (channel, content, last attempt).
    pending: BTreeMap<String, (i64, String, Instant)>,
    violations: Vec<String>,
    errors: Vec<String>,
    /// Messages a socket got live between `ready` and the replay of its `resume`, then again
    /// in the replay (the replay starts at exactly `after + 1`, as `resume` asks).
    resume_overlap: usize,
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

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect_retrying(url: &str) -> Option<Ws> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(url).await {
            return Some(ws);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

impl Member {
    /// Connects through HAProxy and returns once the first `ready` arrived.
    pub async fn connect(ws_url: &str, name: String, token: String) -> Member {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(Mutex::new(State::default()));
        let (ready_tx, ready_rx) = oneshot::channel();
        let url = format!("{ws_url}?token={token}");
        tokio::spawn(run(url, name.clone(), rx, state.clone(), ready_tx));
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
        self.with(|s| s.pending.len())
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
                .collect()
        })
    }

    pub fn has_all(&self, channel: i64, last: i64) -> bool {
        self.missing(channel, last).is_empty()
    }

    pub fn violations(&self) -> Vec<String> {
        self.with(|s| s.violations.clone())
    }

    /// Messages seen twice on one socket because they arrived live before `resume` replayed them.
    pub fn resume_overlap(&self) -> usize {
        self.with(|s| s.resume_overlap)
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

async fn run(
    url: String,
    name: String,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    state: Arc<Mutex<State>>,
    ready_tx: oneshot::Sender<()>,
) {
    let mut ready_tx = Some(ready_tx);
    let mut socket_no = 0;
    loop {
        let Some(ws) = connect_retrying(&url).await else {
            push(
                &state,
                |s| &mut s.violations,
                format!("{name}: reconnect failed"),
            );
            return;
        };
        socket_no += 1;
        let (mut sink, mut stream) = ws.split();
        // The first frame is `ready`.
        let ready = tokio::time::timeout(WAIT, stream.next()).await;
        let Ok(Some(Ok(WsMessage::Text(t)))) = ready else {
            continue;
        };
        let Ok(ServerFrame::Ready { edge, channels, .. }) = serde_json::from_str(&t) else {
            push(
                &state,
                |s| &mut s.violations,
                format!("first frame not ready: {t}"),
            );
            continue;
        };
        let first = ready_tx.is_some();
        let (resume, resend): (BTreeMap<i64, i64>, Vec<WsMessage>) = {
            let mut s = state.lock().unwrap();
            s.edges.push(edge);
            for c in &channels {
                if first {
                    s.base.insert(c.id, c.last_seq);
                    s.contiguous.insert(c.id, c.last_seq);
                }
            }
            let resend: Vec<_> = s
                .pending
                .iter()
                .map(|(id, (c, content, _))| send_frame(*c, content, id))
                .collect();
            (s.contiguous.clone(), resend)
        };
        if !first {
            let f = ClientFrame::Resume {
                channels: resume.clone(),
            };
            let _ = sink.send(text(&f)).await;
            for f in resend {
                let _ = sink.send(f).await;
            }
        }
        if let Some(tx) = ready_tx.take() {
            let _ = tx.send(());
        }
        let mut sock = Socket {
            no: socket_no,
            max: BTreeMap::new(),
            resume_from: if first {
                BTreeMap::new()
            } else {
                resume.clone()
            },
        };
        let mut retry = tokio::time::interval(Duration::from_secs(1));
        let close = loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Send { channel, content, id }) => {
                        let f = send_frame(channel, &content, &id);
                        state.lock().unwrap().pending.insert(id, (channel, content, Instant::now()));
                        let _ = sink.send(f).await;
                    }
                    Some(Cmd::Close) | None => {
                        let _ = sink.send(WsMessage::Close(None)).await;
                        return;
                    }
                },
                _ = retry.tick() => {
                    let again: Vec<_> = {
                        let mut s = state.lock().unwrap();
                        s.pending
                            .iter_mut()
                            .filter(|(_, (_, _, at))| at.elapsed() > Duration::from_millis(1500))
                            .map(|(id, (c, content, at))| {
                                *at = Instant::now();
                                send_frame(*c, content, id)
                            })
                            .collect()
                    };
                    for f in again {
                        let _ = sink.send(f).await;
                    }
                }
                msg = stream.next() => match msg {
                    Some(Ok(WsMessage::Text(t))) => {
                        on_frame(&state, &mut sock, &t);
                    }
                    Some(Ok(WsMessage::Close(frame))) => break frame.map(|f| u16::from(f.code)),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break None,
                },
            }
        };
        state.lock().unwrap().closes.push(close);
    }
}

/// What one socket has seen.
struct Socket {
    no: usize,
    /// Highest seq delivered on this socket, per channel.
    max: BTreeMap<i64, i64>,
    /// The `after` of each channel in the `resume` this socket sent, until `resumed`.
    resume_from: BTreeMap<i64, i64>,
}

fn on_frame(state: &Mutex<State>, sock: &mut Socket, t: &str) {
    let Ok(frame) = serde_json::from_str::<ServerFrame>(t) else {
        return;
    };
    let mut s = state.lock().unwrap();
    match frame {
        ServerFrame::Message { message: m } => {
            let max = sock.max.entry(m.channel_id).or_insert(0);
            if m.seq <= *max {
                if sock.resume_from.get(&m.channel_id) == Some(&(m.seq - 1)) {
                    // The replay of our resume starts over at after + 1 (once per channel).
                    sock.resume_from.remove(&m.channel_id);
                    s.resume_overlap += usize::try_from(*max - m.seq + 1).unwrap_or(0);
                    // From here the socket must be strictly increasing again.
                    *max = m.seq - 1;
                } else {
                    let v = format!(
                        "socket {}: channel {} seq {} after seq {}",
                        sock.no, m.channel_id, m.seq, max
                    );
                    s.violations.push(v);
                }
            }
            *max = m.seq.max(*max);
            s.received.entry(m.channel_id).or_default().insert(m.seq);
            let got = s.received.get(&m.channel_id).cloned().unwrap_or_default();
            let c = s.contiguous.entry(m.channel_id).or_insert(0);
            while got.contains(&(*c + 1)) {
                *c += 1;
            }
        }
        ServerFrame::Resumed => sock.resume_from.clear(),
        ServerFrame::Ack {
            client_msg_id: Some(id),
            message,
        } => {
            s.pending.remove(&id);
            s.acks.insert(id, (message.channel_id, message.seq));
        }
        ServerFrame::Error { code, message, .. } => {
            s.errors.push(format!("{code:?}: {message}"));
        }
        _ => {}
    }
}

fn push(state: &Mutex<State>, field: impl FnOnce(&mut State) -> &mut Vec<String>, v: String) {
    field(&mut state.lock().unwrap()).push(v);
}

fn send_frame(channel: i64, content: &str, id: &str) -> WsMessage {
    text(&ClientFrame::Send {
        channel_id: channel,
        content: content.to_owned(),
        client_msg_id: Some(id.to_owned()),
        reply_to: None,
    })
}

fn text(f: &ClientFrame) -> WsMessage {
    WsMessage::text(serde_json::to_string(f).unwrap())
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

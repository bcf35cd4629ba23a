//! The task of one channel with local sockets: it puts the channel's log (messages and
//! sequenced events: edits, deletes, reactions) in `seq` order, fills holes from PostgreSQL,
//! and delivers each entry once to each local socket, keeping a cursor per socket. Joins, leaves and `resume` replays go through the same queue, so they
//! are ordered with the live messages and nothing is doubled or skipped. A replay's rows are
//! read (and framed, once for every socket that resumes with them) by `replays`, beside this
//! task: a slow read holds up neither the channel's live messages nor the socket's.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use shared::protocol::ServerFrame;
use shared::store::{Entry, Store};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::metrics::EdgeMetrics;
use crate::queue::Pushed;
use crate::socket::{SocketHandle, SocketId};
use crate::wire::Frame;

/// What every channel task of one edge needs.
#[derive(Debug)]
pub struct ChannelEnv {
    pub store: Store,
    pub metrics: EdgeMetrics,
    /// How long a hole in `seq` may stay open before it is filled from PostgreSQL.
    pub gap_grace: Duration,
    /// Channel tasks are tracked so a drain can wait for them.
    pub tracker: TaskTracker,
}

/// Delivered messages kept to catch up a socket that joins behind the channel's cursor.
const RECENT: usize = 256;
/// Out-of-order messages held while a hole is being filled; beyond, they are dropped and
/// read back from PostgreSQL with the hole.
const MAX_PENDING: usize = 10_000;
/// Rows read from PostgreSQL per query when filling.
const FILL_PAGE: i64 = 500;

/// What one `resume` replays of a channel to one socket: the messages after its seq, framed,
/// in order; the rows are shared by every socket a read served.
#[derive(Debug, Clone)]
pub struct Slice {
    rows: Arc<[(i64, Frame)]>,
    range: Range<usize>,
    /// More were missed than `RESUME_MAX`: the client pages the rest from history.
    truncated: bool,
}

impl Slice {
    pub fn new(rows: Arc<[(i64, Frame)]>, range: Range<usize>, truncated: bool) -> Self {
        Slice {
            rows,
            range,
            truncated,
        }
    }

    /// `(seq, frame)` of every message replayed, ascending.
    pub fn frames(&self) -> &[(i64, Frame)] {
        self.rows.get(self.range.clone()).unwrap_or(&[])
    }
}

#[derive(Debug)]
pub enum ChannelCmd {
    /// A sequenced frame from Redis (`message` or `event`).
    Message {
        seq: i64,
        payload: Frame,
    },
    /// Any other frame of the channel topic (`typing`, `read`, `member_*`), forwarded as is;
    /// `typing` is not echoed to the typing user.
    Event {
        payload: Frame,
        skip_user: Option<i64>,
    },
    Add {
        socket: Arc<SocketHandle>,
        cursor: i64,
    },
    /// The socket leaves; `farewell` (its `channel_removed`) is queued to it after everything
    /// this task delivered it before, so nothing of the channel follows it.
    Remove {
        socket: SocketId,
        farewell: Option<(Arc<SocketHandle>, Frame)>,
    },
    /// Replays `replay` (the messages after `after`) to one socket, then answers.
    Replay {
        socket: SocketId,
        after: i64,
        replay: Slice,
        done: oneshot::Sender<()>,
    },
    /// PostgreSQL's `last_seq` of the channel (`None`: read it): anything delivered short of
    /// it is filled.
    CatchUp {
        upto: Option<i64>,
    },
    Stop,
}

struct Member {
    socket: Arc<SocketHandle>,
    /// Highest seq pushed to the socket.
    cursor: i64,
    /// The cursor it joined with: every seq in `(joined, cursor]` has been pushed to it.
    joined: i64,
}

struct Task {
    env: Arc<ChannelEnv>,
    id: i64,
    last: i64,
    pending: BTreeMap<i64, Frame>,
    /// Highest seq known to exist (from a catch-up) beyond `last`.
    target: i64,
    members: HashMap<SocketId, Member>,
    recent: VecDeque<(i64, Frame)>,
    fill_at: Option<Instant>,
}

/// Starts the task of channel `id`, whose cursor starts at `start` (the first socket's seq).
pub fn spawn(env: Arc<ChannelEnv>, id: i64, start: i64) -> mpsc::UnboundedSender<ChannelCmd> {
    let (tx, rx) = mpsc::unbounded_channel();
    let tracker = env.tracker.clone();
    let task = Task {
        env,
        id,
        last: start,
        pending: BTreeMap::new(),
        target: start,
        members: HashMap::new(),
        recent: VecDeque::new(),
        fill_at: None,
    };
    tracker.spawn(task.run(rx));
    tx
}

/// An entry of the log as its frame (`message` or `event`), with its seq.
pub fn encode(entry: Entry) -> (i64, Frame) {
    (entry.seq(), entry.into_frame().to_json().into())
}

impl Task {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<ChannelCmd>) {
        loop {
            let cmd = match self.fill_at {
                Some(at) => tokio::select! {
                    c = rx.recv() => c,
                    _ = tokio::time::sleep_until(at) => {
                        self.fill().await;
                        continue;
                    }
                },
                None => rx.recv().await,
            };
            match cmd {
                None | Some(ChannelCmd::Stop) => return,
                Some(c) => self.handle(c).await,
            }
        }
    }

    async fn handle(&mut self, cmd: ChannelCmd) {
        match cmd {
            ChannelCmd::Message { seq, payload } => {
                if seq <= self.last {
                    return;
                }
                if seq == self.last + 1 {
                    self.deliver(seq, payload);
                    self.drain_pending();
                } else {
                    if self.pending.len() < MAX_PENDING {
                        self.pending.insert(seq, payload);
                    }
                    self.target = self.target.max(seq);
                    if self.fill_at.is_none() {
                        self.fill_at = Some(Instant::now() + self.env.gap_grace);
                    }
                }
            }
            ChannelCmd::Event { payload, skip_user } => {
                for m in self.members.values() {
                    if Some(m.socket.user_id) != skip_user {
                        m.socket.deliver(payload.clone(), &self.env.metrics);
                    }
                }
            }
            ChannelCmd::Add { socket, cursor } => self.add(socket, cursor).await,
            ChannelCmd::Remove { socket, farewell } => {
                self.members.remove(&socket);
                if let Some((s, frame)) = farewell {
                    s.queue.push(frame);
                }
            }
            ChannelCmd::Replay {
                socket,
                after,
                replay,
                done,
            } => {
                self.replay(socket, after, replay);
                let _ = done.send(());
            }
            ChannelCmd::CatchUp { upto: Some(upto) } => {
                if upto > self.last {
                    self.target = self.target.max(upto);
                    self.fill().await;
                }
            }
            ChannelCmd::CatchUp { upto: None } => self.fill().await,
            ChannelCmd::Stop => {}
        }
    }

    /// Sends message `seq` (== last + 1) to every socket not past it.
    fn deliver(&mut self, seq: i64, payload: Frame) {
        let mut n = 0;
        for m in self.members.values_mut() {
            if m.cursor < seq {
                m.cursor = seq;
                if m.socket.deliver(payload.clone(), &self.env.metrics) {
                    n += 1;
                }
            }
        }
        self.env.metrics.deliveries.increment(n);
        self.last = seq;
        self.target = self.target.max(seq);
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((seq, payload));
    }

    fn drain_pending(&mut self) {
        while let Some(entry) = self.pending.first_entry() {
            let seq = *entry.key();
            if seq <= self.last {
                entry.remove();
            } else if seq == self.last + 1 {
                let p = entry.remove();
                self.deliver(seq, p);
            } else {
                break;
            }
        }
        if self.pending.is_empty() && self.target <= self.last {
            self.fill_at = None;
        }
    }

    /// Reads the hole(s) below the highest known seq from PostgreSQL and delivers in order.
    async fn fill(&mut self) {
        let upto = self
            .target
            .max(self.pending.keys().next_back().copied().unwrap_or(0));
        let mut upto = upto;
        // Nothing known missing: ask PostgreSQL (first look after start).
        if upto <= self.last {
            match self.env.store.last_seqs(&[self.id]).await {
                Ok(m) => upto = m.get(&self.id).copied().unwrap_or(self.last),
                Err(e) => {
                    tracing::warn!(channel = self.id, error = %e, "catch-up read failed");
                    self.fill_at = Some(Instant::now() + Duration::from_secs(1));
                    return;
                }
            }
        }
        while self.last < upto {
            let stop = match self.pending.keys().next() {
                Some(&p) if p > self.last + 1 => p - 1,
                Some(_) => {
                    self.drain_pending();
                    continue;
                }
                None => upto,
            };
            let rows = match self
                .env
                .store
                .log_between(self.id, self.last, stop, FILL_PAGE)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(channel = self.id, error = %e, "gap fill failed; will retry");
                    self.fill_at = Some(Instant::now() + Duration::from_secs(1));
                    return;
                }
            };
            if rows.is_empty() {
                // Not committed (yet) as far as this read can see: wait for it.
                break;
            }
            for entry in rows {
                if entry.seq() == self.last + 1 {
                    let (seq, p) = encode(entry);
                    self.env.metrics.gaps_filled.increment(1);
                    self.deliver(seq, p);
                }
            }
            self.drain_pending();
        }
        self.drain_pending();
        self.fill_at = if self.pending.is_empty() && self.target <= self.last {
            None
        } else {
            Some(Instant::now() + Duration::from_millis(500))
        };
    }

    /// Joins a socket whose client has seen up to `cursor`: anything the channel already
    /// delivered beyond it is sent first.
    async fn add(&mut self, socket: Arc<SocketHandle>, cursor: i64) {
        let mut cur = cursor;
        if cursor < self.last {
            let from_recent = self.recent.front().is_some_and(|(s, _)| *s <= cursor + 1);
            if from_recent {
                for (seq, p) in self.recent.iter().filter(|(s, _)| *s > cursor) {
                    socket.deliver(p.clone(), &self.env.metrics);
                    cur = *seq;
                }
            } else {
                while cur < self.last {
                    match self
                        .env
                        .store
                        .log_between(self.id, cur, self.last, FILL_PAGE)
                        .await
                    {
                        Ok(rows) if !rows.is_empty() => {
                            for entry in rows {
                                let (seq, p) = encode(entry);
                                socket.deliver(p, &self.env.metrics);
                                cur = seq;
                            }
                        }
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(channel = self.id, error = %e, "join catch-up failed");
                            break;
                        }
                    }
                }
                cur = cur.max(self.last);
            }
        }
        self.members.insert(
            socket.id,
            Member {
                socket,
                cursor: cur,
                joined: cursor,
            },
        );
    }

    /// Replays to one socket the messages after `after` read for it. Seqs the socket already
    /// got since it joined (live messages that reached it before its `resume` did, or while
    /// the rows were being read) are not sent twice. The frames are shared, not copied: a
    /// push is a reference count and a queue slot.
    fn replay(&mut self, socket: SocketId, after: i64, replay: Slice) {
        let Some(m) = self.members.get(&socket) else {
            return;
        };
        let s = m.socket.clone();
        let (joined, delivered) = (m.joined, m.cursor);
        let mut last_sent = after;
        let mut n = 0;
        for (seq, p) in replay.frames() {
            let seq = *seq;
            last_sent = last_sent.max(seq);
            if seq > joined && seq <= delivered {
                continue;
            }
            if s.queue.push_requested(p.clone()) == Pushed::Queued {
                n += 1;
            }
        }
        self.env.metrics.deliveries.increment(n);
        let mut cursor = last_sent;
        if replay.truncated {
            let frame = ServerFrame::ResumeTruncated {
                channel_id: self.id,
                next_seq: last_sent + 1,
            };
            s.queue.push_requested(frame.to_json().into());
            // The client pages the rest from history; live delivery goes on from here.
            cursor = cursor.max(self.last).max(self.target);
        }
        if let Some(m) = self.members.get_mut(&socket) {
            m.cursor = m.cursor.max(cursor);
        }
    }
}

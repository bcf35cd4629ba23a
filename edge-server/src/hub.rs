//! Local maps of the edge: sockets, user id -> sockets, channel id -> local sockets, and the
//! decisions to SUBSCRIBE / UNSUBSCRIBE Redis topics that follow from them.
//!
//! Lock order: a socket's `state` lock, then the hub's `channels` or `users` lock. No lock is
//! held across an `.await`. Subscribe and unsubscribe commands are queued to the subscription
//! manager while the map lock is held, so Redis sees them in the order the maps changed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use shared::topics::Topic;
use tokio::sync::{mpsc, oneshot};

use crate::channel::{self, ChannelCmd, ChannelEnv};
use crate::queue::OutQueue;
use crate::socket::{lock, SocketHandle, SocketId, SocketState, UserEvent};
use crate::wire::Frame;

/// What the hub asks of the subscription manager, in the order the maps changed.
#[derive(Debug)]
pub enum SubCmd {
    Subscribe(Topic),
    Unsubscribe(Topic),
    /// Answered once every command queued before it has been carried out.
    Barrier(oneshot::Sender<()>),
}

struct ChannelEntry {
    tx: mpsc::UnboundedSender<ChannelCmd>,
    sockets: HashMap<SocketId, Arc<SocketHandle>>,
}

struct UserEntry {
    sockets: HashMap<SocketId, Arc<SocketHandle>>,
}

/// The local maps, and the tasks of the channels in them.
pub struct Hub {
    next_id: AtomicU64,
    channels: Mutex<HashMap<i64, ChannelEntry>>,
    users: Mutex<HashMap<i64, UserEntry>>,
    subs: mpsc::UnboundedSender<SubCmd>,
    env: Arc<ChannelEnv>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl Hub {
    /// Channel tasks are started with `env` when a channel gets its first local socket.
    pub fn new(subs: mpsc::UnboundedSender<SubCmd>, env: Arc<ChannelEnv>) -> Self {
        Hub {
            next_id: AtomicU64::new(1),
            channels: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            subs,
            env,
        }
    }

    /// Registers a new socket of `user_id` (not yet in any channel) and makes sure `user-{id}`
    /// is subscribed; the returned receiver fires once the subscription is confirmed.
    pub fn open_socket(
        &self,
        user_id: i64,
        username: &str,
        queue: OutQueue,
    ) -> (Arc<SocketHandle>, oneshot::Receiver<()>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (done_tx, done_rx) = oneshot::channel();
        let mut users = lock(&self.users);
        let entry = users.entry(user_id).or_insert_with(|| {
            let _ = self.subs.send(SubCmd::Subscribe(Topic::User(user_id)));
            UserEntry {
                sockets: HashMap::new(),
            }
        });
        let handle = Arc::new(SocketHandle::new(id, user_id, username, queue));
        entry.sockets.insert(id, handle.clone());
        let _ = self.subs.send(SubCmd::Barrier(done_tx));
        (handle, done_rx)
    }

    /// Queues `ready`, then joins the socket to its channels at the seqs `ready` announced,
    /// then applies control events that arrived meanwhile.
    pub fn activate(&self, s: &Arc<SocketHandle>, ready: Frame, channels: &[(i64, i64)]) {
        let mut st = lock(&s.state);
        if st.closed {
            return;
        }
        s.queue.push(ready);
        for &(ch, last_seq) in channels {
            if st.channels.insert(ch) {
                self.join_channel(s, ch, last_seq);
            }
        }
        st.ready = true;
        for ev in std::mem::take(&mut st.pending) {
            self.apply(s, &mut st, ev);
        }
    }

    /// Unregisters a socket from every map; returns how many sockets its user still has here.
    pub fn close_socket(&self, s: &Arc<SocketHandle>) -> usize {
        let channels: Vec<i64> = {
            let mut st = lock(&s.state);
            st.closed = true;
            st.channels.drain().collect()
        };
        for ch in channels {
            self.leave_channel(s, ch, None);
        }
        let mut users = lock(&self.users);
        let left = match users.get_mut(&s.user_id) {
            Some(u) => {
                u.sockets.remove(&s.id);
                u.sockets.len()
            }
            None => 0,
        };
        if left == 0 && users.remove(&s.user_id).is_some() {
            let _ = self.subs.send(SubCmd::Unsubscribe(Topic::User(s.user_id)));
        }
        left
    }

    /// A `user-{id}` event: applied to each of the user's sockets here.
    pub fn user_event(&self, user_id: i64, ev: UserEvent) {
        for s in self.user_sockets(user_id) {
            let mut st = lock(&s.state);
            if st.closed {
                continue;
            }
            if !st.ready {
                st.pending.push(ev.clone());
                continue;
            }
            self.apply(&s, &mut st, ev.clone());
        }
    }

    /// The user's sockets here (taken out of the map's lock).
    fn user_sockets(&self, user_id: i64) -> Vec<Arc<SocketHandle>> {
        lock(&self.users)
            .get(&user_id)
            .map(|u| u.sockets.values().cloned().collect())
            .unwrap_or_default()
    }

    /// An event for one user: queued to each of their sockets here that is ready.
    pub fn to_user(&self, user_id: i64, payload: Frame) {
        for s in self.user_sockets(user_id) {
            if lock(&s.state).ready {
                s.deliver(payload.clone(), &self.env.metrics);
            }
        }
    }

    fn apply(&self, s: &Arc<SocketHandle>, st: &mut SocketState, ev: UserEvent) {
        match ev {
            UserEvent::Added {
                channel_id,
                last_seq,
                payload,
            } => {
                if st.channels.insert(channel_id) {
                    s.queue.push(payload);
                    self.join_channel(s, channel_id, last_seq);
                }
            }
            UserEvent::Removed {
                channel_id,
                payload,
            } => {
                if st.channels.remove(&channel_id) {
                    self.leave_channel(s, channel_id, Some(payload));
                }
            }
        }
    }

    /// Called with the socket's state lock held (lock order: socket, then channels).
    fn join_channel(&self, s: &Arc<SocketHandle>, ch: i64, cursor: i64) {
        let mut channels = lock(&self.channels);
        let entry = channels.entry(ch).or_insert_with(|| {
            let _ = self.subs.send(SubCmd::Subscribe(Topic::Channel(ch)));
            ChannelEntry {
                tx: channel::spawn(self.env.clone(), ch, cursor),
                sockets: HashMap::new(),
            }
        });
        entry.sockets.insert(s.id, s.clone());
        let _ = entry.tx.send(ChannelCmd::Add {
            socket: s.clone(),
            cursor,
        });
    }

    /// Takes the socket out of the channel; `farewell` goes to it through the channel's task,
    /// after whatever the task delivered it before.
    fn leave_channel(&self, s: &Arc<SocketHandle>, ch: i64, farewell: Option<Frame>) {
        let mut channels = lock(&self.channels);
        let Some(entry) = channels.get_mut(&ch) else {
            if let Some(f) = farewell {
                s.queue.push(f);
            }
            return;
        };
        entry.sockets.remove(&s.id);
        let _ = entry.tx.send(ChannelCmd::Remove {
            socket: s.id,
            farewell: farewell.map(|f| (s.clone(), f)),
        });
        if entry.sockets.is_empty() {
            let _ = entry.tx.send(ChannelCmd::Stop);
            channels.remove(&ch);
            let _ = self.subs.send(SubCmd::Unsubscribe(Topic::Channel(ch)));
        }
    }

    /// The task of a channel with local sockets, to route an event to.
    pub fn channel(&self, ch: i64) -> Option<mpsc::UnboundedSender<ChannelCmd>> {
        lock(&self.channels).get(&ch).map(|e| e.tx.clone())
    }

    /// Every channel with local sockets, with its task.
    pub fn channels(&self) -> Vec<(i64, mpsc::UnboundedSender<ChannelCmd>)> {
        lock(&self.channels)
            .iter()
            .map(|(id, e)| (*id, e.tx.clone()))
            .collect()
    }

    /// Local sockets in any of `channels`, each once, except those of `except_user`.
    pub fn sockets_in(&self, channels: &[i64], except_user: i64) -> Vec<Arc<SocketHandle>> {
        let map = lock(&self.channels);
        let mut seen = HashMap::new();
        for ch in channels {
            if let Some(e) = map.get(ch) {
                for (id, s) in &e.sockets {
                    if s.user_id != except_user {
                        seen.entry(*id).or_insert_with(|| s.clone());
                    }
                }
            }
        }
        seen.into_values().collect()
    }

    /// Every local socket.
    pub fn all_sockets(&self) -> Vec<Arc<SocketHandle>> {
        lock(&self.users)
            .values()
            .flat_map(|u| u.sockets.values().cloned())
            .collect()
    }

    /// Compares every local channel with PostgreSQL's `last_seq` and fills what is missing.
    pub fn catch_up_all(&self) {
        let channels = self.channels();
        if channels.is_empty() {
            return;
        }
        let store = self.env.store.clone();
        self.env.tracker.spawn(async move {
            let ids: Vec<i64> = channels.iter().map(|(id, _)| *id).collect();
            match store.last_seqs(&ids).await {
                Ok(last) => {
                    for (id, tx) in channels {
                        if let Some(&upto) = last.get(&id) {
                            let _ = tx.send(ChannelCmd::CatchUp { upto: Some(upto) });
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "catch-up read failed"),
            }
        });
    }
}

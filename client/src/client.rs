//! The state of one chat client across its sockets: seq tracks and outbox, the targets it
//! connects to in turn, and the reconnect policy. A reconnect writes `resume` with the last
//! contiguous seq per channel, then every unacked send with its `client_msg_id`.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use shared::protocol::ClientFrame;
use tokio_tungstenite::tungstenite::{protocol::WebSocketConfig, Utf8Bytes};

use crate::{
    backoff::Backoff,
    conn::{ConnectError, Connection, Disconnect, Ready},
    frames::{self, Incoming},
    outbox::{Outbox, Refusal},
    seqs::Seqs,
    track::Delivery,
};

/// How a client connects.
#[derive(Debug, Clone)]
pub struct Options {
    /// Full WebSocket URLs, token included: the first for the first connection, the next ones
    /// in turn for reconnects (so a client moves off a dead edge when given several).
    pub targets: Vec<String>,
    /// Local address to connect from.
    pub source: Option<IpAddr>,
    /// Track only these channels (`None`: every channel of the user).
    pub channels: Option<Vec<i64>>,
    /// Bound on one connect, handshake and `ready`.
    pub connect_timeout: Duration,
    /// Reconnect attempts allowed over the client's life.
    pub max_reconnects: u32,
    pub backoff: Backoff,
    pub ws_config: WebSocketConfig,
    /// Ask the edge to batch frames (subprotocol `chat.v1.batch`).
    pub batch: bool,
}

impl Options {
    /// Connects to `targets` in turn, with 15 s per attempt, up to 20 reconnects.
    pub fn new(targets: Vec<String>) -> Self {
        Options {
            targets,
            source: None,
            channels: None,
            connect_timeout: Duration::from_secs(15),
            max_reconnects: 20,
            backoff: Backoff::default(),
            ws_config: WebSocketConfig::default(),
            batch: false,
        }
    }
}

/// What a server frame did to the client state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A `message`: how its seq fits its channel (`None`: a channel not tracked).
    Message(Option<Delivery>),
    /// An `event` (a change to a message): how its seq fits its channel, as for a message.
    Change(Option<Delivery>),
    /// An `ack`; `first` when it resolved a pending send (not a second ack of a resend).
    Ack { first: bool },
    /// An `error`, and what it did to the outbox.
    Error(Refusal),
    /// `resumed`; a follow-up `resume` to write for channels a `resume_truncated` cut short.
    Resumed(Option<Utf8Bytes>),
    /// Anything else.
    Other,
}

/// A chat client's state across reconnects.
#[derive(Debug)]
pub struct Client {
    opts: Options,
    reconnects: u32,
    seqs: Seqs,
    outbox: Outbox,
}

impl Client {
    pub fn new(opts: Options) -> Self {
        Client {
            seqs: Seqs::new(opts.channels.clone()),
            opts,
            reconnects: 0,
            outbox: Outbox::default(),
        }
    }

    /// One attempt at the current target. The first `ready` starts the seq tracks; after any
    /// later one this writes `resume` and resends every unacked send before returning.
    pub async fn connect(&mut self) -> Result<(Connection, Ready), ConnectError> {
        let n = self.opts.targets.len();
        let url = self
            .opts
            .targets
            .get(self.reconnects as usize % n.max(1))
            .ok_or_else(|| ConnectError::Protocol("no URL".into()))?;
        let open = Connection::open(url, self.opts.source, self.opts.ws_config, self.opts.batch);
        let (mut conn, ready) = tokio::time::timeout(self.opts.connect_timeout, open)
            .await
            .map_err(|_| ConnectError::Timeout)??;
        if self.seqs.is_started() {
            self.resume(&mut conn, &ready).await?;
        } else {
            self.seqs.start(&ready.channels);
        }
        self.opts.backoff.reset();
        Ok((conn, ready))
    }

    async fn resume(&mut self, conn: &mut Connection, ready: &Ready) -> Result<(), ConnectError> {
        let channels = self.seqs.resume(&ready.channels);
        let written = async {
            conn.feed(frames::client_text(&ClientFrame::Resume { channels }))
                .await?;
            for f in self.outbox.unacked() {
                conn.feed(f).await?;
            }
            conn.flush().await
        };
        written.await.map_err(|e| match e {
            Disconnect::Ws(e) => ConnectError::Ws(e),
            other => ConnectError::Protocol(other.to_string()),
        })
    }

    /// Waits out the backoff, then tries the next target, until a socket is ready, the
    /// failure is final, or the reconnects are used up.
    pub async fn reconnect(&mut self) -> Result<(Connection, Ready), ConnectError> {
        let mut last = None;
        while self.reconnects < self.opts.max_reconnects {
            self.reconnects += 1;
            let wait = self.opts.backoff.next_delay(&mut rand::rng());
            tokio::time::sleep(wait).await;
            match self.connect().await {
                Ok(x) => return Ok(x),
                Err(e) if e.is_final() => return Err(e),
                Err(e) => last = Some(Box::new(e)),
            }
        }
        Err(ConnectError::GaveUp {
            reconnects: self.reconnects,
            last,
        })
    }

    /// Reconnect attempts made so far.
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// Records a send (resent until answered); returns the frame to write.
    pub fn send(&mut self, channel_id: i64, content: String, client_msg_id: String) -> Utf8Bytes {
        self.outbox.push(channel_id, content, client_msg_id)
    }

    /// Records a change (`edit`, `delete`, `react`, `unreact`) made under `client_msg_id`,
    /// resent until answered like a send; returns the frame to write. Its `ack` names the seq
    /// the change took, which every member's socket then receives as an `event`.
    pub fn change(&mut self, frame: &ClientFrame) -> Option<Utf8Bytes> {
        let id = match frame {
            ClientFrame::Edit { client_msg_id, .. }
            | ClientFrame::Delete { client_msg_id, .. }
            | ClientFrame::React { client_msg_id, .. }
            | ClientFrame::Unreact { client_msg_id, .. } => client_msg_id.clone()?,
            _ => return None,
        };
        Some(self.outbox.push_frame(id, frame))
    }

    /// Applies one server frame to the seq tracks and the outbox.
    #[inline]
    pub fn handle(&mut self, f: &Incoming<'_>) -> Event {
        match f {
            Incoming::Message {
                channel_id, seq, ..
            } => Event::Message(self.seqs.on_message(*channel_id, *seq)),
            Incoming::Event { channel_id, seq } => {
                Event::Change(self.seqs.on_message(*channel_id, *seq))
            }
            Incoming::Ack {
                client_msg_id,
                channel_id,
                seq,
                ..
            } => {
                let first = self.outbox.on_ack(client_msg_id.as_deref());
                if first {
                    self.seqs.on_ack(*channel_id, *seq);
                }
                Event::Ack { first }
            }
            Incoming::Error {
                code,
                client_msg_id,
                retry_after_ms,
            } => Event::Error(self.outbox.on_error(
                *code,
                client_msg_id.as_deref(),
                *retry_after_ms,
                Instant::now(),
            )),
            Incoming::ChannelAdded {
                channel_id,
                last_seq,
            } => {
                self.seqs.on_channel_added(*channel_id, *last_seq);
                Event::Other
            }
            Incoming::ResumeTruncated { channel_id } => {
                self.seqs.on_truncated(*channel_id);
                Event::Other
            }
            Incoming::Resumed => Event::Resumed(
                self.seqs
                    .on_resumed()
                    .map(|channels| frames::client_text(&ClientFrame::Resume { channels })),
            ),
            Incoming::Other => Event::Other,
        }
    }

    /// When the earliest send refused with "retry later" is due.
    pub fn next_retry(&self) -> Option<Instant> {
        self.outbox.next_retry()
    }

    /// Completes once the earliest send refused with "retry later" is due (never while there
    /// is none); then call [`Client::resend_due`].
    pub async fn retry_due(&self) {
        match self.next_retry() {
            Some(t) => tokio::time::sleep_until(t.into()).await,
            None => std::future::pending().await,
        }
    }

    /// Writes the sends whose retry is due.
    pub async fn resend_due(&mut self, conn: &mut Connection) -> Result<(), Disconnect> {
        for f in self.outbox.take_due(Instant::now()) {
            conn.feed(f).await?;
        }
        conn.flush().await
    }

    pub fn seqs(&self) -> &Seqs {
        &self.seqs
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The seq tracks and the outbox, once the client is done.
    pub fn into_parts(self) -> (Seqs, Outbox) {
        (self.seqs, self.outbox)
    }
}

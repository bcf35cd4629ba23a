//! `chat-client`: a WebSocket client of the chat protocol (SPEC section 4) that connects,
//! reconnects with backoff, `resume`s every channel from its last contiguous seq, resends
//! unacked sends with the same `client_msg_id`, and dedupes deliveries by seq.
//!
//! The pieces compose so a caller keeps its own per-connection loop (the load generator reads
//! every delivery inline): [`Client`] owns the state that outlives a socket (seq tracks, outbox,
//! reconnect policy), [`Connection`] is one socket, and [`frames::parse`] reads a server frame's
//! few accounting fields from its text without a full parse.

pub mod backoff;
pub mod bitmap;
pub mod client;
pub mod conn;
pub mod frames;
pub mod outbox;
pub mod seqs;
pub mod track;

pub use backoff::Backoff;
pub use client::{Client, Event, Options};
pub use conn::{
    dial, ConnectError, Connection, Disconnect, Next, Ready, RecvError, BATCH_PROTOCOL,
};
pub use frames::Incoming;
pub use outbox::{Outbox, Refusal};
pub use seqs::Seqs;
pub use track::{Delivery, Track};

pub use tokio_tungstenite::tungstenite::{protocol::WebSocketConfig, Utf8Bytes};

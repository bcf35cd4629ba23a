//! Code shared by the edge, the api-server, the load test and the tests: the wire protocol,
//! input validation, JWT handling, Redis connections and the typed event bus over them, the PostgreSQL store, rate limits,
//! metrics, and the chat operations both servers run.

pub mod auth;
pub mod bus;
pub mod chat;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod presence;
pub mod protocol;
pub mod ratelimit;
pub mod redis;
pub mod store;
pub mod topics;
pub mod validate;

pub use protocol::{ClientFrame, Message, ServerFrame};

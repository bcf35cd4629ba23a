//! Code shared by the edge, the api-server, the load test and the tests: the wire protocol,
//! input validation, JWT handling, Redis topic names and the PostgreSQL store.

pub mod auth;
pub mod limits;
pub mod presence;
pub mod protocol;
pub mod store;
pub mod topics;
pub mod validate;

pub use protocol::{ClientFrame, Message, ServerFrame};

//! Integration tests of the edge: one test per guarantee of SPEC section 5 (named after it),
//! the bad inputs of section 6, and the handshake rules of section 4. Real PostgreSQL and
//! Redis (and a Redis Cluster: `sharded`); faults are made to happen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attachments;
mod batch;
mod changes;
mod common;
mod delivery;
mod faults;
mod hostile;
mod input;
mod membership;
mod mentions;
mod mixed;
mod moderation;
mod plain;
mod process;
mod session;
mod sharded;
mod sse;
mod threads;
mod transports;

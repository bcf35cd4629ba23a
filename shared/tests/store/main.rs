//! Store guarantees against a real PostgreSQL: gap-free seqs (SPEC 5.2), idempotent sends
//! (5.3), the batch rules of `send_messages`, and history paging.

#![allow(clippy::unwrap_used)]

mod batch_rules;
mod changes;
mod channels;
mod common;
mod sends;

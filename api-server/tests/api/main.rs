//! Integration tests of the api-server against real PostgreSQL and Redis: each test starts the
//! real server on port 0 with a fresh database and talks HTTP to it.

#![allow(clippy::unwrap_used)]

mod accounts;
mod attachments;
mod blocks;
mod changes;
mod channels;
mod faults;
mod hostile;
mod messages;
mod pubsub;
mod search;
mod support;
mod threads;
mod tokens;

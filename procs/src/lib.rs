//! Child processes of the launcher (`cluster`) and the test harness (`testkit`): spawned so the
//! kernel kills them when we die, signalled and awaited, run as the `postgres` user when we are
//! root, PostgreSQL's binaries found, and Redis servers and Redis Clusters started and inspected
//! ([`redis`]).

mod pg;
pub mod redis;
mod spawn;
mod user;

pub use pg::{initdb, pg_bin};
pub use spawn::{alive, at_exit, signal, spawn, wait_for_exit, Group};
pub use user::{drop_to, Grant, User};

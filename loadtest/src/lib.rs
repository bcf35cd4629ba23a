//! `loadtest`: drives a chat deployment through its public entry point (SPEC sections 3, 4, 7),
//! checks every delivery exactly, and reports latency, throughput and edge memory.

pub mod accounting;
pub mod api;
pub mod args;
pub mod checker;
pub mod conn;
pub mod edges;
pub mod frames;
pub mod mixed;
pub mod progress;
pub mod report;
pub mod run;
pub mod setup;
pub mod socketio;
pub mod state;
pub mod stats;

pub use args::Args;
pub use report::Report;
pub use run::run;

//! The state every socket task of one run shares with the driver: counters, latency
//! histograms, the run's phases and its settings.

use std::{collections::HashMap, time::Instant};

use tokio_util::sync::CancellationToken;

use crate::stats::{Counters, Latency};

/// State every socket task shares with the driver.
#[derive(Debug)]
pub struct Shared {
    pub counters: Counters,
    pub e2e: Latency,
    pub ack: Latency,
    pub connect: Latency,
    pub epoch: Instant,
    pub channel_sockets: HashMap<i64, u64>,
    pub start_sending: CancellationToken,
    pub stop_sending: CancellationToken,
    pub stop: CancellationToken,
    pub resume: bool,
    pub max_reconnects: u32,
    /// Sockets ask for batched delivery.
    pub batch: bool,
    pub pipeline: usize,
    /// Mixed scenario: sockets also edit, react to and delete their own messages.
    pub mixed: bool,
    pub size: usize,
}

impl Shared {
    pub fn now_micros(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

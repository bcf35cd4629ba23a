//! Shared live counters and latency histograms, cheap enough to touch on every delivery.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex,
};

use hdrhistogram::Histogram;

/// Histogram shards: sockets record into shard `socket % SHARDS`, so locks rarely collide.
const SHARDS: usize = 32;
/// Largest recordable latency: one hour, in microseconds.
const MAX_MICROS: u64 = 3_600_000_000;

/// A latency histogram in microseconds, sharded to keep lock hold times tiny.
#[derive(Debug)]
pub struct Latency {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            shards: (0..SHARDS).map(|_| Mutex::new(new_histogram())).collect(),
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    // Constant bounds and precision within what the crate accepts: this cannot fail.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid constant histogram bounds")
}

impl Latency {
    /// Records `micros` (clamped to the histogram's range) from socket `key`.
    pub fn record(&self, key: usize, micros: u64) {
        let v = micros.clamp(1, MAX_MICROS);
        if let Ok(mut h) = self.shards[key % SHARDS].lock() {
            h.saturating_record(v);
        }
    }

    /// All shards merged.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for s in &self.shards {
            if let Ok(h) = s.lock() {
                let _ = all.add(&*h);
            }
        }
        all
    }
}

/// Percentiles of a latency histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// Live counters, read by the progress display every second.
#[derive(Debug, Default)]
pub struct Counters {
    pub connected: AtomicU64,
    pub connect_failed: AtomicU64,
    pub disconnects: AtomicU64,
    pub reconnects: AtomicU64,
    pub sends: AtomicU64,
    pub acks: AtomicU64,
    pub errors: AtomicU64,
    pub rate_limited: AtomicU64,
    pub skipped: AtomicU64,
    /// Messages and change events received.
    pub deliveries: AtomicU64,
    /// Change events (edits, reactions, deletes) among the deliveries.
    pub changes_delivered: AtomicU64,
    /// Changes acked, by kind (mixed scenario).
    pub edits: AtomicU64,
    pub reactions: AtomicU64,
    pub deletes: AtomicU64,
    /// Deliveries the acks so far call for (sockets per channel x acks), for the grace wait.
    pub expected_live: AtomicU64,
    /// Sends written and neither acked nor refused yet.
    pub in_flight: AtomicU64,
    /// Microseconds since the run's epoch (plus one, so 0 means none yet) of the first
    /// server-side disconnect and of the last `resumed` that completed a reconnected socket's
    /// replay: the reconnect storm's length.
    pub first_disconnect_us: AtomicU64,
    pub last_resumed_us: AtomicU64,
    /// Longest send-to-delivery latency since the last sample, in microseconds.
    pub max_latency_us: AtomicU64,
}

impl Counters {
    /// From the first disconnect to the last reconnected socket's completed `resume`, if the
    /// run had both.
    pub fn recovery_seconds(&self) -> Option<f64> {
        let first = self.first_disconnect_us.load(Ordering::Relaxed);
        let last = self.last_resumed_us.load(Ordering::Relaxed);
        (first > 0 && last >= first).then(|| (last - first) as f64 / 1e6)
    }

    /// Records the first disconnect at `t` (microseconds since the run's epoch).
    pub fn disconnected_at(&self, t: u64) {
        let _ =
            self.first_disconnect_us
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                    (cur == 0 || t + 1 < cur).then_some(t + 1)
                });
    }

    /// Records a completed resume at `t`.
    pub fn resumed_at(&self, t: u64) {
        self.last_resumed_us.fetch_max(t + 1, Ordering::Relaxed);
    }

    /// Counts an acked change of kind `op`.
    pub fn change_acked(&self, op: crate::mixed::Op) {
        use crate::mixed::Op;
        let c = match op {
            Op::Edit => &self.edits,
            Op::React | Op::Unreact => &self.reactions,
            Op::Delete => &self.deletes,
            Op::Send => return,
        };
        Self::add(c, 1);
    }

    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sub(c: &AtomicU64, n: u64) {
        let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(v.saturating_sub(n))
        });
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// One second of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Second {
    pub t: u64,
    pub connected: u64,
    pub sends: u64,
    pub acks: u64,
    pub deliveries: u64,
    /// Longest send-to-delivery latency of the second.
    pub max_latency_us: u64,
}

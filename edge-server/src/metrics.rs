//! Per-edge counters rendered in the Prometheus text format. Kept per edge (not in a global
//! recorder) so several edges can run in one test process.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the send-to-ack latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default)]
pub struct Metrics {
    pub sockets: AtomicI64,
    pub subscribed_channels: AtomicI64,
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub sends_acked: AtomicU64,
    pub deliveries: AtomicU64,
    pub gaps_filled: AtomicU64,
    pub slow_consumer_closes: AtomicU64,
    ack_buckets: [AtomicU64; BUCKETS.len()],
    ack_count: AtomicU64,
    ack_sum_us: AtomicU64,
}

impl Metrics {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }

    /// Records one send-to-ack latency.
    pub fn observe_ack(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.ack_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.ack_count.fetch_add(1, Relaxed);
        self.ack_sum_us.fetch_add(d.as_micros() as u64, Relaxed);
    }

    /// The Prometheus text exposition of every metric, labelled with the edge id.
    pub fn render(&self, edge: &str) -> String {
        let mut o = String::new();
        let l = format!("edge=\"{edge}\"");
        let gauges = [
            ("edge_sockets", "Open WebSocket connections", &self.sockets),
            (
                "edge_subscribed_channels",
                "Channels this edge is subscribed to in Redis",
                &self.subscribed_channels,
            ),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
            let _ = writeln!(o, "{name}{{{l}}} {}", v.load(Relaxed));
        }
        let counters = [
            (
                "edge_frames_in_total",
                "Frames received from clients",
                &self.frames_in,
            ),
            (
                "edge_frames_out_total",
                "Frames written to clients",
                &self.frames_out,
            ),
            (
                "edge_sends_acked_total",
                "Sends acked after commit",
                &self.sends_acked,
            ),
            (
                "edge_deliveries_total",
                "Message frames queued to sockets",
                &self.deliveries,
            ),
            (
                "edge_gaps_filled_total",
                "Messages filled from PostgreSQL",
                &self.gaps_filled,
            ),
            (
                "edge_slow_consumer_closes_total",
                "Sockets closed with 4008",
                &self.slow_consumer_closes,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(o, "{name}{{{l}}} {}", v.load(Relaxed));
        }
        let h = "edge_send_ack_seconds";
        let _ = writeln!(o, "# HELP {h} Send-to-ack latency\n# TYPE {h} histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let n = self.ack_buckets[i].load(Relaxed);
            let _ = writeln!(o, "{h}_bucket{{{l},le=\"{b}\"}} {n}");
        }
        let count = self.ack_count.load(Relaxed);
        let _ = writeln!(o, "{h}_bucket{{{l},le=\"+Inf\"}} {count}");
        let sum = self.ack_sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(o, "{h}_sum{{{l}}} {sum}\n{h}_count{{{l}}} {count}");
        o
    }
}

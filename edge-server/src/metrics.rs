//! The edge's metric handles, registered once in the edge's own recorder (`shared::metrics`,
//! every series labelled with the edge id) and bumped on hot paths without a lookup.

use ::metrics::{Counter, Gauge, Histogram};
use shared::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct EdgeMetrics {
    pub sockets: Gauge,
    pub subscribed_channels: Gauge,
    pub frames_in: Counter,
    pub frames_out: Counter,
    pub sends_acked: Counter,
    pub deliveries: Counter,
    pub gaps_filled: Counter,
    pub slow_consumer_closes: Counter,
    pub send_ack: Histogram,
    /// Channel replays asked for by `resume` frames (one per channel of each frame).
    pub resume_requests: Counter,
    /// PostgreSQL history queries issued to serve them (shared by coalesced requests).
    pub history_reads: Counter,
}

impl EdgeMetrics {
    pub fn new(m: &Metrics) -> Self {
        EdgeMetrics {
            sockets: m.gauge("edge_sockets", "Open WebSocket connections"),
            subscribed_channels: m.gauge(
                "edge_subscribed_channels",
                "Channels this edge is subscribed to in Redis",
            ),
            frames_in: m.counter("edge_frames_in_total", "Frames received from clients"),
            frames_out: m.counter("edge_frames_out_total", "Frames written to clients"),
            sends_acked: m.counter("edge_sends_acked_total", "Sends acked after commit"),
            deliveries: m.counter("edge_deliveries_total", "Message frames queued to sockets"),
            gaps_filled: m.counter("edge_gaps_filled_total", "Messages filled from PostgreSQL"),
            slow_consumer_closes: m.counter(
                "edge_slow_consumer_closes_total",
                "Sockets closed with 4008",
            ),
            send_ack: m.histogram("edge_send_ack_seconds", "Send-to-ack latency"),
            resume_requests: m.counter(
                "edge_resume_requests_total",
                "Channel replays asked for by resume frames",
            ),
            history_reads: m.counter(
                "edge_history_reads_total",
                "PostgreSQL history queries issued for resume replays",
            ),
        }
    }
}

//! The run's figures: a summary table for people and JSON (`--json`) for scripts.

use std::{collections::HashMap, fmt::Write as _};

use serde::Serialize;

use crate::{
    accounting::Tally,
    args::{Protocol, Scenario, Shape},
    checker::History,
    edges::Memory,
    stats::{Percentiles, Second},
};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Connections {
    pub attempted: u64,
    pub connected: u64,
    pub failed: u64,
    /// Connections the server side ended (close frame, reset, EOF).
    pub disconnects: u64,
    pub reconnects: u64,
    /// Last reason per socket the server ended, counted.
    pub closed_by_server: HashMap<String, u64>,
    /// Why first connection attempts failed, counted.
    pub connect_errors: HashMap<String, u64>,
    pub connect_seconds: f64,
    /// From the first server-side disconnect to the last reconnected socket's completed
    /// `resume` (`--resume` runs that lost sockets).
    pub recovery_seconds: Option<f64>,
    /// From TCP connect to the `ready` frame.
    pub connect_latency: Percentiles,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sends {
    pub sent: u64,
    pub acked: u64,
    /// Distinct (channel, seq) acked.
    pub acked_unique: u64,
    /// Sends neither acked nor refused when the run ended.
    pub unacked: u64,
    /// `error` frames other than `rate_limited`/`unavailable`.
    pub errors: u64,
    /// Sends retried after `rate_limited` or `unavailable`.
    pub retried: u64,
    /// Scheduled sends with no live sender socket with room in its queue.
    pub skipped: u64,
    pub seconds: f64,
    pub acked_per_sec: f64,
    /// Mixed scenario: the changes among the acked sends, and their events received.
    pub changes: Changes,
}

/// Changes acked by kind, and change events delivered (mixed scenario).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    pub edits: u64,
    /// Reactions added and taken back.
    pub reactions: u64,
    pub deletes: u64,
    pub delivered: u64,
}

/// Everything a run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub protocol: Protocol,
    pub target: String,
    pub ws_urls: Vec<String>,
    pub run_prefix: String,
    pub shape: Shape,
    pub sockets: u64,
    pub duration_secs: f64,
    pub resume: bool,
    pub nofile_limit: u64,
    pub connections: Connections,
    pub sends: Sends,
    pub deliveries: Tally,
    pub deliveries_per_sec: f64,
    /// Send (timestamp in the content) to `message` on each receiving socket.
    pub latency: Percentiles,
    /// Send to `ack` on the sending socket.
    pub ack_latency: Percentiles,
    pub throughput: Vec<Second>,
    pub memory: Memory,
    /// `--check-db`: the history check's four figures (all must be 0).
    pub history: Option<History>,
    pub passed: bool,
    pub failures: Vec<String>,
}

impl Report {
    /// Decides `passed` and lists why not.
    pub fn judge(&mut self) {
        let mut f = Vec::new();
        let d = &self.deliveries;
        if d.lost > 0 {
            f.push(format!("{} deliveries lost", d.lost));
        }
        if d.duplicated > 0 {
            f.push(format!("{} deliveries duplicated", d.duplicated));
        }
        if d.out_of_order > 0 {
            f.push(format!("{} deliveries out of order", d.out_of_order));
        }
        if self.connections.failed > 0 {
            f.push(format!(
                "{} sockets failed to connect",
                self.connections.failed
            ));
        }
        let sends_expected = matches!(
            self.scenario,
            Scenario::Chat | Scenario::Fanout | Scenario::Mixed
        ) && self.shape.rate > 0.0
            && self.shape.channels > 0
            || self.scenario == Scenario::Durable;
        if sends_expected && self.sends.acked == 0 {
            f.push("no send was acked".to_owned());
        }
        let x = &self.sends.changes;
        if self.scenario == Scenario::Mixed && self.sends.acked > 0 {
            for (n, what) in [
                (x.edits, "edit"),
                (x.reactions, "reaction"),
                (x.deletes, "delete"),
            ] {
                if n == 0 {
                    f.push(format!("no {what} was acked"));
                }
            }
        }
        if let Some(h) = self.history.filter(|h| !h.clean()) {
            f.push(format!("history check: {h:?}"));
        }
        self.passed = f.is_empty();
        self.failures = f;
    }

    /// The human summary.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let row = |s: &mut String, k: &str, v: String| {
            let _ = writeln!(s, "  {k:<28} {v}");
        };
        let lat = |p: &Percentiles| {
            format!(
                "p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2} ms  (n={})",
                p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms, p.count
            )
        };
        let over = match self.protocol {
            Protocol::Chat => "",
            Protocol::Socketio => " over Socket.IO",
        };
        let _ = writeln!(
            s,
            "loadtest {:?}{over} against {} (run {})",
            self.scenario, self.target, self.run_prefix
        );
        row(
            &mut s,
            "users / channels / sockets",
            format!(
                "{} / {} / {}",
                self.shape.users, self.shape.channels, self.sockets
            ),
        );
        let c = &self.connections;
        row(
            &mut s,
            "connected / failed",
            format!(
                "{} / {} in {:.1} s",
                c.connected, c.failed, c.connect_seconds
            ),
        );
        row(&mut s, "connect latency", lat(&c.connect_latency));
        if !c.connect_errors.is_empty() {
            row(&mut s, "connect errors", format!("{:?}", c.connect_errors));
        }
        row(
            &mut s,
            "server closes / reconnects",
            format!(
                "{} / {} {:?}",
                c.disconnects, c.reconnects, c.closed_by_server
            ),
        );
        if let Some(secs) = c.recovery_seconds {
            row(
                &mut s,
                "all resumed within",
                format!("{secs:.2} s of the first disconnect"),
            );
        }
        let x = &self.sends;
        row(
            &mut s,
            "sent / acked / unacked",
            format!("{} / {} / {}", x.sent, x.acked, x.unacked),
        );
        row(
            &mut s,
            "errors / retried / skipped",
            format!("{} / {} / {}", x.errors, x.retried, x.skipped),
        );
        row(
            &mut s,
            "acked sends/s",
            format!("{:.0} over {:.1} s", x.acked_per_sec, x.seconds),
        );
        let ch = &x.changes;
        if self.scenario == Scenario::Mixed {
            row(
                &mut s,
                "edits / reactions / deletes",
                format!(
                    "{} / {} / {} acked; {} events received",
                    ch.edits, ch.reactions, ch.deletes, ch.delivered
                ),
            );
        }
        row(&mut s, "send -> ack", lat(&self.ack_latency));
        let d = &self.deliveries;
        row(
            &mut s,
            "deliveries expected / recv",
            format!("{} / {}", d.expected, d.received),
        );
        row(
            &mut s,
            "lost / dup / out of order",
            format!("{} / {} / {}", d.lost, d.duplicated, d.out_of_order),
        );
        row(&mut s, "replayed by resume", d.replayed.to_string());
        row(
            &mut s,
            "deliveries/s",
            format!("{:.0}", self.deliveries_per_sec),
        );
        row(&mut s, "send -> deliver", lat(&self.latency));
        if let Some(h) = &self.history {
            row(
                &mut s,
                "history check",
                format!(
                    "{} acked not stored, {} gaps, {} duplicates, {} out of order",
                    h.acked_not_stored, h.gaps, h.duplicates, h.out_of_order
                ),
            );
        }
        if let Some(b) = self.memory.per_socket_bytes {
            let after: u64 = self.memory.after.iter().map(|e| e.rss_kib).sum();
            row(
                &mut s,
                "edge RSS per socket",
                format!("{:.0} bytes (edges total {} KiB)", b, after),
            );
        }
        let _ = writeln!(
            s,
            "{}",
            if self.passed {
                "PASS".to_owned()
            } else {
                format!("FAIL: {}", self.failures.join("; "))
            }
        );
        s
    }
}

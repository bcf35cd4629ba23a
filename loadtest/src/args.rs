//! Command-line flags, scenario defaults and the small parsers they need (durations, IP ranges).

use std::{net::Ipv4Addr, path::PathBuf, time::Duration};

use clap::{Parser, ValueEnum};

/// What the run exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Many small channels, every member sends.
    Chat,
    /// C channels x M members, R messages/s in total, spread over the members.
    Fanout,
    /// Open N idle sockets at a given rate and hold them.
    Connect,
    /// Maximum acked sends/s: every socket keeps `--pipeline` sends in flight.
    Durable,
    /// Chat traffic where six sends in ten are changes (edit, reaction added or taken back,
    /// delete) to the sender's own messages; every change is an event each member must get.
    Mixed,
}

/// What the sockets speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// This project's WebSocket protocol (SPEC section 4), after a REST setup.
    Chat,
    /// Socket.IO 4 over WebSocket (Engine.IO v4), against the benchmark's peer
    /// (bench/peers/socketio): no REST setup, synthetic user and channel ids.
    Socketio,
}

/// `loadtest`: drives a deployment through HTTP + WebSocket (SPEC 3-4) and checks every delivery.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Args {
    /// Public HTTP entry point (HAProxy or an api-server).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    #[arg(long, value_enum, default_value = "chat")]
    pub scenario: Scenario,
    /// `socketio`: Socket.IO 4 over WebSocket against the peer of bench/peers/socketio (no REST
    /// setup; users and channels are fresh synthetic ids; no `--resume`).
    #[arg(long, value_enum, default_value = "chat")]
    pub protocol: Protocol,
    /// Users to register [default: chat and mixed 200, fanout 100, connect 50, durable 100].
    #[arg(long)]
    pub users: Option<usize>,
    /// Channels; users are spread over them round-robin [default: chat and mixed users/5, fanout 1,
    /// connect 0, durable users].
    #[arg(long)]
    pub channels: Option<usize>,
    /// Sockets per user [default: fanout 10, otherwise 1; connect: --sockets / users].
    #[arg(long)]
    pub sockets_per_user: Option<usize>,
    /// Total sockets (connect scenario) [default: 1000].
    #[arg(long)]
    pub sockets: Option<usize>,
    /// Messages (and changes) per second in total (chat, fanout, mixed) [default: 100].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Sends in flight per sending socket (durable) [default: 16].
    #[arg(long, default_value_t = 16)]
    pub pipeline: usize,
    /// How long to send (or hold sockets), e.g. `30s`, `500ms`, `2m`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// After the last send, how long to wait for acks and in-flight deliveries.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
    /// New sockets per second while connecting.
    #[arg(long, default_value_t = 2000.0)]
    pub connect_rate: f64,
    /// Handshakes in flight at once while connecting.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// WebSocket URLs of the edges (comma-separated) to connect directly instead of `{target}/ws`.
    #[arg(long, value_delimiter = ',')]
    pub ws_targets: Vec<String>,
    /// Local source addresses for sockets, e.g. `127.0.0.1-127.0.0.50` (one address has about
    /// 28k ephemeral ports).
    #[arg(long, value_parser = parse_ip_range)]
    pub source_ips: Option<IpRange>,
    /// Reconnect a socket the server closed and `resume`, instead of counting what it misses as lost.
    #[arg(long)]
    pub resume: bool,
    /// Reconnects allowed per socket with `--resume`.
    #[arg(long, default_value_t = 20)]
    pub max_reconnects: u32,
    /// Ask the edges for batched delivery (subprotocol `chat.v1.batch`: the frames of one
    /// burst in one WebSocket frame).
    #[arg(long)]
    pub batch: bool,
    /// Message content size in bytes (at least the timestamp).
    #[arg(long, default_value_t = 32)]
    pub size: usize,
    /// After the run, look every acked seq up in this PostgreSQL database (a `postgres://`
    /// URL): the history check counts acked sends and changes that were not stored.
    #[arg(long)]
    pub check_db: Option<String>,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The launcher's `cluster.json` (role, id, pid, port per process): edge RSS is read from
    /// `/proc/<pid>/status`.
    #[arg(long)]
    pub cluster_json: Option<PathBuf>,
    /// Edge process ids to read RSS from (comma-separated), if there is no `--cluster-json`.
    #[arg(long, value_delimiter = ',')]
    pub edge_pids: Vec<u32>,
    /// HTTP requests in flight at once during setup (register, login, create, join).
    #[arg(long, default_value_t = 16)]
    pub setup_concurrency: usize,
    /// Password of every generated user.
    #[arg(long, default_value = "loadtest-password")]
    pub password: String,
    /// No progress bar (for CI logs).
    #[arg(long)]
    pub no_progress: bool,
}

/// The figures a scenario runs with once defaults are applied.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Shape {
    pub users: usize,
    pub channels: usize,
    pub sockets_per_user: usize,
    /// Messages/s in total; 0 for `connect` and `durable`.
    pub rate: f64,
}

impl Args {
    /// Applies the scenario's defaults to the flags left unset.
    pub fn shape(&self) -> Shape {
        let users = self.users.unwrap_or(match self.scenario {
            Scenario::Chat | Scenario::Mixed => 200,
            Scenario::Fanout | Scenario::Durable => 100,
            Scenario::Connect => 50,
        });
        let users = users.max(1);
        let channels = self.channels.unwrap_or(match self.scenario {
            Scenario::Chat | Scenario::Mixed => (users / 5).max(1),
            Scenario::Fanout => 1,
            Scenario::Connect => 0,
            Scenario::Durable => users,
        });
        let sockets_per_user = match (self.sockets_per_user, self.scenario) {
            (Some(n), _) => n,
            (None, Scenario::Connect) => self.sockets.unwrap_or(1000).div_ceil(users),
            (None, Scenario::Fanout) => 10,
            (None, _) => 1,
        };
        let rate = match self.scenario {
            Scenario::Connect | Scenario::Durable => 0.0,
            Scenario::Chat | Scenario::Fanout | Scenario::Mixed => self.rate.unwrap_or(100.0),
        };
        Shape {
            users,
            channels,
            sockets_per_user: sockets_per_user.max(1),
            rate,
        }
    }

    /// Total sockets to open.
    pub fn total_sockets(&self) -> usize {
        let s = self.shape();
        match (self.scenario, self.sockets) {
            (Scenario::Connect, Some(n)) => n,
            _ => s.users * s.sockets_per_user,
        }
    }

    /// WebSocket URLs to spread sockets over (without the token).
    pub fn ws_urls(&self) -> Vec<String> {
        let path = match self.protocol {
            Protocol::Chat => "/ws",
            Protocol::Socketio => crate::socketio::packet::WS_PATH,
        };
        if !self.ws_targets.is_empty() {
            return self.ws_targets.iter().map(|u| ws_path(u, path)).collect();
        }
        let base = self.target.trim_end_matches('/');
        let base = base
            .strip_prefix("https://")
            .map(|r| format!("wss://{r}"))
            .or_else(|| base.strip_prefix("http://").map(|r| format!("ws://{r}")))
            .unwrap_or_else(|| base.to_owned());
        vec![format!("{base}{path}")]
    }
}

/// `ws://host:port` becomes `ws://host:port{path}`; a URL with a path is kept.
fn ws_path(url: &str, path: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    if rest.contains('/') {
        url.to_owned()
    } else {
        format!("{url}{path}")
    }
}

/// An inclusive range of IPv4 addresses, e.g. `127.0.0.1-127.0.0.50`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
}

impl IpRange {
    pub fn len(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `i`-th address, wrapping around.
    pub fn nth(&self, i: usize) -> Ipv4Addr {
        let off = (i as u64 % u64::from(self.len())) as u32;
        Ipv4Addr::from(u32::from(self.first) + off)
    }
}

/// Parses `A` or `A-B` (IPv4, `A <= B`).
pub fn parse_ip_range(s: &str) -> Result<IpRange, String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let first: Ipv4Addr = a.trim().parse().map_err(|e| format!("{a}: {e}"))?;
    let last: Ipv4Addr = b.trim().parse().map_err(|e| format!("{b}: {e}"))?;
    if u32::from(last) < u32::from(first) {
        return Err(format!("{s}: the range ends before it starts"));
    }
    Ok(IpRange { first, last })
}

/// Parses `30s`, `500ms`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("{s:?}: not a duration"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{s:?}: not a duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

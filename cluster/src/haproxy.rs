//! The HAProxy configuration (rendered from `haproxy/haproxy.cfg.tmpl`, the one place that
//! knows its shape) and the runtime API client used to drain servers.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// The template, compiled in so the `cluster` binary renders it wherever it runs.
pub const TEMPLATE: &str = include_str!("../../haproxy/haproxy.cfg.tmpl");

/// Connections HAProxy accepts at once. Each proxied connection costs two file descriptors,
/// so 9000 stays under a 20,000 open-file limit with room for checks and listeners.
pub const DEFAULT_MAXCONN: u32 = 9000;

/// One backend server: its name in HAProxy (`edge-2`) and its `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub name: String,
    pub addr: String,
}

impl Server {
    pub fn new(name: impl Into<String>, addr: impl Into<String>) -> Self {
        Server {
            name: name.into(),
            addr: addr.into(),
        }
    }
}

/// What the template needs.
#[derive(Debug, Clone)]
pub struct HaproxyConfig {
    /// `bind` address of the public frontend, e.g. `127.0.0.1:8080` or `:8080`.
    pub bind: String,
    /// Path of the runtime API socket.
    pub stats_socket: String,
    pub maxconn: u32,
    pub edges: Vec<Server>,
    pub apis: Vec<Server>,
    /// Extra lines of the `global` section (e.g. `nbthread 1`, `tune.bufsize 32768`).
    pub global: Vec<String>,
    /// Extra lines of the `defaults` section (e.g. `option splice-auto`).
    pub defaults: Vec<String>,
}

/// Renders the template. Every placeholder is replaced; edges and api-servers get one
/// health-checked `server` line each.
pub fn render(cfg: &HaproxyConfig) -> String {
    let servers = |list: &[Server]| {
        list.iter()
            .map(|s| format!("    server {} {} check", s.name, s.addr))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let lines = |list: &[String]| {
        list.iter()
            .map(|l| format!("    {}", l.trim()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    TEMPLATE
        .replace("{{GLOBAL_EXTRA}}", &lines(&cfg.global))
        .replace("{{DEFAULTS_EXTRA}}", &lines(&cfg.defaults))
        .replace("{{HTTP_BIND}}", &cfg.bind)
        .replace("{{STATS_SOCKET}}", &cfg.stats_socket)
        .replace("{{MAXCONN}}", &cfg.maxconn.to_string())
        .replace("{{EDGE_SERVERS}}", &servers(&cfg.edges))
        .replace("{{API_SERVERS}}", &servers(&cfg.apis))
}

/// Splits `HAPROXY_GLOBAL` / `HAPROXY_DEFAULTS` (`;`-separated lines).
pub fn split_lines(list: &str) -> Vec<String> {
    list.split(';')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses `name=host:port,name=host:port` (or bare `host:port`, named `{prefix}-1`, ...).
pub fn parse_servers(list: &str, prefix: &str) -> Vec<Server> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, item)| match item.split_once('=') {
            Some((name, addr)) => Server::new(name.trim(), addr.trim()),
            None => Server::new(format!("{prefix}-{}", i + 1), item),
        })
        .collect()
}

/// Sends one command to the runtime API socket and returns its answer
/// (e.g. `set server edges/edge-2 state drain`, `show servers state edges`).
pub fn command(socket: &Path, cmd: &str) -> std::io::Result<String> {
    let mut s = std::os::unix::net::UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(cmd.trim_end().as_bytes())?;
    s.write_all(b"\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> HaproxyConfig {
        HaproxyConfig {
            bind: "127.0.0.1:8080".into(),
            stats_socket: "/data/haproxy.sock".into(),
            maxconn: DEFAULT_MAXCONN,
            edges: parse_servers("127.0.0.1:9101,127.0.0.1:9102,127.0.0.1:9103", "edge"),
            apis: parse_servers("api-1=127.0.0.1:9100", "api"),
            global: Vec::new(),
            defaults: Vec::new(),
        }
    }

    #[test]
    fn extra_lines_land_in_their_sections() {
        let mut cfg = sample();
        cfg.global = split_lines("nbthread 1; tune.bufsize 32768");
        cfg.defaults = split_lines("option splice-auto");
        let text = render(&cfg);
        let global = text.find("\nglobal").unwrap();
        let defaults = text.find("\ndefaults").unwrap();
        let frontend = text.find("\nfrontend").unwrap();
        let at = |line: &str| text.find(line).unwrap_or_else(|| panic!("{line} missing"));
        assert!((global..defaults).contains(&at("    nbthread 1\n")));
        assert!((global..defaults).contains(&at("    tune.bufsize 32768\n")));
        assert!((defaults..frontend).contains(&at("    option splice-auto\n")));
    }

    #[test]
    fn renders_every_placeholder_and_one_server_line_per_process() {
        let out = render(&sample());
        assert!(!out.contains("{{"), "unrendered placeholder:\n{out}");
        assert!(out.contains("    bind 127.0.0.1:8080\n"));
        assert!(out.contains("stats socket /data/haproxy.sock mode 600 level admin"));
        assert!(out.contains("    maxconn 9000\n"));
        for (i, port) in [9101, 9102, 9103].iter().enumerate() {
            let line = format!("    server edge-{} 127.0.0.1:{port} check\n", i + 1);
            assert!(out.contains(&line), "missing {line:?}");
        }
        assert!(out.contains("    server api-1 127.0.0.1:9100 check\n"));
    }

    #[test]
    fn routes_ws_round_robin_with_health_checks_and_long_tunnels() {
        let out = render(&sample());
        let edges = out
            .split("\nbackend edges")
            .nth(1)
            .and_then(|s| s.split("\nbackend api").next())
            .unwrap_or_default();
        assert!(edges.contains("balance roundrobin"));
        assert!(edges.contains("option httpchk GET /health"));
        assert!(out.contains("acl to_edges path /ws /sse"));
        assert!(out.contains("use_backend edges if to_edges"));
        assert!(out.contains("default_backend api"));
        assert!(out.contains("timeout tunnel 1h"));
        assert!(out.contains("hard-stop-after"));
        assert!(out.contains("option forwardfor"));
        assert!(out.contains("stats uri /haproxy?stats"));
        assert!(out.contains("inter 1s"));
    }

    #[test]
    fn parses_named_and_bare_server_lists() {
        assert_eq!(
            parse_servers("edge-1:9001, b=edge-2:9001,", "edge"),
            vec![
                Server::new("edge-1", "edge-1:9001"),
                Server::new("b", "edge-2:9001")
            ]
        );
    }

    #[test]
    fn haproxy_accepts_the_rendered_config() {
        let dir = std::env::temp_dir().join(format!("hacheck-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let mut cfg = sample();
        cfg.stats_socket = dir.join("s.sock").display().to_string();
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, render(&cfg)).unwrap_or_default();
        let out = std::process::Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output();
        let _ = std::fs::remove_dir_all(&dir);
        let out = out.unwrap_or_else(|e| panic!("run haproxy -c (is it installed?): {e}"));
        assert!(
            out.status.success(),
            "haproxy -c failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Two clusters on one `HTTP_PORT` would otherwise both bind (SO_REUSEPORT) and the kernel
    /// would split clients between them: the second HAProxy must fail to start instead.
    #[test]
    fn a_second_haproxy_on_a_taken_port_fails_to_start() {
        let dir = std::env::temp_dir().join(format!("hadup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("free port: {e}"));
        let start = |n: u32| {
            let mut cfg = sample();
            cfg.bind = format!("127.0.0.1:{port}");
            cfg.stats_socket = dir.join(format!("s{n}.sock")).display().to_string();
            let path = dir.join(format!("haproxy{n}.cfg"));
            std::fs::write(&path, render(&cfg)).unwrap_or_default();
            std::process::Command::new("haproxy")
                .arg("-db")
                .arg("-f")
                .arg(&path)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("start haproxy (is it installed?): {e}"))
        };
        let mut first = start(1);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "first haproxy never listened"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let mut second = start(2);
        let mut exited = None;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while exited.is_none() && std::time::Instant::now() < deadline {
            exited = second.try_wait().ok().flatten();
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = second.kill();
        let _ = first.kill();
        let _ = second.wait();
        let _ = first.wait();
        let _ = std::fs::remove_dir_all(&dir);
        let status =
            exited.unwrap_or_else(|| panic!("second haproxy kept running on a taken port"));
        assert!(!status.success(), "second haproxy exited 0");
    }
}

//! A real `redis-server` on a free port, which tests may kill and restart.

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A Redis server owned by the test; killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts `redis-server` on a free port without persistence.
    pub fn start() -> anyhow::Result<Self> {
        let mut s = RedisServer {
            port: crate::free_port(),
            child: None,
        };
        s.restart()?;
        Ok(s)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server at once (SIGKILL): everything in it is gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// (Re)starts the server on the same port and waits until it answers PING.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        // Nothing is written to the dir: no persistence.
        let mut cmd = procs::redis::server_command(&std::env::temp_dir(), self.port);
        cmd.args(["--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(
            procs::spawn(cmd, procs::Group::Parent)
                .context("spawn redis-server (is it installed?)")?,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        anyhow::bail!("redis-server on port {} did not answer PING", self.port)
    }

    /// Runs a raw command (space-separated words) and returns the raw reply.
    pub fn command(&self, words: &[&str]) -> anyhow::Result<String> {
        raw_command(self.port, words)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn ping(port: u16) -> bool {
    raw_command(port, &["PING"])
        .map(|r| r.starts_with("+PONG"))
        .unwrap_or(false)
}

/// Sends one RESP command and returns what arrives within a short read.
pub fn raw_command(port: u16, words: &[&str]) -> anyhow::Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut req = format!("*{}\r\n", words.len());
    for w in words {
        req.push_str(&format!("${}\r\n{}\r\n", w.len(), w));
    }
    s.write_all(req.as_bytes())?;
    let mut buf = vec![0u8; 64 * 1024];
    let n = s.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

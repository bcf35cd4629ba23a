//! A real S3-compatible server on a free port (`moto_server`, from PyPI's `moto[server]`;
//! `make test` installs it when missing), shared by the tests of one process, each with its
//! own bucket. Buckets are read with plain HTTP (moto checks no signature), so a test sees
//! objects and unfinished multipart uploads as the bucket holds them, not as our code does.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Where `scripts/install-deps.sh` puts moto when no `moto_server` is on the `PATH`.
const VENV: &str = ".cache/chat-testdeps/moto";

/// The shared S3 server; it dies with the test process (`procs::spawn`).
#[derive(Debug)]
pub struct S3Server {
    pub port: u16,
    _child: Child,
}

static SHARED: OnceLock<S3Server> = OnceLock::new();
static BUCKETS: AtomicU64 = AtomicU64::new(0);

/// The process-wide S3 server, started on first use.
pub fn s3() -> &'static S3Server {
    SHARED.get_or_init(|| S3Server::start().expect("start moto_server"))
}

/// `moto_server`: `MOTO_SERVER`, else the one on the `PATH`, else install-deps' virtualenv.
fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("moto_server").is_file()))
        .unwrap_or(false);
    match std::env::var_os("HOME") {
        Some(home) if !on_path => PathBuf::from(home).join(VENV).join("bin/moto_server"),
        _ => PathBuf::from("moto_server"),
    }
}

impl S3Server {
    fn start() -> anyhow::Result<Self> {
        let port = crate::free_port();
        let mut cmd = Command::new(binary());
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = procs::spawn(cmd, procs::Group::Parent)
            .context("spawn moto_server (`make test` installs it: scripts/install-deps.sh)")?;
        let s = S3Server {
            port,
            _child: child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if matches!(s.request("GET", "/", ""), Ok((200, _))) {
                return Ok(s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        anyhow::bail!("moto_server on port {port} did not answer within 60 s")
    }

    /// The server's endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A new, empty bucket of its own.
    pub fn bucket(&self) -> anyhow::Result<String> {
        let name = format!(
            "b{}-{}",
            std::process::id(),
            BUCKETS.fetch_add(1, Ordering::Relaxed)
        );
        match self.request("PUT", &format!("/{name}"), "")? {
            (200, _) => Ok(name),
            (code, body) => anyhow::bail!("create bucket {name}: {code} {body}"),
        }
    }

    /// The `object_store` settings that reach this server (`Config::attachment_store_options`).
    pub fn options(&self) -> Vec<(String, String)> {
        [
            ("aws_endpoint", self.endpoint()),
            ("aws_allow_http", "true".to_owned()),
            ("aws_region", "us-east-1".to_owned()),
            ("aws_access_key_id", "test".to_owned()),
            ("aws_secret_access_key", "test".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The keys of the objects in `bucket`.
    pub fn keys(&self, bucket: &str) -> anyhow::Result<Vec<String>> {
        let body = self.get_ok(&format!("/{bucket}?list-type=2"))?;
        Ok(elements(&body, "Key"))
    }

    /// The keys of `bucket`'s multipart uploads begun and neither completed nor aborted.
    pub fn unfinished_uploads(&self, bucket: &str) -> anyhow::Result<Vec<String>> {
        let body = self.get_ok(&format!("/{bucket}?uploads"))?;
        Ok(elements(&body, "Upload")
            .iter()
            .flat_map(|u| elements(u, "Key"))
            .collect())
    }

    fn get_ok(&self, path: &str) -> anyhow::Result<String> {
        match self.request("GET", path, "")? {
            (200, body) => Ok(body),
            (code, body) => anyhow::bail!("GET {path}: {code} {body}"),
        }
    }

    /// One HTTP/1.1 request; the status and the body (as text).
    fn request(&self, method: &str, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let code = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .context("no HTTP status")?;
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        };
        Ok((code, body))
    }
}

/// The contents of every `<tag>...</tag>` in `xml`, in order (no nesting of the same tag).
fn elements(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].to_owned());
        rest = &after[j + close.len()..];
    }
    out
}

/// A chunked body's data.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_elements_and_chunks_are_read() {
        let xml = "<R><Upload><Key>1/a</Key><UploadId>x</UploadId></Upload>\
                   <Upload><Key>2/b</Key></Upload></R>";
        let keys: Vec<String> = elements(xml, "Upload")
            .iter()
            .flat_map(|u| elements(u, "Key"))
            .collect();
        assert_eq!(keys, ["1/a", "2/b"]);
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}

//! A minimal synchronous RESP2 client: one command per connection, the whole reply read
//! (nested arrays included) and flattened to text.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::Context;

/// How long a connect or a reply may take.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Sends `words` as one command to the Redis on 127.0.0.1:`port` and returns its reply as
/// text: a simple or bulk string as is, an integer in decimal, nil as the empty string, an
/// array as its elements one per line. A Redis error reply is an `Err` with its message.
pub fn command(port: u16, words: &[&str]) -> anyhow::Result<String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .with_context(|| format!("connect to redis on port {port}"))?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.write_all(&encode(words))
        .with_context(|| format!("send {:?} to port {port}", words.first()))?;
    let mut r = BufReader::new(s);
    let mut out = String::new();
    read_reply(&mut r, &mut out).with_context(|| format!("{words:?} on port {port}"))?;
    Ok(out)
}

/// `words` as a RESP array of bulk strings.
fn encode(words: &[&str]) -> Vec<u8> {
    let mut req = format!("*{}\r\n", words.len()).into_bytes();
    for w in words {
        req.extend_from_slice(format!("${}\r\n", w.len()).as_bytes());
        req.extend_from_slice(w.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    req
}

/// Reads one reply from `r` and appends its text to `out`.
fn read_reply(r: &mut impl BufRead, out: &mut String) -> anyhow::Result<()> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        anyhow::bail!("connection closed before the reply");
    }
    let line = line.trim_end_matches(['\r', '\n']);
    let mut chars = line.chars();
    let kind = chars.next();
    let rest = chars.as_str();
    match kind {
        Some('+' | ':') => out.push_str(rest),
        Some('-') => anyhow::bail!("redis error: {rest}"),
        Some('$') => {
            let len: i64 = rest.parse().context("bulk length")?;
            if let Ok(len) = usize::try_from(len) {
                let mut buf = vec![0u8; len + 2];
                r.read_exact(&mut buf)?;
                buf.truncate(len);
                out.push_str(&String::from_utf8_lossy(&buf));
            }
        }
        Some('*') => {
            let n: i64 = rest.parse().context("array length")?;
            for i in 0..n {
                if i > 0 {
                    out.push('\n');
                }
                read_reply(r, out)?;
            }
        }
        _ => anyhow::bail!("unexpected reply line {line:?}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> anyhow::Result<String> {
        let mut out = String::new();
        read_reply(&mut std::io::Cursor::new(bytes), &mut out)?;
        Ok(out)
    }

    #[test]
    fn encodes_bulk_string_arrays() {
        assert_eq!(encode(&["GET", "k"]), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }

    #[test]
    fn flattens_every_reply_kind() {
        assert_eq!(parse(b"+OK\r\n").ok().as_deref(), Some("OK"));
        assert_eq!(parse(b":42\r\n").ok().as_deref(), Some("42"));
        assert_eq!(parse(b"$-1\r\n").ok().as_deref(), Some(""));
        assert_eq!(
            parse(b"$12\r\nline1\r\nline2\r\n").ok().as_deref(),
            Some("line1\r\nline2")
        );
        assert_eq!(
            parse(b"*3\r\n$1\r\na\r\n:2\r\n*1\r\n+c\r\n")
                .ok()
                .as_deref(),
            Some("a\n2\nc")
        );
        let err = parse(b"-ERR nope\r\n").err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("redis error: ERR nope"));
        assert!(parse(b"").is_err());
    }
}

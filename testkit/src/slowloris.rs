//! A slowloris client: it starts a request's header, then trickles header bytes one at a time,
//! 200 ms apart; for tests that a server's header read timeout cuts it off.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Trickles a `GET /health` header to `addr` (for at most 5 s) and asserts the server cut the
/// connection off within 3 s, answering nothing or `408`: it never served the request.
pub async fn assert_cut_off(addr: &str) {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: slow\r\n")
        .await
        .expect("write the request line");
    let (mut r, mut w) = s.split();
    let trickle = async {
        for b in b"X-Slow: ".iter().chain(b"y".repeat(100).iter()).cycle() {
            if w.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let mut answer = Vec::new();
    let cut = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::select! {
            () = trickle => {}
            _ = r.read_to_end(&mut answer) => {}
        }
    })
    .await;
    assert!(cut.is_ok(), "still connected after 5 s of trickling");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "cut off after {took:?}");
    // hyper answers 408 or just closes.
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text:?}"
    );
}

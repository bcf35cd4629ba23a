//! `GET /sse`: the read-only Server-Sent Events stream. Events in seq order with their
//! position as `id:`, a stream cut mid-way and resumed with `Last-Event-ID` on another edge
//! (no gap, no duplicate), refusals before the stream starts, heartbeats, and the end of a
//! stream on drain.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

/// One event of the stream.
#[derive(Debug, Clone)]
struct Event {
    name: String,
    id: Option<String>,
    data: Value,
}

/// A stream read as a browser's `EventSource` would: blocks split on blank lines.
struct Sse {
    resp: reqwest::Response,
    buf: String,
    /// Comments (heartbeats) read so far.
    comments: usize,
}

impl Sse {
    async fn open(url: &str, last_event_id: Option<&str>) -> Result<Sse, (u16, String)> {
        let mut req = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        if status != 200 {
            return Err((status, resp.text().await.unwrap_or_default()));
        }
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(ct, "text/event-stream");
        Ok(Sse {
            resp,
            buf: String::new(),
            comments: 0,
        })
    }

    /// The next event; `None` when the stream ended.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(at) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..at + 2).collect();
                let (mut name, mut id, mut data) = ("message".to_owned(), None, String::new());
                let mut comment_only = true;
                for line in block.lines() {
                    if line.is_empty() || line.starts_with(':') {
                        continue;
                    }
                    comment_only = false;
                    let (k, v) = line.split_once(": ").unwrap_or((line, ""));
                    match k {
                        "event" => name = v.to_owned(),
                        "id" => id = Some(v.to_owned()),
                        "data" => data.push_str(v),
                        other => panic!("unexpected field {other} in {block:?}"),
                    }
                }
                if comment_only {
                    self.comments += 1;
                    continue;
                }
                let data = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{data}: {e}"));
                return Some(Event { name, id, data });
            }
            let chunk = tokio::time::timeout(WAIT, self.resp.chunk())
                .await
                .expect("timed out waiting for an event")
                .ok()??;
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    async fn event(&mut self) -> Event {
        self.next().await.expect("the stream ended")
    }
}

fn sse_url(edge: &TestEdge, token: &str, query: &str) -> String {
    edge.url(&format!("/sse?token={token}{query}"))
}

/// (channel, seq) of a `message` event.
fn seq_of(e: &Event) -> Option<(i64, i64)> {
    (e.name == "message").then(|| {
        let m = &e.data["message"];
        (
            m["channel_id"].as_i64().unwrap(),
            m["seq"].as_i64().unwrap(),
        )
    })
}

#[tokio::test]
async fn sse_stream_carries_a_channels_messages_in_order_with_its_position_as_id() {
    let env = Env::new().await;
    let edge = env.edge().await;
    let (a, b) = (env.user("ann").await, env.user("bob").await);
    let ch = env.channel("general", &[&a, &b]).await;
    let mut sse = Sse::open(&sse_url(&edge, &env.token(&a), ""), None)
        .await
        .unwrap();
    let ready = sse.event().await;
    assert_eq!(ready.name, "ready");
    assert_eq!(ready.id.as_deref(), Some(format!("{}:0", ch.id).as_str()));
    let mut bob = env.connect(&edge, &b).await;
    for i in 1..=3 {
        bob.send(ch.id, &format!("m{i}"), &format!("c{i}")).await;
    }
    for i in 1..=3 {
        let mut e = sse.event().await;
        while e.name != "message" {
            // Bob coming online, on the stream too.
            assert_eq!(e.name, "presence", "{e:?}");
            assert_eq!(e.id, None);
            e = sse.event().await;
        }
        assert_eq!(seq_of(&e), Some((ch.id, i)), "{e:?}");
        assert_eq!(e.id, Some(format!("{}:{i}", ch.id)));
        assert_eq!(e.data["message"]["content"], format!("m{i}"));
    }
}

#[tokio::test]
async fn sse_cut_mid_stream_resumes_with_last_event_id_on_another_edge_with_no_gap_or_duplicate() {
    let env = Env::new().await;
    let (e1, e2) = (env.edge().await, env.edge().await);
    let (a, b) = (env.user("ann").await, env.user("bob").await);
    let c1 = env.channel("one", &[&a, &b]).await;
    let c2 = env.channel("two", &[&a, &b]).await;
    let token = env.token(&a);
    let query = format!("&channels={},{}", c1.id, c2.id);
    let mut bob = env.connect(&e2, &b).await;

    let mut sse = Sse::open(&sse_url(&e1, &token, &query), None)
        .await
        .unwrap();
    assert_eq!(sse.event().await.name, "ready");
    for i in 0..4 {
        bob.send(c1.id, "x", &format!("a{i}")).await;
        bob.send(c2.id, "y", &format!("b{i}")).await;
    }
    // Read five of the eight, then cut the connection.
    let mut seen: Vec<(i64, i64)> = Vec::new();
    let mut last_id = None;
    while seen.len() < 5 {
        let e = sse.event().await;
        if let Some(s) = seq_of(&e) {
            seen.push(s);
            last_id = e.id.clone();
        }
    }
    drop(sse);
    // Sent while no stream is open.
    for i in 4..10 {
        bob.send(c1.id, "x", &format!("a{i}")).await;
        bob.send(c2.id, "y", &format!("b{i}")).await;
    }
    let last_id = last_id.unwrap();
    let mut sse = Sse::open(&sse_url(&e2, &token, &query), Some(&last_id))
        .await
        .unwrap();
    assert_eq!(sse.event().await.name, "ready");
    while seen.len() < 20 {
        let e = sse.event().await;
        if let Some(s) = seq_of(&e) {
            seen.push(s);
        }
    }
    // Live again after the catch-up.
    bob.send(c1.id, "x", "a10").await;
    loop {
        let e = sse.event().await;
        if let Some(s) = seq_of(&e) {
            seen.push(s);
            break;
        }
    }
    let mut per: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (c, s) in seen {
        per.entry(c).or_default().push(s);
    }
    assert_eq!(per[&c1.id], (1..=11).collect::<Vec<_>>(), "{per:?}");
    assert_eq!(per[&c2.id], (1..=10).collect::<Vec<_>>(), "{per:?}");
}

#[tokio::test]
async fn sse_refuses_a_bad_token_a_strangers_channel_and_a_bad_position_before_streaming() {
    let env = Env::new().await;
    let edge = env.edge().await;
    let (a, b) = (env.user("ann").await, env.user("bob").await);
    let mine = env.channel("mine", &[&a]).await;
    let theirs = env.channel("theirs", &[&b]).await;
    let token = env.token(&a);
    let status = |r: Result<Sse, (u16, String)>| r.err().map(|e| e.0);
    assert_eq!(
        status(Sse::open(&edge.url("/sse?token=nope"), None).await),
        Some(401)
    );
    assert_eq!(status(Sse::open(&edge.url("/sse"), None).await), Some(401));
    let q = format!("&channels={},{}", mine.id, theirs.id);
    let r = Sse::open(&sse_url(&edge, &token, &q), None).await;
    let (code, body) = r.err().unwrap();
    assert_eq!(code, 403);
    assert!(body.contains(&format!("channel {}", theirs.id)), "{body}");
    assert_eq!(
        status(Sse::open(&sse_url(&edge, &token, "&channels=x"), None).await),
        Some(400)
    );
    assert_eq!(
        status(Sse::open(&sse_url(&edge, &token, ""), Some("five")).await),
        Some(400)
    );
    // The refusals left nothing registered: a stream still opens.
    assert!(Sse::open(&sse_url(&edge, &token, ""), None).await.is_ok());
}

#[tokio::test]
async fn sse_sends_heartbeats_and_ends_with_1012_when_the_edge_drains() {
    let env = Env::new().await;
    let edge = env
        .edge_with(|c| c.ping_interval = Duration::from_millis(200))
        .await;
    let a = env.user("ann").await;
    env.channel("general", &[&a]).await;
    let mut sse = Sse::open(&sse_url(&edge, &env.token(&a), ""), None)
        .await
        .unwrap();
    assert_eq!(sse.event().await.name, "ready");
    tokio::time::sleep(Duration::from_millis(700)).await;
    edge.cancel();
    let end = sse.event().await;
    assert!(sse.comments >= 2, "{} heartbeats", sse.comments);
    assert_eq!(end.name, "end", "{end:?}");
    assert_eq!(end.data["code"], 1012);
    assert!(sse.next().await.is_none(), "the stream goes on after end");
}

#[tokio::test]
async fn sse_reader_that_falls_behind_gets_end_4008_after_a_gap_free_prefix() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = Env::new().await;
    let (a, b) = (env.user("ann").await, env.user("bob").await);
    let ch = env.channel("general", &[&a, &b]).await;
    let edge = env
        .edge_with(|c| {
            c.out_queue_frames = 64;
            c.out_queue_bytes = 1 << 20;
        })
        .await;
    // A reader that stops reading: a tiny receive buffer fills at once. HTTP/1.0, so the body
    // is the raw stream up to the close.
    let mut stream = tiny_window(edge.addr).await;
    let req = format!(
        "GET /sse?token={} HTTP/1.0\r\nHost: edge\r\n\r\n",
        env.token(&a)
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    // Read up to `ready` (the stream starts at the channel's seq then), and no further.
    let mut text = Vec::new();
    while !String::from_utf8_lossy(&text).contains("\"type\":\"ready\"") {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before ready");
        text.extend_from_slice(&buf[..n]);
    }
    // 6 MB of messages, more than the socket buffers and the queue hold, published as the
    // api-server would.
    env.flood(ch.id, b.id, 1500, async |_| {}).await;
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut text))
        .await
        .expect("the stream did not end")
        .unwrap();
    let text = String::from_utf8_lossy(&text);
    let (head, events) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    let blocks: Vec<&str> = events.split("\n\n").filter(|b| !b.is_empty()).collect();
    let last = blocks.last().unwrap();
    assert!(last.starts_with("event: end\n"), "{last}");
    assert!(last.contains("\"code\":4008"), "{last}");
    let seqs: Vec<i64> = blocks
        .iter()
        .filter(|b| b.starts_with("event: message\n"))
        .map(|b| {
            let data = b.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            let v: Value = serde_json::from_str(data).unwrap();
            v["message"]["seq"].as_i64().unwrap()
        })
        .collect();
    assert!(
        !seqs.is_empty() && seqs.len() < 1500,
        "{} messages",
        seqs.len()
    );
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
}

//! Test harness: real edges in-process on real PostgreSQL and Redis, and a WebSocket client
//! that speaks the protocol through the `shared` frame types.

use std::net::SocketAddr;
use std::time::Duration;

use edge_server::Config;
pub use fred::clients::Client as Redis;
use futures_util::{SinkExt, StreamExt};
use shared::auth::JwtKeys;
use shared::protocol::{Channel, Message, ServerFrame, User};
use shared::store::{NewMessage, SendOutcome, Store};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// Generous bound on every wait: a test fails by timing out, never by a tight deadline.
pub const WAIT: Duration = Duration::from_secs(10);

/// One test's database, Redis and signing keys.
pub struct Env {
    pub db_url: String,
    pub redis_url: String,
    pub store: Store,
    pub keys: JwtKeys,
}

impl Env {
    pub async fn new() -> Env {
        Env::with(testkit::fresh_db().await.url, testkit::redis_url()).await
    }

    pub async fn with(db_url: String, redis_url: String) -> Env {
        if std::env::var("TEST_LOG").is_ok() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
        let store = Store::connect(&db_url, 4).unwrap();
        let keys = JwtKeys::new(testkit::JWT_SECRET.as_bytes(), Duration::from_secs(3600)).unwrap();
        Env {
            db_url,
            redis_url,
            store,
            keys,
        }
    }

    pub fn config(&self) -> Config {
        let mut c = Config::new(&self.db_url, &self.redis_url, testkit::JWT_SECRET).unwrap();
        c.catchup_interval = Duration::from_millis(500);
        c.drain_spread = Duration::from_millis(200);
        c.db_pool_size = 4;
        c.send_workers = 2;
        c
    }

    pub async fn edge(&self) -> TestEdge {
        self.edge_with(|_| {}).await
    }

    pub async fn edge_with(&self, tweak: impl FnOnce(&mut Config)) -> TestEdge {
        let mut c = self.config();
        tweak(&mut c);
        TestEdge::start(c).await
    }

    pub async fn user(&self, name: &str) -> User {
        self.store.create_user(name, "x").await.unwrap()
    }

    pub fn token(&self, u: &User) -> String {
        self.keys.issue(u.id, &u.username).unwrap().0
    }

    /// A channel created by `members[0]` with every other member joined.
    pub async fn channel(&self, name: &str, members: &[&User]) -> Channel {
        let ch = self
            .store
            .create_channel(name, members[0].id)
            .await
            .unwrap();
        for m in &members[1..] {
            self.store.join(ch.id, m.id).await.unwrap();
        }
        ch
    }

    /// Stores `n` messages of 4,000 bytes from `sender` in channel `ch` (in batches of 50) and
    /// publishes each on the channel's topic as the api-server would; `after(seq)` runs after
    /// each publish (a test may pace the flood there).
    pub async fn flood(&self, ch: i64, sender: i64, n: usize, mut after: impl AsyncFnMut(i64)) {
        use fred::interfaces::PubsubInterface;
        let redis = redis_client(&self.redis_url).await;
        let topic = shared::topics::Topic::Channel(ch).name();
        let body = "x".repeat(4000);
        for chunk in 0..n.div_ceil(50) {
            let batch: Vec<NewMessage> = (0..50.min(n - chunk * 50))
                .map(|i| NewMessage {
                    channel_id: ch,
                    sender_id: sender,
                    content: body.clone(),
                    client_msg_id: Some(format!("c{chunk}-{i}")),
                    reply_to: None,
                    attachments: Vec::new(),
                })
                .collect();
            for o in self.store.send_batch(&batch).await.unwrap() {
                let SendOutcome::Stored(m) = o else {
                    panic!("{o:?}")
                };
                let seq = m.seq;
                let f = ServerFrame::Message { message: m }.to_json();
                let _: i64 = redis.publish(&topic, f).await.unwrap();
                after(seq).await;
            }
        }
    }

    pub async fn connect(&self, edge: &TestEdge, u: &User) -> Client {
        Client::connect(edge.addr, &self.token(u)).await
    }
}

/// An edge running in this process.
pub struct TestEdge {
    pub addr: SocketAddr,
    stop: CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestEdge {
    pub async fn start(config: Config) -> TestEdge {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let handle = tokio::spawn(edge_server::run(config, listener, stop.clone()));
        TestEdge {
            addr,
            stop,
            handle: Some(handle),
        }
    }

    /// Cancels the edge and waits for its drain to finish.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(15), h)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    }

    pub fn cancel(&self) {
        self.stop.cancel();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TestEdge {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What the client read next (one at a time, moved out at once: its size does not matter).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Got {
    Frame(ServerFrame),
    Closed(Option<u16>),
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct Client {
    pub ws: Ws,
    pub ready: ServerFrame,
    /// Messages that arrived while `send` waited for its ack, read first by `messages`.
    inbox: Vec<Message>,
}

impl Client {
    pub async fn connect(addr: SocketAddr, token: &str) -> Client {
        let url = format!("ws://{addr}/ws?token={token}");
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Client::from_ws(ws).await
    }

    pub async fn from_ws(ws: Ws) -> Client {
        let mut c = Client {
            ws,
            ready: ServerFrame::Pong,
            inbox: Vec::new(),
        };
        c.ready = c.frame().await;
        assert!(
            matches!(c.ready, ServerFrame::Ready { .. }),
            "{:?}",
            c.ready
        );
        c
    }

    pub async fn next(&mut self) -> Got {
        loop {
            let m = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a frame");
            match m {
                None | Some(Err(_)) => return Got::Closed(None),
                Some(Ok(WsMessage::Text(t))) => {
                    let f: ServerFrame = serde_json::from_str(&t)
                        .unwrap_or_else(|e| panic!("bad server frame {t}: {e}"));
                    return Got::Frame(f);
                }
                Some(Ok(WsMessage::Close(c))) => {
                    return Got::Closed(c.map(|c| u16::from(c.code)));
                }
                Some(Ok(_)) => {}
            }
        }
    }

    pub async fn frame(&mut self) -> ServerFrame {
        match self.next().await {
            Got::Frame(f) => f,
            Got::Closed(c) => panic!("socket closed ({c:?}) while waiting for a frame"),
        }
    }

    /// Skips frames until `f` picks one.
    pub async fn until<T>(&mut self, mut f: impl FnMut(&ServerFrame) -> Option<T>) -> T {
        loop {
            let fr = self.frame().await;
            if let Some(t) = f(&fr) {
                return t;
            }
        }
    }

    pub async fn send_json(&mut self, v: serde_json::Value) {
        self.ws.send(WsMessage::text(v.to_string())).await.unwrap();
    }

    pub async fn send_raw(&mut self, m: WsMessage) {
        self.ws.send(m).await.unwrap();
    }

    /// Sends a message and returns the stored message from its `ack`.
    pub async fn send(&mut self, ch: i64, content: &str, cmid: &str) -> Message {
        self.send_json(serde_json::json!({
            "type": "send", "channel_id": ch, "content": content, "client_msg_id": cmid
        }))
        .await;
        let mut inbox = Vec::new();
        let acked = self
            .until(|f| match f {
                ServerFrame::Message { message } => {
                    inbox.push(message.clone());
                    None
                }
                ServerFrame::Ack {
                    client_msg_id,
                    message,
                    ..
                } if client_msg_id.as_deref() == Some(cmid) => Some(message.clone()),
                ServerFrame::Error {
                    client_msg_id,
                    code,
                    message,
                    ..
                } if client_msg_id.as_deref() == Some(cmid) => {
                    panic!("send {cmid} failed: {code:?} {message}")
                }
                _ => None,
            })
            .await;
        self.inbox.extend(inbox);
        acked
    }

    /// The next frame that is not a `message`, `presence` or `typing` (replies to the client).
    pub async fn reply(&mut self) -> ServerFrame {
        self.until(|f| match f {
            ServerFrame::Message { .. } | ServerFrame::Presence { .. } => None,
            other => Some(other.clone()),
        })
        .await
    }

    /// Collects the next `n` messages of channel `ch`, skipping other frames.
    pub async fn messages(&mut self, ch: i64, n: usize) -> Vec<Message> {
        let mut out = Vec::with_capacity(n);
        let mut rest = Vec::new();
        for m in std::mem::take(&mut self.inbox) {
            if m.channel_id == ch && out.len() < n {
                out.push(m);
            } else {
                rest.push(m);
            }
        }
        self.inbox = rest;
        while out.len() < n {
            if let ServerFrame::Message { message } = self.frame().await {
                if message.channel_id == ch {
                    out.push(message);
                }
            }
        }
        out
    }

    /// Reads until the server closes; returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            if let Got::Closed(c) = self.next().await {
                return c;
            }
        }
    }

    /// Waits `quiet`, then asserts no `message` came meanwhile (up to a round trip).
    pub async fn no_message_within(&mut self, quiet: Duration) {
        tokio::time::sleep(quiet).await;
        let seen = self.sync().await;
        assert!(
            seen.iter()
                .all(|f| !matches!(f, ServerFrame::Message { .. })),
            "{seen:?}"
        );
    }

    /// A round trip: everything the server queued before the pong is read by then.
    pub async fn sync(&mut self) -> Vec<ServerFrame> {
        self.send_json(serde_json::json!({"type": "ping"})).await;
        let mut seen = Vec::new();
        loop {
            match self.frame().await {
                ServerFrame::Pong => return seen,
                f => seen.push(f),
            }
        }
    }
}

/// A TCP connection to `addr` with a 4 KiB receive buffer: once the client stops reading, the
/// edge's writes to it block almost at once.
pub async fn tiny_window(addr: SocketAddr) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(addr).await.unwrap()
}

/// Asserts the seqs are exactly `from..=to` in order.
pub fn assert_seqs(msgs: &[Message], from: i64, to: i64) {
    let got: Vec<i64> = msgs.iter().map(|m| m.seq).collect();
    let want: Vec<i64> = (from..=to).collect();
    assert_eq!(got, want);
}

/// A plain HTTP GET returning status and body.
pub async fn http_get(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let url: hyper::Uri = url.parse().unwrap();
    let host = url.authority().unwrap().as_str().to_owned();
    let stream = TcpStream::connect(&host).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::get(url.path_and_query().unwrap().as_str()).header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    use http_body_util::BodyExt;
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A bus on the Redis at `url`, publishing as the servers do (sharded topics on a cluster).
pub async fn bus(url: &str) -> shared::bus::Bus {
    let metrics = shared::metrics::Metrics::new(&[]);
    let token = tokio_util::sync::CancellationToken::new();
    shared::bus::Bus::spawn(redis_client(url).await, &metrics, token)
}

/// A plain Redis client for publishing and inspecting topics as another process would.
pub async fn redis_client(url: &str) -> Redis {
    testkit::redis_client(url).await.unwrap()
}

/// `GET {api}{path}` with `token`: the JSON body of a 200.
pub async fn api_get(api: &str, token: &str, path: &str) -> serde_json::Value {
    let r = reqwest::Client::new()
        .get(format!("{api}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

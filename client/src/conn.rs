//! One WebSocket to an edge: open it (from a chosen source address) and wait for `ready`,
//! write client frames, read server frames as text or typed, and say why it ended and whether
//! that calls for a reconnect (SPEC section 4 close codes).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use futures_util::{SinkExt, StreamExt};
use shared::protocol::{ClientFrame, MyChannel, ServerFrame, User};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{
    client_async_with_config,
    tungstenite::{
        self, client::IntoClientRequest, http, protocol::WebSocketConfig, Message as WsMessage,
        Utf8Bytes,
    },
    WebSocketStream,
};

use crate::frames;

/// Close codes after which a client reconnects and resumes: abnormal closure (1006), edge
/// restarting (1012), slow consumer (4008).
const RECONNECT_CODES: [u16; 3] = [1006, 1012, 4008];
/// Token expired: log in again.
const TOKEN_EXPIRED: u16 = 4001;

/// Why opening a socket failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("websocket: {0}")]
    Ws(#[from] tungstenite::Error),
    #[error("timed out")]
    Timeout,
    /// The first frame was not `ready`.
    #[error("first frame not ready: {0}")]
    NotReady(String),
    #[error("{0}")]
    Protocol(String),
    #[error("gave up after {reconnects} reconnects{}", last.as_ref().map(|e| format!(" (last: {e})")).unwrap_or_default())]
    GaveUp {
        reconnects: u32,
        last: Option<Box<ConnectError>>,
    },
}

impl ConnectError {
    /// The handshake was refused with 401: the token is no good, log in again.
    pub fn log_in_again(&self) -> bool {
        self.http_status() == Some(401)
    }

    /// Trying again cannot help: the server refused the token or the origin, or broke the
    /// protocol, or the reconnects are used up.
    pub fn is_final(&self) -> bool {
        matches!(self.http_status(), Some(401 | 403))
            || matches!(
                self,
                ConnectError::NotReady(_) | ConnectError::GaveUp { .. }
            )
    }

    fn http_status(&self) -> Option<u16> {
        match self {
            ConnectError::Ws(tungstenite::Error::Http(resp)) => Some(resp.status().as_u16()),
            _ => None,
        }
    }
}

/// Why a socket ended. `Display` is the short reason a report counts closes by.
#[derive(Debug, thiserror::Error)]
pub enum Disconnect {
    /// The server sent a close frame with this code.
    #[error("close {0}")]
    Closed(u16),
    /// The server sent a close frame without a code.
    #[error("close")]
    ClosedWithoutCode,
    /// The stream ended without a close frame.
    #[error("eof")]
    Eof,
    /// A read or write failed (a killed edge resets the connection).
    #[error(transparent)]
    Ws(#[from] tungstenite::Error),
}

/// What to do after a [`Disconnect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Reconnect (with backoff) and resume.
    Reconnect,
    /// The token expired (4001): log in again, then connect.
    LogInAgain,
    /// The server closed on purpose: do not reconnect.
    Stop,
}

impl Disconnect {
    /// The close code, when the server sent one.
    pub fn code(&self) -> Option<u16> {
        match self {
            Disconnect::Closed(c) => Some(*c),
            _ => None,
        }
    }

    /// 1006, 1012, 4008 and dropped connections reconnect; 4001 asks for a new login; any
    /// other close code is final.
    pub fn next(&self) -> Next {
        match self.code() {
            Some(TOKEN_EXPIRED) => Next::LogInAgain,
            Some(c) if !RECONNECT_CODES.contains(&c) => Next::Stop,
            _ => Next::Reconnect,
        }
    }
}

/// A typed read that did not give a frame.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    #[error(transparent)]
    Disconnected(#[from] Disconnect),
    /// A text frame that is no `ServerFrame`; the socket is still open.
    #[error("unreadable frame {text}: {error}")]
    Malformed {
        text: Utf8Bytes,
        error: serde_json::Error,
    },
}

/// The first frame of every socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub session_id: String,
    pub user: User,
    /// The edge serving this socket.
    pub edge: String,
    /// The user's channels with their `last_seq`.
    pub channels: Vec<MyChannel>,
}

/// The WebSocket subprotocol under which the edge may send several server frames in one text
/// frame (a JSON array, in order).
pub const BATCH_PROTOCOL: &str = "chat.v1.batch";

/// Opens a TCP connection (no Nagle) to `url`'s host and port, from `source` if given (an
/// address of the same family is picked).
pub async fn dial(url: &str, source: Option<IpAddr>) -> Result<TcpStream, ConnectError> {
    let req = url.into_client_request()?;
    let host = req.uri().host().unwrap_or("127.0.0.1").to_owned();
    let port = req.uri().port_u16().unwrap_or(80);
    let v6 = source.is_some_and(|ip| ip.is_ipv6());
    let addr: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
        .await?
        .find(|a| a.is_ipv6() == v6)
        .ok_or_else(|| {
            let family = if v6 { "IPv6" } else { "IPv4" };
            ConnectError::Protocol(format!("no {family} address for {host}"))
        })?;
    let sock = if v6 {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    if let Some(ip) = source {
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = sock.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One open socket, past its `ready`.
#[derive(Debug)]
pub struct Connection {
    ws: WebSocketStream<TcpStream>,
    /// The edge agreed to batch frames.
    batch: bool,
    /// Frames of a batch not yet returned.
    split: VecDeque<Utf8Bytes>,
    /// Batch frames read (each of several server frames).
    batches: u64,
}

impl Connection {
    /// Opens `url` (`ws://host:port/ws?token=...`) from `source` if given, and waits for
    /// `ready`, which must be the first text frame. With `batch` it asks for
    /// [`BATCH_PROTOCOL`]; reads return one server frame at a time either way.
    pub async fn open(
        url: &str,
        source: Option<IpAddr>,
        config: WebSocketConfig,
        batch: bool,
    ) -> Result<(Connection, Ready), ConnectError> {
        let stream = dial(url, source).await?;
        Connection::open_on(stream, url, config, batch).await
    }

    /// Like [`Connection::open`], over a TCP connection the caller made (to set its buffers).
    pub async fn open_on(
        stream: TcpStream,
        url: &str,
        config: WebSocketConfig,
        batch: bool,
    ) -> Result<(Connection, Ready), ConnectError> {
        let mut req = url.into_client_request()?;
        if batch {
            req.headers_mut().insert(
                http::header::SEC_WEBSOCKET_PROTOCOL,
                http::HeaderValue::from_static(BATCH_PROTOCOL),
            );
        }
        stream.set_nodelay(true)?;
        let (ws, resp) = client_async_with_config(req, stream, Some(config)).await?;
        let batch = resp
            .headers()
            .get(http::header::SEC_WEBSOCKET_PROTOCOL)
            .is_some_and(|v| v.as_bytes() == BATCH_PROTOCOL.as_bytes());
        let mut conn = Connection {
            ws,
            batch,
            split: VecDeque::new(),
            batches: 0,
        };
        let ready = conn.ready().await?;
        Ok((conn, ready))
    }

    /// Whether the edge batches frames on this socket.
    pub fn batched(&self) -> bool {
        self.batch
    }

    /// How many batch frames (arrays of several server frames) this socket has read.
    pub fn batches_read(&self) -> u64 {
        self.batches
    }

    async fn ready(&mut self) -> Result<Ready, ConnectError> {
        loop {
            match self.ws.next().await {
                Some(Ok(WsMessage::Text(t))) => {
                    let t = self.unbatch(t);
                    return match serde_json::from_str(&t) {
                        Ok(ServerFrame::Ready {
                            session_id,
                            user,
                            edge,
                            channels,
                            ..
                        }) => Ok(Ready {
                            session_id,
                            user,
                            edge,
                            channels,
                        }),
                        _ => Err(ConnectError::NotReady(t.to_string())),
                    };
                }
                Some(Ok(WsMessage::Close(c))) => {
                    return Err(ConnectError::Protocol(format!(
                        "closed before ready: {c:?}"
                    )))
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Err(ConnectError::Protocol("closed before ready".into())),
            }
        }
    }

    /// Queues a text frame; it goes out by the next [`Connection::flush`] at the latest.
    pub async fn feed(&mut self, text: Utf8Bytes) -> Result<(), Disconnect> {
        Ok(self.ws.feed(WsMessage::Text(text)).await?)
    }

    pub async fn flush(&mut self) -> Result<(), Disconnect> {
        Ok(self.ws.flush().await?)
    }

    /// Writes one text frame now.
    pub async fn send_text(&mut self, text: Utf8Bytes) -> Result<(), Disconnect> {
        Ok(self.ws.send(WsMessage::Text(text)).await?)
    }

    /// Writes one client frame now.
    pub async fn send(&mut self, frame: &ClientFrame) -> Result<(), Disconnect> {
        self.send_text(frames::client_text(frame)).await
    }

    /// The next text frame, as it came (for [`frames::parse`]). Cancel-safe.
    #[inline]
    pub async fn next_text(&mut self) -> Result<Utf8Bytes, Disconnect> {
        if let Some(t) = self.split.pop_front() {
            return Ok(t);
        }
        loop {
            match self.ws.next().await {
                Some(Ok(WsMessage::Text(t))) => return Ok(self.unbatch(t)),
                Some(Ok(WsMessage::Close(Some(c)))) => {
                    return Err(Disconnect::Closed(u16::from(c.code)))
                }
                Some(Ok(WsMessage::Close(None))) => return Err(Disconnect::ClosedWithoutCode),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Err(Disconnect::Eof),
            }
        }
    }

    /// The first frame of a batch (the rest wait in `split`), or `t` as it is.
    fn unbatch(&mut self, t: Utf8Bytes) -> Utf8Bytes {
        if !self.batch {
            return t;
        }
        match frames::split_batch(&t) {
            Some(parts) => {
                self.batches += 1;
                self.split.extend(parts);
                self.split.pop_front().unwrap_or(t)
            }
            None => t,
        }
    }

    /// The next server frame, typed. Cancel-safe.
    pub async fn recv(&mut self) -> Result<ServerFrame, RecvError> {
        let text = self.next_text().await?;
        serde_json::from_str(&text).map_err(|error| RecvError::Malformed { text, error })
    }

    /// Closes normally (1000), waiting at most `within` for the close handshake.
    pub async fn close(&mut self, within: std::time::Duration) {
        let _ = tokio::time::timeout(within, self.ws.close(None)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::{Disconnect, Next};

    #[test]
    fn restarts_slow_consumers_and_drops_reconnect_an_expired_token_logs_in_again() {
        let next = |d: Disconnect| d.next();
        for code in [1006, 1012, 4008] {
            assert_eq!(next(Disconnect::Closed(code)), Next::Reconnect, "{code}");
        }
        assert_eq!(next(Disconnect::Eof), Next::Reconnect);
        assert_eq!(next(Disconnect::ClosedWithoutCode), Next::Reconnect);
        let reset = tokio_tungstenite::tungstenite::Error::ConnectionClosed;
        assert_eq!(next(Disconnect::Ws(reset)), Next::Reconnect);
        assert_eq!(next(Disconnect::Closed(4001)), Next::LogInAgain);
        for code in [1000, 1008, 1009, 1011] {
            assert_eq!(next(Disconnect::Closed(code)), Next::Stop, "{code}");
        }
        assert_eq!(Disconnect::Closed(1012).to_string(), "close 1012");
        assert_eq!(Disconnect::Eof.to_string(), "eof");
    }
}

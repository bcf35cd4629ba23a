//! The HTTP side of the edge's one port: `GET /health`, `GET /metrics`, `GET /ws` and
//! `GET /sse`, whose token and `Origin` are checked before the upgrade or the stream (401 /
//! 403 without either).

use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use shared::auth::{bearer, Claims};
use shared::protocol::{ErrorBody, ErrorCode, ErrorDetail};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::edge::Edge;
use crate::session::{OpenError, Session};
use crate::sse::{self, Refused};
use crate::wire::BATCH_PROTOCOL;

type Resp = Response<sse::Body>;

/// Why a request was refused; mapped to a status and body in [`HttpError::response`] only.
#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error("{0}")]
    BadRequest(&'static str),
    #[error("missing, invalid or expired token")]
    Unauthorized,
    #[error("origin not allowed")]
    Forbidden,
    #[error("not a member of channel {0}")]
    NotMember(i64),
    #[error("not found")]
    NotFound,
    #[error("unavailable")]
    Unavailable,
}

impl HttpError {
    fn response(&self) -> Resp {
        let (status, code) = match self {
            HttpError::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            HttpError::Unauthorized => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            HttpError::Forbidden | HttpError::NotMember(_) => {
                (StatusCode::FORBIDDEN, ErrorCode::Forbidden)
            }
            HttpError::NotFound => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            HttpError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
                retry_after_ms: None,
            },
        };
        json(status, serde_json::to_string(&body).unwrap_or_default())
    }
}

fn whole(body: impl Into<Bytes>) -> Resp {
    Response::new(Full::new(body.into()).boxed())
}

fn json(status: StatusCode, body: String) -> Resp {
    let mut r = whole(body);
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Serves one HTTP request.
pub async fn handle(edge: Arc<Edge>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let r = match (req.method(), req.uri().path()) {
        (&hyper::Method::GET, "/health") => {
            if edge.healthy().await {
                Ok(json(StatusCode::OK, r#"{"status":"ok"}"#.into()))
            } else {
                Err(HttpError::Unavailable)
            }
        }
        (&hyper::Method::GET, "/metrics") => {
            let mut r = whole(edge.registry.render());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            Ok(r)
        }
        (&hyper::Method::GET, "/ws") => upgrade(edge, req).await,
        (&hyper::Method::GET, "/sse") => stream(edge, req).await,
        _ => Err(HttpError::NotFound),
    };
    Ok(r.unwrap_or_else(|e| e.response()))
}

fn token_of(req: &Request<Incoming>) -> Option<String> {
    if let Some(q) = req.uri().query() {
        for pair in q.split('&') {
            if let Some(t) = pair.strip_prefix("token=") {
                return Some(t.to_owned());
            }
        }
    }
    let h = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    bearer(h).map(str::to_owned)
}

fn header_has(req: &Request<Incoming>, name: header::HeaderName, word: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(word)))
    })
}

/// The token's claims, and a browser's `Origin` matched exactly against the allowed ones.
fn authorize(edge: &Edge, req: &Request<Incoming>) -> Result<Claims, HttpError> {
    let claims: Claims = token_of(req)
        .and_then(|t| edge.config.jwt.verify(&t).ok())
        .ok_or(HttpError::Unauthorized)?;
    match req.headers().get(header::ORIGIN) {
        Some(origin) => {
            let ok = origin
                .to_str()
                .is_ok_and(|o| edge.config.allowed_origins.iter().any(|a| a == o));
            if !ok {
                return Err(HttpError::Forbidden);
            }
        }
        // Non-browser clients send no `Origin`. A browser always does on a WebSocket or
        // cross-site request; one that sends `Sec-Fetch-Site` but no `Origin` had it stripped.
        // (`Sec-Fetch-Mode` alone is no browser: Node's own WebSocket sends it, no `Origin`.)
        None if req.headers().contains_key("sec-fetch-site") => {
            return Err(HttpError::Forbidden);
        }
        None => {}
    }
    Ok(claims)
}

/// Registers the token's user's socket (maps, presence) and reads its channels.
async fn open(edge: &Arc<Edge>, claims: &Claims) -> Result<Session, HttpError> {
    if edge.draining.load(Relaxed) {
        return Err(HttpError::Unavailable);
    }
    match Session::open(edge, claims).await {
        Ok(s) => Ok(s),
        Err(OpenError::NoUser) => Err(HttpError::Unauthorized),
        Err(OpenError::Unavailable(e)) => {
            tracing::warn!(error = %e, "socket setup failed");
            Err(HttpError::Unavailable)
        }
    }
}

/// `GET /sse?channels=5,7`, resumed by `Last-Event-ID`: see `sse`.
async fn stream(edge: Arc<Edge>, req: Request<Incoming>) -> Result<Resp, HttpError> {
    let claims = authorize(&edge, &req)?;
    let last = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok());
    let (only, from) = sse::params(req.uri().query(), last).map_err(refused)?;
    let session = open(&edge, &claims).await?;
    let body = sse::start(&edge, session, only.as_deref(), &from).map_err(refused)?;
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(r)
}

fn refused(r: Refused) -> HttpError {
    match r {
        Refused::BadRequest(why) => HttpError::BadRequest(why),
        Refused::NotMember(c) => HttpError::NotMember(c),
    }
}

async fn upgrade(edge: Arc<Edge>, mut req: Request<Incoming>) -> Result<Resp, HttpError> {
    let claims = authorize(&edge, &req)?;
    if !header_has(&req, header::UPGRADE, "websocket")
        || !header_has(&req, header::CONNECTION, "upgrade")
    {
        return Err(HttpError::BadRequest("expected a WebSocket upgrade"));
    }
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(HttpError::BadRequest("missing Sec-WebSocket-Key"))?;
    let accept = derive_accept_key(key.as_bytes());
    let batch = header_has(&req, header::SEC_WEBSOCKET_PROTOCOL, BATCH_PROTOCOL);
    let session = open(&edge, &claims).await?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let max = edge.config.limits.max_frame_bytes;
    edge.tracker.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws_cfg = WebSocketConfig::default()
                    .read_buffer_size(256)
                    .write_buffer_size(8192)
                    .max_write_buffer_size(max.max(4096) * 4)
                    .max_frame_size(Some(max))
                    .max_message_size(Some(max));
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(ws_cfg),
                )
                .await;
                session.run(ws, batch).await;
            }
            // Dropping the session unregisters the socket.
            Err(err) => tracing::debug!(error = %err, "upgrade failed"),
        }
    });

    let mut r = whole(Bytes::new());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if batch {
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(BATCH_PROTOCOL),
        );
    }
    Ok(r)
}

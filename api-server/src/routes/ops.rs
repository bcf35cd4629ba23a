//! Operations routes: `/health`, `/metrics`, the web client at `/` with its assets (embedded
//! in the binary), and JSON fallbacks.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{Html, IntoResponse};
use fred::interfaces::ClientLike;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

const INDEX_HTML: &str = include_str!("../../web/index.html");

const JS: &str = "text/javascript; charset=utf-8";

/// The web client's files and the JavaScript client library it is built on
/// (`clients/js/src`, served as ES modules under `/js/chat-client/`): path, content type, body.
pub const ASSETS: &[(&str, &str, &str)] = &[
    ("/app.js", JS, include_str!("../../web/app.js")),
    (
        "/app.css",
        "text/css; charset=utf-8",
        include_str!("../../web/app.css"),
    ),
    (
        "/favicon.svg",
        "image/svg+xml",
        include_str!("../../web/favicon.svg"),
    ),
    // Browsers ask for /favicon.ico whatever the page says; SVG is what they get.
    (
        "/favicon.ico",
        "image/svg+xml",
        include_str!("../../web/favicon.svg"),
    ),
    (
        "/js/chat-client/index.js",
        JS,
        include_str!("../../../clients/js/src/index.js"),
    ),
    (
        "/js/chat-client/client.js",
        JS,
        include_str!("../../../clients/js/src/client.js"),
    ),
    (
        "/js/chat-client/rest.js",
        JS,
        include_str!("../../../clients/js/src/rest.js"),
    ),
    (
        "/js/chat-client/tracks.js",
        JS,
        include_str!("../../../clients/js/src/tracks.js"),
    ),
    (
        "/js/chat-client/requests.js",
        JS,
        include_str!("../../../clients/js/src/requests.js"),
    ),
    (
        "/js/chat-client/backoff.js",
        JS,
        include_str!("../../../clients/js/src/backoff.js"),
    ),
    (
        "/js/chat-client/emitter.js",
        JS,
        include_str!("../../../clients/js/src/emitter.js"),
    ),
    (
        "/js/chat-client/errors.js",
        JS,
        include_str!("../../../clients/js/src/errors.js"),
    ),
];

/// 200 when PostgreSQL and Redis both answer within 2 s, else 503.
pub async fn health(State(s): State<AppState>) -> impl IntoResponse {
    let redis = async {
        matches!(
            tokio::time::timeout(Duration::from_secs(2), s.redis.ping::<String>(None)).await,
            Ok(Ok(_))
        )
    };
    let (pg, redis) = tokio::join!(s.store.ping(), redis);
    let word = |up: bool| if up { "up" } else { "down" };
    let status = if pg && redis {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if pg && redis { "ok" } else { "unavailable" },
        "postgres": word(pg),
        "redis": word(redis),
    });
    (status, axum::Json(body))
}

/// Prometheus text format.
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

/// The web client.
pub async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

/// One of [`ASSETS`], by the request's path. Revalidated on every load (`no-cache`): the
/// files change with the binary, and they are small.
pub async fn asset(uri: Uri) -> Result<impl IntoResponse, ApiError> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(path, _, _)| *path == uri.path())
        .ok_or(ApiError::NotFound("no such route"))?;
    Ok((
        [
            (header::CONTENT_TYPE, *content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *body,
    ))
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route")
}

pub async fn method_not_allowed() -> impl IntoResponse {
    let body = json!({"error": {"code": "bad_request", "message": "method not allowed"}});
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body))
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    /// A module added to the library but not here would be a 404 for the page's imports.
    #[test]
    fn every_module_of_the_javascript_client_is_served() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/js/src");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if !name.ends_with(".js") {
                continue;
            }
            let path = format!("/js/chat-client/{name}");
            assert!(
                ASSETS.iter().any(|(p, _, _)| *p == path),
                "{path} is not in ASSETS"
            );
        }
    }
}

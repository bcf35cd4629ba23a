//! Operations routes: `/health`, `/metrics`, the web client at `/`, and JSON fallbacks.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse};
use fred::interfaces::ClientLike;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

const INDEX_HTML: &str = include_str!("../../web/index.html");

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

pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route")
}

pub async fn method_not_allowed() -> impl IntoResponse {
    let body = json!({"error": {"code": "bad_request", "message": "method not allowed"}});
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body))
}

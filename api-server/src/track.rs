//! The per-request middleware: counts requests by method, route and status, times them by
//! route, and turns a panic into the JSON 500.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let span = tracing::info_span!("request", %method, %route, user_id = tracing::field::Empty);
    let resp = {
        use futures_util::FutureExt;
        use tracing::Instrument;
        // A panicking handler still answers with the JSON 500 (and never its message).
        std::panic::AssertUnwindSafe(next.run(req).instrument(span))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                crate::error::ApiError::Unexpected(anyhow::anyhow!("handler panicked"))
                    .into_response()
            })
    };
    let status = resp.status().as_u16().to_string();
    let secs = start.elapsed().as_secs_f64();
    state.metrics.record(|| {
        metrics::counter!("http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
            .increment(1);
        metrics::histogram!("http_request_duration_seconds", "route" => route).record(secs);
    });
    resp
}

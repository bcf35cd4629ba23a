//! Metrics: a Prometheus recorder owned by each server (never installed globally, so many
//! servers can live in one test process) and the per-request middleware feeding it.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::state::AppState;

/// The recorder of one server and the handle that renders it.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        Metrics { recorder, handle }
    }

    /// Runs `f` with this server's recorder as the target of the `metrics` macros.
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Drains histogram buckets; call periodically.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts requests by method, route and status, times them by route, and turns a panic into
/// a 500.
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

//! The one metrics facade of every process: a Prometheus recorder owned by a server (never
//! installed globally, so several servers can share a test process) that hands out metric
//! handles registered once, for hot paths, and renders `/metrics`.

use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, Key, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// Upper bounds of every latency histogram, in seconds.
const SECONDS_BUCKETS: [f64; 14] = [
    0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];
/// Upper bounds of the group-commit batch size histogram.
const BATCH_BUCKETS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

const METADATA: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, None);

/// A server's recorder; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(&[])
    }
}

impl Metrics {
    /// A recorder whose every series carries `labels` (such as the edge id). Series whose name
    /// ends in `_seconds` or `_batch_size` are histograms with buckets; other histograms are
    /// summaries.
    pub fn new(labels: &[(&str, &str)]) -> Self {
        let mut b = PrometheusBuilder::new();
        for (k, v) in labels {
            b = b.add_global_label(*k, *v);
        }
        let b = b
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Suffix("_batch_size".into()), &BATCH_BUCKETS)
            });
        let recorder = match b {
            Ok(b) => b.build_recorder(),
            // Only an empty bucket list fails; ours are constant and not empty.
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let handle = recorder.handle();
        Metrics {
            recorder: Arc::new(recorder),
            handle,
        }
    }

    /// A counter handle, described for `# HELP`.
    pub fn counter(&self, name: &'static str, help: &'static str) -> Counter {
        self.recorder
            .describe_counter(name.into(), None, SharedString::const_str(help));
        self.recorder
            .register_counter(&Key::from_static_name(name), &METADATA)
    }

    /// A gauge handle, described for `# HELP`.
    pub fn gauge(&self, name: &'static str, help: &'static str) -> Gauge {
        self.recorder
            .describe_gauge(name.into(), None, SharedString::const_str(help));
        self.recorder
            .register_gauge(&Key::from_static_name(name), &METADATA)
    }

    /// A histogram handle in seconds, described for `# HELP`.
    pub fn histogram(&self, name: &'static str, help: &'static str) -> Histogram {
        let unit = name.ends_with("_seconds").then_some(Unit::Seconds);
        self.recorder
            .describe_histogram(name.into(), unit, SharedString::const_str(help));
        self.recorder
            .register_histogram(&Key::from_static_name(name), &METADATA)
    }

    /// Runs `f` with this recorder as the target of the `metrics` macros (for series with
    /// labels that vary per call, such as an HTTP route).
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(self.recorder.as_ref(), f)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Drains histogram buckets; call every few seconds.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_render_with_global_labels_and_buckets() {
        let m = Metrics::new(&[("edge", "e1")]);
        let c = m.counter("things_total", "Things");
        c.increment(3);
        let h = m.histogram("op_seconds", "How long");
        h.record(0.003);
        let text = m.render();
        assert!(text.contains("# HELP things_total Things"), "{text}");
        assert!(text.contains("things_total{edge=\"e1\"} 3"), "{text}");
        assert!(
            text.contains("op_seconds_bucket{edge=\"e1\",le=\"0.005\"} 1"),
            "{text}"
        );
    }
}

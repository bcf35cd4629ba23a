//! Publishing events on Redis after the fact they describe is committed. A failed publish never
//! fails the request: the commit stands, and edges fill holes from PostgreSQL (SPEC 5.4).

use fred::clients::Client;
use fred::interfaces::{ClientLike, PubsubInterface};
use shared::ServerFrame;

use crate::observe::Metrics;

/// Publishes `frame` as JSON on `topic`; logs and counts a failure.
pub async fn publish(redis: &Client, metrics: &Metrics, topic: String, frame: &ServerFrame) {
    let payload = frame.to_json();
    let result = if redis.is_connected() {
        redis.publish::<i64, _, _>(topic.as_str(), payload).await
    } else {
        Err(fred::error::Error::new(
            fred::error::ErrorKind::IO,
            "not connected",
        ))
    };
    if let Err(e) = result {
        tracing::warn!(%topic, error = %e, "publish failed; edges will fill from PostgreSQL");
        metrics.record(|| metrics::counter!("redis_publish_failures_total").increment(1));
    }
}

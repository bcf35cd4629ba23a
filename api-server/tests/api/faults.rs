//! Faults: PostgreSQL stopped under a running server (503, then recovery by itself), and Redis
//! gone (sends still succeed once committed; `/health` says 503).

use std::time::Duration;

use serde_json::json;

use crate::support::{test_config, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_gives_503_and_the_service_recovers_by_itself() {
    let mut pg = tokio::task::spawn_blocking(|| testkit::PgServer::start().unwrap())
        .await
        .unwrap();
    let mut config = test_config().await;
    config.database_url = pg.url("postgres");
    let app = TestApp::start(config).await;
    let (_, at) = app.user("alice").await;
    let c = app.channel(&at, "general").await;
    app.say(&at, c, "before").await;

    let mut pg = tokio::task::spawn_blocking(move || {
        pg.stop();
        pg
    })
    .await
    .unwrap();
    let r = app.health().await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.body["postgres"], "down");
    assert_eq!(r.body["redis"], "up");
    let r = app.send(&at, c, json!({"content": "while down"})).await;
    assert_eq!((r.status, r.code()), (503, "unavailable"), "{r:?}");
    assert_eq!(
        r.body["error"]["message"],
        "service temporarily unavailable"
    );
    let r = app.history(&at, c, "").await;
    assert_eq!((r.status, r.code()), (503, "unavailable"));

    let pg = tokio::task::spawn_blocking(move || {
        pg.start_again().unwrap();
        pg
    })
    .await
    .unwrap();
    let r = app.wait_for(|r| r.status == 200, |a| a.health()).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = app.send(&at, c, json!({"content": "after"})).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["seq"], 2);
    drop(app);
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_does_not_fail_committed_sends() {
    let mut redis = tokio::task::spawn_blocking(|| testkit::RedisServer::start().unwrap())
        .await
        .unwrap();
    let mut config = test_config().await;
    config.redis_url = redis.url();
    let app = TestApp::start(config).await;
    let (_, at) = app.user("alice").await;
    let c = app.channel(&at, "general").await;

    redis.kill();
    let r = app.wait_for(|r| r.status == 503, |a| a.health()).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.body["redis"], "down");
    let r = app.send(&at, c, json!({"content": "redis is gone"})).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        app.history(&at, c, "").await.body["messages"][0]["content"],
        "redis is gone"
    );

    let redis = tokio::task::spawn_blocking(move || {
        redis.restart().unwrap();
        redis
    })
    .await
    .unwrap();
    let r = app.wait_for(|r| r.status == 200, |a| a.health()).await;
    assert_eq!(r.status, 200, "{r:?}");
    tokio::time::sleep(Duration::from_millis(0)).await;
    drop(app);
    drop(redis);
}

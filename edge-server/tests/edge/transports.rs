//! One operation, two transports: a read marker set over REST (the api-server) and one set
//! over WebSocket (the edge) are the same `read` event on the channel's topic, and neither
//! publishes anything when the marker does not move.

use std::time::Duration;

use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use shared::protocol::ServerFrame;
use shared::topics::Topic;
use tokio_util::sync::CancellationToken;

use crate::common::*;

/// The api-server in this process, on the test's database and Redis, its attachments in a
/// scratch directory; its base URL.
pub async fn api_server(env: &Env, stop: &CancellationToken) -> String {
    let mut c = api_server::Config::new(&env.db_url, &env.redis_url, testkit::JWT_SECRET);
    c.argon2_memory_kib = 4096;
    c.data_dir = testkit::scratch::make("edge-api").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(api_server::run(c, listener, stop.clone()));
    for _ in 0..200 {
        if reqwest::get(format!("{base}/health")).await.is_ok() {
            return base;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("api-server did not answer");
}

/// The next `read` event on the subscribed topic; any other event fails the test.
async fn next_read(rx: &mut tokio::sync::broadcast::Receiver<fred::types::Message>) -> ServerFrame {
    let m = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    let text = m.value.as_string().unwrap();
    match serde_json::from_str::<ServerFrame>(&text).unwrap() {
        f @ ServerFrame::Read { .. } => f,
        f => panic!("unexpected event {f:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_markers_over_rest_and_websocket_publish_the_same_event_only_when_they_move() {
    let env = Env::new().await;
    let (a, b) = (env.user("alice").await, env.user("bob").await);
    let ch = env.channel("general", &[&a, &b]).await;
    let edge = env.edge().await;
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    let api = api_server(&env, &stop).await;
    let mut sa = env.connect(&edge, &a).await;
    for i in 1..=3 {
        sa.send(ch.id, &format!("m{i}"), &format!("c{i}")).await;
    }

    let sub = fred::clients::SubscriberClient::new(
        fred::types::config::Config::from_url(&env.redis_url).unwrap(),
        None,
        None,
        None,
    );
    sub.init().await.unwrap();
    let mut rx = sub.message_rx();
    sub.subscribe(Topic::Channel(ch.id).name()).await.unwrap();
    let http = reqwest::Client::new();
    let rest_read = |user: &shared::protocol::User, seq: i64| {
        let req = http
            .post(format!("{api}/api/channels/{}/read", ch.id))
            .bearer_auth(env.token(user))
            .json(&serde_json::json!({ "seq": seq }));
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()["last_read_seq"].clone()
        }
    };
    let ws_read = |seq: i64| serde_json::json!({"type": "read", "channel_id": ch.id, "seq": seq});
    let read = |user_id: i64, seq: i64| ServerFrame::Read {
        channel_id: ch.id,
        user_id,
        seq,
    };

    // Each transport moves its user's marker to 2: the same event.
    sa.send_json(ws_read(2)).await;
    assert_eq!(next_read(&mut rx).await, read(a.id, 2));
    assert_eq!(rest_read(&b, 2).await, 2);
    assert_eq!(next_read(&mut rx).await, read(b.id, 2));

    // Neither publishes when the marker stays (backwards, or the same seq) ...
    sa.send_json(ws_read(1)).await;
    sa.send_json(ws_read(2)).await;
    assert_eq!(rest_read(&b, 1).await, 2);
    assert_eq!(rest_read(&b, 2).await, 2);
    // ... so the next read event on the topic is the next move.
    sa.sync().await;
    sa.send_json(ws_read(3)).await;
    assert_eq!(next_read(&mut rx).await, read(a.id, 3));
    assert_eq!(rest_read(&b, 99).await, 3);
    assert_eq!(next_read(&mut rx).await, read(b.id, 3));
    let _ = sub.quit().await;
}

//! Faults made to happen: Redis restarted, the subscriber connection killed, PostgreSQL
//! stopped. Connected sockets keep every message, in order, once.

use std::future::Future;
use std::time::Duration;

use shared::protocol::{ErrorCode, ServerFrame};
use shared::store::Store;

use crate::common::*;

/// Sends `n` messages from `s`, pausing `pause` between them; returns the sender.
fn sender(mut s: Client, ch: i64, n: usize, pause: Duration) -> tokio::task::JoinHandle<Client> {
    tokio::spawn(async move {
        for i in 0..n {
            s.send(ch, &format!("m{i}"), &format!("c{i}")).await;
            tokio::time::sleep(pause).await;
        }
        s
    })
}

async fn redis_fault(fault: impl FnOnce(&mut testkit::RedisServer)) {
    let mut redis = testkit::RedisServer::start().unwrap();
    let url = redis.url();
    full_sequence_through(url, 60, Duration::from_millis(20), |_| async move {
        fault(&mut redis);
        redis
    })
    .await;
}

/// Three sockets on two edges, `n` messages sent `pause` apart in one channel; `fault(channel
/// id)` runs 400 ms in (what it returns is kept until the end). Every socket gets all `n` once, in order, and live delivery
/// works afterwards on both edges (they resubscribed by themselves).
pub async fn full_sequence_through<T, F: Future<Output = T>>(
    redis_url: String,
    n: usize,
    pause: Duration,
    fault: impl FnOnce(i64) -> F,
) {
    let env = Env::with(testkit::fresh_db().await.url, redis_url).await;
    let (a, b, c) = (
        env.user("alice").await,
        env.user("bob").await,
        env.user("carol").await,
    );
    let ch = env.channel("general", &[&a, &b, &c]).await;
    let (e1, e2) = (env.edge().await, env.edge().await);
    let mut rb = env.connect(&e1, &b).await;
    let mut rc = env.connect(&e2, &c).await;
    let sa = env.connect(&e1, &a).await;
    let task = sender(sa, ch.id, n, pause);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let _kept = fault(ch.id).await;
    task.await.unwrap();
    for r in [&mut rb, &mut rc] {
        let got = r.messages(ch.id, n).await;
        assert_seqs(&got, 1, n as i64);
        let extra = r.sync().await;
        assert!(
            extra
                .iter()
                .all(|f| !matches!(f, ServerFrame::Message { .. })),
            "{extra:?}"
        );
    }
    let mut sa = env.connect(&e2, &a).await;
    let m = sa.send(ch.id, "after", "after").await;
    assert_eq!(rb.messages(ch.id, 1).await, vec![m.clone()]);
    assert_eq!(rc.messages(ch.id, 1).await, vec![m]);
    // An event nothing fills from PostgreSQL reaches both edges: pub/sub itself works again.
    sa.send_json(serde_json::json!({"type": "typing", "channel_id": ch.id}))
        .await;
    for r in [&mut rb, &mut rc] {
        r.until(|f| {
            matches!(f, ServerFrame::Typing { user_id, .. } if *user_id == a.id).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn faults_redis_restarted_mid_stream_every_socket_keeps_the_full_sequence() {
    redis_fault(|r| {
        r.kill();
        std::thread::sleep(Duration::from_millis(300));
        r.restart().unwrap();
    })
    .await;
}

#[tokio::test]
async fn faults_subscriber_connections_killed_every_socket_keeps_the_full_sequence() {
    redis_fault(|r| {
        let out = r.command(&["CLIENT", "KILL", "TYPE", "pubsub"]).unwrap();
        assert!(out.starts_with(':'), "{out}");
    })
    .await;
}

#[tokio::test]
async fn faults_postgres_down_sends_answer_unavailable_and_recover_by_themselves() {
    let mut pg = testkit::PgServer::start().unwrap();
    let url = pg.url("postgres");
    Store::connect(&url, 1).unwrap().migrate().await.unwrap();
    let env = Env::with(url, testkit::redis_url()).await;
    let (a, b) = (env.user("alice").await, env.user("bob").await);
    let ch = env.channel("general", &[&a, &b]).await;
    let edge = env.edge().await;
    let mut sa = env.connect(&edge, &a).await;
    let mut rb = env.connect(&edge, &b).await;
    sa.send(ch.id, "one", "c1").await;

    pg.stop();
    sa.send_json(
        serde_json::json!({"type":"send","channel_id":ch.id,"content":"two","client_msg_id":"c2"}),
    )
    .await;
    match sa.reply().await {
        ServerFrame::Error {
            code: ErrorCode::Unavailable,
            client_msg_id,
            ..
        } => assert_eq!(client_msg_id.as_deref(), Some("c2")),
        f => panic!("{f:?}"),
    }
    let (status, _) = http_get(&edge.url("/health"), &[]).await;
    assert_eq!(status, 503);

    pg.start_again().unwrap();
    // The same retry now succeeds, without restarting the edge.
    let deadline = tokio::time::Instant::now() + WAIT;
    let two = loop {
        sa.send_json(serde_json::json!({"type":"send","channel_id":ch.id,"content":"two","client_msg_id":"c2"}))
            .await;
        match sa.reply().await {
            ServerFrame::Ack { message, .. } => break message,
            ServerFrame::Error {
                code: ErrorCode::Unavailable,
                ..
            } if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            f => panic!("{f:?}"),
        }
    };
    assert_eq!(two.seq, 2);
    assert_seqs(&rb.messages(ch.id, 2).await, 1, 2);
    let h = env.store.history(ch.id, None, Some(0), 10).await.unwrap();
    assert_eq!(h.messages.len(), 2);
}

#[tokio::test]
async fn drain_closes_every_socket_with_1012_and_health_turns_503() {
    let env = Env::new().await;
    let a = env.user("alice").await;
    let edge = env
        .edge_with(|c| c.drain_spread = Duration::from_secs(4))
        .await;
    let mut c1 = env.connect(&edge, &a).await;
    let mut c2 = env.connect(&edge, &a).await;
    edge.cancel();
    let mut first = None;
    tokio::select! {
        c = c1.closed() => first = Some(c),
        c = c2.closed() => { assert_eq!(c, Some(1012)); }
    }
    // Mid-drain: health answers 503 and new sockets are refused.
    let (status, _) = http_get(&edge.url("/health"), &[]).await;
    assert_eq!(status, 503);
    if let Some(c) = first {
        assert_eq!(c, Some(1012));
        assert_eq!(c2.closed().await, Some(1012));
    } else {
        assert_eq!(c1.closed().await, Some(1012));
    }
    edge.stop().await;
}

//! Redis publishing: messages and events on `channel-{id}` only after the commit, control
//! events on `user-{id}` for joins, leaves and direct channels, `read` on the channel.

use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::*;
use serde_json::json;
use shared::protocol::{ChannelKind, MyChannel};
use shared::ServerFrame;

use crate::support::TestApp;

/// A command client on the shared Redis.
pub async fn redis() -> Client {
    testkit::redis_client(&testkit::redis_url()).await.unwrap()
}

/// A subscriber to `topics` that hands out parsed frames with their topic.
pub struct Sub {
    client: SubscriberClient,
    rx: tokio::sync::broadcast::Receiver<fred::types::Message>,
}

impl Sub {
    pub async fn new(topics: &[String]) -> Self {
        Self::on(&testkit::redis_url(), topics).await
    }

    /// A subscriber on the Redis at `url`; on a Redis Cluster the topics are shard channels
    /// (`SSUBSCRIBE`), as the edges subscribe them.
    pub async fn on(url: &str, topics: &[String]) -> Self {
        let config = Config::from_url(url).unwrap();
        let client = Builder::from_config(config)
            .build_subscriber_client()
            .unwrap();
        client.init().await.unwrap();
        let rx = client.message_rx();
        for t in topics {
            if client.is_clustered() {
                client.ssubscribe(t.as_str()).await.unwrap();
            } else {
                client.subscribe(t.as_str()).await.unwrap();
            }
        }
        Sub { client, rx }
    }

    /// The next frame, within 10 s.
    pub async fn next(&mut self) -> (String, ServerFrame) {
        let m = tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("a publish within 10 s")
            .unwrap();
        let text: String = m.value.convert().unwrap();
        (m.channel.to_string(), serde_json::from_str(&text).unwrap())
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let c = self.client.clone();
        tokio::spawn(async move {
            let _ = c.quit().await;
        });
    }
}

#[tokio::test]
async fn a_message_sent_over_http_is_published_after_its_commit() {
    let app = TestApp::spawn().await;
    let (_, at) = app.user("alice").await;
    let c = app.channel(&at, "general").await;
    let topic = format!("channel-{c}");
    let mut sub = Sub::new(std::slice::from_ref(&topic)).await;

    let sent = app
        .send(&at, c, json!({"content": "hello", "client_msg_id": "c-1"}))
        .await;
    assert_eq!(sent.status, 201);
    let (t, frame) = sub.next().await;
    assert_eq!(t, topic);
    let ServerFrame::Message { message } = frame else {
        panic!("expected a message frame, got {frame:?}");
    };
    // Right upon receipt, the row is already committed in PostgreSQL.
    let rows = app
        .store
        .messages_between(c, message.seq - 1, message.seq, 1)
        .await
        .unwrap();
    assert_eq!(
        rows.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
        ["hello"]
    );
    assert_eq!(serde_json::to_value(&message).unwrap(), sent.body);

    // A retry is answered but not published again: the next publish is the next message.
    let retry = app
        .send(&at, c, json!({"content": "hello", "client_msg_id": "c-1"}))
        .await;
    assert_eq!(retry.status, 200);
    app.say(&at, c, "second").await;
    let (_, frame) = sub.next().await;
    let ServerFrame::Message { message } = frame else {
        panic!("expected a message frame, got {frame:?}");
    };
    assert_eq!((message.seq, message.content.as_str()), (2, "second"));

    // A read marker that moves is published on the channel.
    app.read(&at, c, 2).await;
    let (_, frame) = sub.next().await;
    assert!(matches!(frame, ServerFrame::Read { channel_id, seq: 2, .. } if channel_id == c));
}

#[tokio::test]
async fn join_leave_and_direct_channels_publish_control_events() {
    let app = TestApp::spawn().await;
    let (alice, at) = app.user("alice").await;
    let (bob, bt) = app.user("bob").await;
    let c = app.channel(&at, "general").await;
    app.say(&at, c, "before bob").await;
    let (ct, ut_a, ut_b) = (
        format!("channel-{c}"),
        format!("user-{alice}"),
        format!("user-{bob}"),
    );
    let mut chan = Sub::new(std::slice::from_ref(&ct)).await;
    let mut users = Sub::new(&[ut_a.clone(), ut_b.clone()]).await;

    assert_eq!(app.join(&bt, c).await.status, 200);
    assert_eq!(
        chan.next().await,
        (
            ct.clone(),
            ServerFrame::MemberJoined {
                channel_id: c,
                user_id: bob,
                username: "bob".into()
            }
        )
    );
    let general = MyChannel {
        id: c,
        name: "general".into(),
        kind: ChannelKind::Group,
        last_seq: 1,
        last_read_seq: 0,
        unread: 1,
        mentions: 0,
    };
    assert_eq!(
        users.next().await,
        (ut_b.clone(), ServerFrame::ChannelAdded { channel: general })
    );
    // Joining again changes nothing and publishes nothing: the next events are the leave.
    assert_eq!(app.join(&bt, c).await.status, 200);
    assert_eq!(app.leave(&bt, c).await.status, 204);
    assert_eq!(
        chan.next().await,
        (
            ct.clone(),
            ServerFrame::MemberLeft {
                channel_id: c,
                user_id: bob
            }
        )
    );
    assert_eq!(
        users.next().await,
        (ut_b.clone(), ServerFrame::ChannelRemoved { channel_id: c })
    );

    // A new direct channel is announced to both users.
    let r = app.dm(&at, bob).await;
    assert_eq!(r.status, 201);
    let d = r.body["id"].as_i64().unwrap();
    let mut got = vec![users.next().await, users.next().await];
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let dm = |unread| ServerFrame::ChannelAdded {
        channel: MyChannel {
            id: d,
            name: "alice,bob".into(),
            kind: ChannelKind::Direct,
            last_seq: 0,
            last_read_seq: 0,
            unread,
            mentions: 0,
        },
    };
    let mut want = vec![(ut_a.clone(), dm(0)), (ut_b.clone(), dm(0))];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want);
    // Bob leaves it; alice asking again brings only bob back.
    assert_eq!(app.leave(&bt, d).await.status, 204);
    assert_eq!(
        users.next().await,
        (ut_b.clone(), ServerFrame::ChannelRemoved { channel_id: d })
    );
    assert_eq!(app.dm(&at, bob).await.status, 200);
    assert_eq!(users.next().await, (ut_b.clone(), dm(0)));
}

#[tokio::test]
async fn on_a_redis_cluster_channel_and_user_events_are_published_on_their_shards() {
    let url = testkit::redis_cluster_url();
    let app = TestApp::spawn_with(|c| c.redis_url = url.clone()).await;
    let (bob, bt) = app.user("bob").await;
    let (_, at) = app.user("alice").await;
    let c = app.channel(&at, "general").await;
    let (ct, ut) = (format!("channel-{c}"), format!("user-{bob}"));
    let mut chan = Sub::on(&url, std::slice::from_ref(&ct)).await;
    let mut user = Sub::on(&url, std::slice::from_ref(&ut)).await;
    assert_eq!(app.join(&bt, c).await.status, 200);
    let (t, frame) = user.next().await;
    assert_eq!(t, ut);
    assert!(matches!(frame, ServerFrame::ChannelAdded { channel } if channel.id == c));
    let (t, frame) = chan.next().await;
    assert_eq!(t, ct);
    assert!(matches!(frame, ServerFrame::MemberJoined { user_id, .. } if user_id == bob));
    app.say(&at, c, "over the shard").await;
    let (t, frame) = chan.next().await;
    assert_eq!(t, ct);
    assert!(
        matches!(&frame, ServerFrame::Message { message } if message.content == "over the shard"),
        "{frame:?}"
    );
}

#[tokio::test]
async fn a_change_made_over_http_is_published_as_an_event_after_its_commit() {
    let app = TestApp::spawn().await;
    let (_, at) = app.user("alice").await;
    let c = app.channel(&at, "general").await;
    let m = app.say(&at, c, "hello").await;
    let topic = format!("channel-{c}");
    let mut sub = Sub::new(std::slice::from_ref(&topic)).await;
    let path = format!(
        "/api/channels/{c}/messages/{}/reactions/%F0%9F%91%8D?client_msg_id=r-1",
        m["id"].as_str().unwrap()
    );
    let r = app.call(reqwest::Method::PUT, &path, Some(&at), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let (t, f) = sub.next().await;
    assert_eq!(t, topic);
    let ServerFrame::Event { event } = f else {
        panic!("{f:?}");
    };
    assert_eq!(serde_json::to_value(&event).unwrap(), r.body["event"]);
    let stored = app
        .store
        .log_between(c, event.seq - 1, event.seq, 1)
        .await
        .unwrap();
    assert_eq!(stored, [shared::store::Entry::Event(event)]);
    // A retry answers the same event and publishes nothing; the next change does.
    let again = app.call(reqwest::Method::PUT, &path, Some(&at), None).await;
    assert_eq!(again.body["event"], r.body["event"]);
    let p = format!("/api/channels/{c}/messages/{}", m["id"].as_str().unwrap());
    app.call(reqwest::Method::DELETE, &p, Some(&at), None).await;
    let (_, f) = sub.next().await;
    assert!(
        matches!(&f, ServerFrame::Event { event } if event.change.kind() == "message_deleted"),
        "{f:?}"
    );
}

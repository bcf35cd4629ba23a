//! A channel is an event log: edits, deletes and reactions take the channel's next seq and
//! reach every socket once, in seq order, through Redis losses and across a `resume`, like
//! messages; who may change what; retries; bad input.

use serde_json::{json, Value};
use shared::protocol::{Change, ErrorCode, Event, Message, ServerFrame};
use shared::store::{ChangeKind, ChangeOutcome, NewChange, StoreError};
use shared::topics::Topic;

use crate::common::*;

/// Sends a change frame and returns its answer (the `ack` or `error` with its
/// `client_msg_id`), skipping everything else.
async fn change(c: &mut Client, frame: Value) -> ServerFrame {
    let key = frame["client_msg_id"].as_str().map(str::to_owned);
    c.send_json(frame).await;
    c.until(|f| match f {
        ServerFrame::Ack { client_msg_id, .. } | ServerFrame::Error { client_msg_id, .. }
            if *client_msg_id == key =>
        {
            Some(f.clone())
        }
        _ => None,
    })
    .await
}

/// The event of a change's `ack`.
fn acked(f: &ServerFrame) -> Event {
    match f {
        ServerFrame::Ack { event: Some(e), .. } => e.clone(),
        other => panic!("expected an ack with an event, got {other:?}"),
    }
}

/// The error code of a change's answer.
fn refused(f: &ServerFrame) -> ErrorCode {
    match f {
        ServerFrame::Error { code, .. } => *code,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn edit(m: &Message, content: &str, key: &str) -> Value {
    json!({"type": "edit", "channel_id": m.channel_id, "message_id": m.id.to_string(),
           "content": content, "client_msg_id": key})
}

fn delete(m: &Message, key: &str) -> Value {
    json!({"type": "delete", "channel_id": m.channel_id, "message_id": m.id.to_string(),
           "client_msg_id": key})
}

fn react(kind: &str, m: &Message, emoji: &str, key: &str) -> Value {
    json!({"type": kind, "channel_id": m.channel_id, "message_id": m.id.to_string(),
           "emoji": emoji, "client_msg_id": key})
}

/// The next `n` entries of channel `ch`'s log on this socket (`message` and `event` frames),
/// skipping every other frame.
pub async fn entries(c: &mut Client, ch: i64, n: usize) -> Vec<ServerFrame> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match c.frame().await {
            f @ ServerFrame::Message { .. } | f @ ServerFrame::Event { .. }
                if seq_of(&f).0 == ch =>
            {
                out.push(f)
            }
            _ => {}
        }
    }
    out
}

/// `(channel, seq)` of a sequenced frame.
fn seq_of(f: &ServerFrame) -> (i64, i64) {
    match f {
        ServerFrame::Message { message } => (message.channel_id, message.seq),
        ServerFrame::Event { event } => (event.channel_id, event.seq),
        other => panic!("not sequenced: {other:?}"),
    }
}

/// What each entry is: `message` or the event's kind.
fn kinds(log: &[ServerFrame]) -> Vec<&'static str> {
    log.iter()
        .map(|f| match f {
            ServerFrame::Event { event } => event.change.kind(),
            _ => "message",
        })
        .collect()
}

fn seqs(log: &[ServerFrame]) -> Vec<i64> {
    log.iter().map(|f| seq_of(f).1).collect()
}

/// Nothing sequenced is left to arrive on the socket (after a round trip).
pub async fn nothing_more(c: &mut Client) {
    let extra = c.sync().await;
    assert!(
        extra
            .iter()
            .all(|f| !matches!(f, ServerFrame::Message { .. } | ServerFrame::Event { .. })),
        "{extra:?}"
    );
}

#[tokio::test]
async fn edits_deletes_and_reactions_arrive_once_in_seq_order_on_two_edges() {
    let env = Env::new().await;
    let (a, b, c, d) = (
        env.user("alice").await,
        env.user("bob").await,
        env.user("carol").await,
        env.user("dave").await,
    );
    let ch = env.channel("general", &[&a, &b, &c, &d]).await;
    let (e1, e2) = (env.edge().await, env.edge().await);
    let mut rc = env.connect(&e1, &c).await;
    let mut rd = env.connect(&e2, &d).await;
    let mut sa = env.connect(&e1, &a).await;
    let mut sb = env.connect(&e2, &b).await;
    let m1 = sa.send(ch.id, "one", "m1").await;
    let m2 = sb.send(ch.id, "two", "m2").await;
    let edited = acked(&change(&mut sa, edit(&m1, "one!", "e1")).await);
    assert_eq!(edited.seq, 3);
    assert!(matches!(&edited.change, Change::MessageEdited { content, .. } if content == "one!"));
    acked(&change(&mut sb, react("react", &m1, "👍", "r1")).await);
    let second = acked(&change(&mut sa, react("react", &m1, "👍", "r2")).await);
    assert!(matches!(
        &second.change,
        Change::ReactionAdded { count: 2, .. }
    ));
    let removed = acked(&change(&mut sb, react("unreact", &m1, "👍", "u1")).await);
    assert!(matches!(
        &removed.change,
        Change::ReactionRemoved { count: 1, .. }
    ));
    acked(&change(&mut sb, delete(&m2, "d1")).await);
    for r in [&mut rc, &mut rd] {
        let log = entries(r, ch.id, 7).await;
        assert_eq!(seqs(&log), (1..=7).collect::<Vec<_>>());
        assert_eq!(
            kinds(&log),
            [
                "message",
                "message",
                "message_edited",
                "reaction_added",
                "reaction_added",
                "reaction_removed",
                "message_deleted"
            ]
        );
        assert_eq!(
            log[2],
            ServerFrame::Event {
                event: edited.clone()
            }
        );
        nothing_more(r).await;
    }
    assert_eq!(env.store.channel(ch.id).await.unwrap().unwrap().last_seq, 7);
}

/// Applies a change straight in the store (as a server would, without publishing it).
async fn applied(env: &Env, user: i64, m: &Message, kind: ChangeKind) -> Event {
    let c = NewChange {
        channel_id: m.channel_id,
        user_id: user,
        message_id: m.id,
        kind,
        client_msg_id: None,
    };
    match env
        .store
        .apply_change(&c, |_| Ok::<(), StoreError>(()))
        .await
        .unwrap()
    {
        ChangeOutcome::Applied { event, .. } => event,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn events_redis_drops_are_filled_from_postgres_in_order() {
    events_through_a_lossy_bus(Env::new().await).await;
}

/// Events stored without their publishes, one published twice (through the bus as a server
/// would, so a Redis Cluster gets it on the channel's shard): the socket gets every entry of
/// the log once, in seq order.
pub async fn events_through_a_lossy_bus(env: Env) {
    let (a, b) = (env.user("alice").await, env.user("bob").await);
    let ch = env.channel("general", &[&a, &b]).await;
    let edge = env.edge().await;
    let mut rb = env.connect(&edge, &b).await;
    let mut stored = Vec::new();
    for n in 1..=2 {
        let msg = shared::store::NewMessage {
            channel_id: ch.id,
            sender_id: a.id,
            content: format!("m{n}"),
            client_msg_id: None,
            reply_to: None,
            attachments: Vec::new(),
        };
        match env.store.send(msg).await.unwrap() {
            shared::store::SendOutcome::Stored(m) => stored.push(m),
            o => panic!("{o:?}"),
        }
    }
    let content = "m1 edited".to_owned();
    let e3 = applied(&env, a.id, &stored[0], ChangeKind::Edit { content }).await;
    let emoji = "🎉".to_owned();
    let e4 = applied(&env, b.id, &stored[1], ChangeKind::React { emoji }).await;
    let e5 = applied(&env, a.id, &stored[1], ChangeKind::Delete).await;
    let bus = bus(&env.redis_url).await;
    // Everything but seq 4 is lost, seq 4 comes twice; seq 5 is revealed by nothing (the
    // periodic catch-up finds it).
    for e in [&e4, &e4] {
        bus.publish(
            Topic::Channel(ch.id),
            &ServerFrame::Event { event: e.clone() },
        );
    }
    let log = entries(&mut rb, ch.id, 5).await;
    assert_eq!(seqs(&log), [1, 2, 3, 4, 5]);
    assert_eq!(
        log[2..],
        [e3, e4, e5].map(|event| ServerFrame::Event { event })
    );
    // Messages are filled in their state at the time of the read (the periodic catch-up may
    // have read them before the changes): either way the events after them say what changed.
    match &log[0] {
        ServerFrame::Message { message } => assert!(message.content.starts_with("m1")),
        other => panic!("{other:?}"),
    }
    nothing_more(&mut rb).await;
}

#[tokio::test]
async fn resume_replays_edits_deletes_and_reactions_in_order() {
    let env = Env::new().await;
    let (a, b) = (env.user("alice").await, env.user("bob").await);
    let ch = env.channel("general", &[&a, &b]).await;
    let edge = env.edge().await;
    let mut sa = env.connect(&edge, &a).await;
    let mut rb = env.connect(&edge, &b).await;
    let m1 = sa.send(ch.id, "secret one", "m1").await;
    let m2 = sa.send(ch.id, "two", "m2").await;
    assert_eq!(seqs(&entries(&mut rb, ch.id, 2).await), [1, 2]);
    drop(rb);
    acked(&change(&mut sa, edit(&m1, "secret one, edited", "e1")).await);
    acked(&change(&mut sa, react("react", &m2, "❤️", "r1")).await);
    acked(&change(&mut sa, delete(&m1, "d1")).await);
    sa.send(ch.id, "three", "m3").await;
    let mut rb = env.connect(&edge, &b).await;
    rb.send_json(json!({"type": "resume", "channels": {ch.id.to_string(): 2}}))
        .await;
    let mut log = Vec::new();
    loop {
        match rb.frame().await {
            f @ (ServerFrame::Message { .. } | ServerFrame::Event { .. }) => log.push(f),
            ServerFrame::Resumed => break,
            _ => {}
        }
    }
    assert_eq!(seqs(&log), [3, 4, 5, 6]);
    assert_eq!(
        kinds(&log),
        [
            "message_edited",
            "reaction_added",
            "message_deleted",
            "message"
        ]
    );
    // The edit of a message deleted since is replayed without its content.
    match &log[0] {
        ServerFrame::Event { event } => {
            assert!(
                matches!(&event.change, Change::MessageEdited { content, .. } if content.is_empty())
            )
        }
        other => panic!("{other:?}"),
    }
    nothing_more(&mut rb).await;
}

#[tokio::test]
async fn a_deleted_messages_content_is_gone_from_postgres() {
    let env = Env::new().await;
    let a = env.user("alice").await;
    let ch = env.channel("general", &[&a]).await;
    let edge = env.edge().await;
    let mut sa = env.connect(&edge, &a).await;
    let m = sa.send(ch.id, "secret plans", "m1").await;
    acked(&change(&mut sa, edit(&m, "secret plans v2", "e1")).await);
    acked(&change(&mut sa, delete(&m, "d1")).await);
    let sql = shared::store::migrate::connect(&env.db_url).await.unwrap();
    for table in ["messages", "channel_events"] {
        let n: i64 = sql
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE content LIKE '%secret%'"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{table}");
    }
    let h = env.store.history(ch.id, None, None, 10).await.unwrap();
    assert_eq!(h.messages.len(), 1);
    assert!(h.messages[0].deleted && h.messages[0].content.is_empty());
}

#[tokio::test]
async fn only_the_sender_edits_and_only_the_sender_or_a_moderator_deletes() {
    let env = Env::new().await;
    let (o, a, b, adm, x) = (
        env.user("owner").await,
        env.user("alice").await,
        env.user("bob").await,
        env.user("admin").await,
        env.user("xavier").await,
    );
    let ch = env.channel("general", &[&o, &a, &b, &adm]).await;
    let sql = shared::store::migrate::connect(&env.db_url).await.unwrap();
    sql.execute(
        "UPDATE channel_members SET role = 'admin' WHERE channel_id = $1 AND user_id = $2",
        &[&ch.id, &adm.id],
    )
    .await
    .unwrap();
    let edge = env.edge().await;
    let (mut so, mut sa, mut sb, mut sadm, mut sx) = (
        env.connect(&edge, &o).await,
        env.connect(&edge, &a).await,
        env.connect(&edge, &b).await,
        env.connect(&edge, &adm).await,
        env.connect(&edge, &x).await,
    );
    let a1 = sa.send(ch.id, "a1", "a1").await;
    let a2 = sa.send(ch.id, "a2", "a2").await;
    let a3 = sa.send(ch.id, "a3", "a3").await;
    let b1 = sb.send(ch.id, "b1", "b1").await;

    assert_eq!(
        refused(&change(&mut sb, edit(&a1, "mine now", "k1")).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        refused(&change(&mut sb, delete(&a1, "k2")).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        refused(&change(&mut sadm, edit(&a1, "admin edit", "k3")).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        refused(&change(&mut sa, delete(&b1, "k4")).await),
        ErrorCode::Forbidden
    );
    acked(&change(&mut sa, edit(&a1, "a1 edited", "k5")).await);
    acked(&change(&mut sadm, delete(&a2, "k6")).await);
    acked(&change(&mut so, delete(&a3, "k7")).await);
    acked(&change(&mut sb, delete(&b1, "k8")).await);
    // A deleted message takes no edit and no reaction.
    assert_eq!(
        refused(&change(&mut sa, edit(&a2, "back", "k9")).await),
        ErrorCode::Conflict
    );
    assert_eq!(
        refused(&change(&mut sb, react("react", &a2, "👍", "k10")).await),
        ErrorCode::Conflict
    );
    // A stranger can do none of it, and keeps the socket.
    for (i, f) in [
        edit(&a1, "x", "x1"),
        delete(&a1, "x2"),
        react("react", &a1, "👍", "x3"),
        react("unreact", &a1, "👍", "x4"),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(
            refused(&change(&mut sx, f).await),
            ErrorCode::Forbidden,
            "{i}"
        );
    }
    sx.sync().await;
    // 4 messages, 4 changes.
    assert_eq!(env.store.channel(ch.id).await.unwrap().unwrap().last_seq, 8);
}

#[tokio::test]
async fn a_retried_change_gets_the_original_event_and_records_nothing_more() {
    let env = Env::new().await;
    let (a, b, c) = (
        env.user("alice").await,
        env.user("bob").await,
        env.user("carol").await,
    );
    let ch = env.channel("general", &[&a, &b, &c]).await;
    let edge = env.edge().await;
    let mut rc = env.connect(&edge, &c).await;
    let mut sa = env.connect(&edge, &a).await;
    let (mut sb, mut sb2) = (env.connect(&edge, &b).await, env.connect(&edge, &b).await);
    let m = sa.send(ch.id, "hello", "m1").await;
    let first = acked(&change(&mut sb, react("react", &m, "👍", "r-1")).await);
    let retry = acked(&change(&mut sb2, react("react", &m, "👍", "r-1")).await);
    assert_eq!(first, retry);
    let edited = acked(&change(&mut sa, edit(&m, "v2", "e-1")).await);
    let again = acked(&change(&mut sa, edit(&m, "v3", "e-1")).await);
    assert_eq!(edited, again);
    // The same reaction under a new key changes nothing: no event.
    match change(&mut sb, react("react", &m, "👍", "r-2")).await {
        ServerFrame::Ack {
            event: None,
            message,
            ..
        } => {
            assert_eq!(message.content, "v2");
            assert_eq!(message.reactions.len(), 1);
            assert!(message.reactions[0].me && message.reactions[0].count == 1);
        }
        other => panic!("{other:?}"),
    }
    let log = entries(&mut rc, ch.id, 3).await;
    assert_eq!(kinds(&log), ["message", "reaction_added", "message_edited"]);
    nothing_more(&mut rc).await;
    assert_eq!(env.store.channel(ch.id).await.unwrap().unwrap().last_seq, 3);
}

#[tokio::test]
async fn bad_changes_get_an_error_frame_and_the_socket_stays_open() {
    let env = Env::new().await;
    let a = env.user("alice").await;
    let ch = env.channel("general", &[&a]).await;
    let edge = env.edge().await;
    let mut sa = env.connect(&edge, &a).await;
    let m = sa.send(ch.id, "hello", "m1").await;
    let unknown = Message {
        id: m.id + 1,
        ..m.clone()
    };
    let long = "é".repeat(4001);
    let cases = [
        (edit(&unknown, "x", "b1"), ErrorCode::NotFound),
        (delete(&unknown, "b2"), ErrorCode::NotFound),
        (react("react", &unknown, "👍", "b3"), ErrorCode::NotFound),
        (react("react", &m, "abc", "b4"), ErrorCode::Validation),
        (react("unreact", &m, "👍👍", "b5"), ErrorCode::Validation),
        (react("react", &m, "", "b6"), ErrorCode::Validation),
        (edit(&m, &long, "b7"), ErrorCode::Validation),
        (edit(&m, "  ", "b8"), ErrorCode::Validation),
        (
            json!({"type": "edit", "channel_id": ch.id, "message_id": "nope", "content": "x", "client_msg_id": "b9"}),
            ErrorCode::BadRequest,
        ),
        (
            json!({"type": "react", "channel_id": ch.id, "message_id": m.id.to_string(), "client_msg_id": "b10"}),
            ErrorCode::BadRequest,
        ),
        (
            json!({"type": "delete", "channel_id": ch.id + 1000, "message_id": m.id.to_string(), "client_msg_id": "b11"}),
            ErrorCode::Forbidden,
        ),
    ];
    for (frame, code) in cases {
        let answer = change(&mut sa, frame.clone()).await;
        assert_eq!(refused(&answer), code, "{frame}");
    }
    // Still open and serving; nothing was recorded.
    sa.sync().await;
    let h = env.store.history(ch.id, None, None, 10).await.unwrap();
    assert_eq!(h.messages[0].content, "hello");
    assert_eq!(env.store.channel(ch.id).await.unwrap().unwrap().last_seq, 1);
}

#[tokio::test]
async fn a_sockets_pipelined_changes_apply_in_the_order_sent() {
    let env = Env::new().await;
    let a = env.user("alice").await;
    let ch = env.channel("general", &[&a]).await;
    let edge = env.edge().await;
    let mut sa = env.connect(&edge, &a).await;
    let m = sa.send(ch.id, "hello", "m1").await;
    for i in 0..10 {
        sa.send_json(react("react", &m, "👍", &format!("r{i}")))
            .await;
        sa.send_json(react("unreact", &m, "👍", &format!("u{i}")))
            .await;
    }
    let last = sa
        .until(|f| match f {
            ServerFrame::Ack { client_msg_id, .. } if client_msg_id.as_deref() == Some("u9") => {
                Some(f.clone())
            }
            _ => None,
        })
        .await;
    assert!(
        matches!(last, ServerFrame::Ack { event: Some(_), .. }),
        "{last:?}"
    );
    let log = env
        .store
        .log_between(ch.id, 1, i64::MAX, 100)
        .await
        .unwrap();
    let kinds: Vec<&str> = log
        .iter()
        .map(|e| match e {
            shared::store::Entry::Event(e) => e.change.kind(),
            shared::store::Entry::Message(_) => "message",
        })
        .collect();
    assert_eq!(kinds, ["reaction_added", "reaction_removed"].repeat(10));
    let h = env.store.reactions(ch.id, &[m.seq], a.id).await.unwrap();
    assert!(h.is_empty(), "{h:?}");
}

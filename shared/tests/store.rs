//! Store guarantees against a real PostgreSQL: gap-free seqs (SPEC 5.2), idempotent sends
//! (5.3), and history paging.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use shared::store::{NewMessage, SendOutcome, Store};

async fn store() -> Store {
    let db = testkit::fresh_db().await;
    Store::connect(&db.url, 16).unwrap()
}

fn msg(channel_id: i64, sender_id: i64, content: &str, key: Option<&str>) -> NewMessage {
    NewMessage {
        channel_id,
        sender_id,
        content: content.into(),
        client_msg_id: key.map(str::to_owned),
        reply_to: None,
    }
}

fn stored(o: SendOutcome) -> shared::Message {
    match o {
        SendOutcome::Stored(m) => m,
        other => panic!("expected Stored, got {other:?}"),
    }
}

#[tokio::test]
async fn concurrent_sends_get_seqs_exactly_1_to_200() {
    let s = store().await;
    let u = s.create_user("alice", "h").await.unwrap();
    let ch = s.create_channel("general", u.id).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..25 {
                let m = stored(
                    s.send(msg(ch.id, u.id, &format!("{t}-{i}"), None))
                        .await
                        .unwrap(),
                );
                seqs.push(m.seq);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=200).collect::<Vec<i64>>());
    assert_eq!(s.channel(ch.id).await.unwrap().unwrap().last_seq, 200);
    let h = s.history(ch.id, None, Some(0), 200).await.unwrap();
    assert_eq!(
        h.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=200).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn fifty_concurrent_sends_with_one_client_msg_id_store_one_row() {
    let s = store().await;
    let u = s.create_user("alice", "h").await.unwrap();
    let ch = s.create_channel("general", u.id).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.send(msg(ch.id, u.id, "once", Some("c-1"))).await.unwrap()
        }));
    }
    let mut ids = HashSet::new();
    let mut fresh = 0;
    for t in tasks {
        match t.await.unwrap() {
            SendOutcome::Stored(m) => {
                fresh += 1;
                ids.insert(m.id);
            }
            SendOutcome::Duplicate(m) => {
                ids.insert(m.id);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(fresh, 1, "exactly one send stores");
    assert_eq!(ids.len(), 1, "every retry gets the original");
    assert_eq!(s.channel(ch.id).await.unwrap().unwrap().last_seq, 1);
    // Another sender may use the same key.
    let b = s.create_user("bob", "h").await.unwrap();
    s.join(ch.id, b.id).await.unwrap();
    let m = stored(s.send(msg(ch.id, b.id, "mine", Some("c-1"))).await.unwrap());
    assert_eq!(m.seq, 2);
}

#[tokio::test]
async fn batch_mixes_outcomes_and_dedupes_within_itself() {
    let s = store().await;
    let a = s.create_user("alice", "h").await.unwrap();
    let b = s.create_user("bob", "h").await.unwrap();
    let c1 = s.create_channel("one", a.id).await.unwrap();
    let c2 = s.create_channel("two", b.id).await.unwrap();
    let out = s
        .send_batch(&[
            msg(c1.id, a.id, "a1", Some("k")),
            msg(c2.id, a.id, "not a member", None),
            msg(c2.id, b.id, "b1", None),
            msg(c1.id, a.id, "a1 again", Some("k")),
            msg(999_999_999_999, a.id, "nowhere", None),
            NewMessage {
                reply_to: Some(1),
                ..msg(c1.id, a.id, "reply", None)
            },
            NewMessage {
                reply_to: Some(9),
                ..msg(c1.id, a.id, "bad reply", None)
            },
        ])
        .await
        .unwrap();
    let first = stored(out[0].clone());
    assert_eq!((first.seq, first.sender.as_str()), (1, "alice"));
    assert_eq!(out[1], SendOutcome::NotMember);
    assert_eq!(stored(out[2].clone()).seq, 1);
    assert_eq!(out[3], SendOutcome::Duplicate(first.clone()));
    assert_eq!(out[4], SendOutcome::NoChannel);
    let reply = stored(out[5].clone());
    assert_eq!((reply.seq, reply.reply_to), (2, Some(1)));
    assert_eq!(out[6], SendOutcome::BadReplyTo);
    assert!(reply.id > first.id, "ids are time-ordered");
}

#[tokio::test]
async fn history_pages_backwards_and_forwards_without_dupes_while_inserting() {
    let s = store().await;
    let u = s.create_user("alice", "h").await.unwrap();
    let ch = s.create_channel("general", u.id).await.unwrap();
    let batch: Vec<_> = (0..120)
        .map(|i| msg(ch.id, u.id, &format!("m{i}"), None))
        .collect();
    s.send_batch(&batch).await.unwrap();

    // Backwards from the newest, 50 at a time, while a writer keeps adding.
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..60 {
                s.send(msg(ch.id, u.id, &format!("late{i}"), None))
                    .await
                    .unwrap();
            }
        })
    };
    let first = s.history(ch.id, None, None, 50).await.unwrap();
    let top = first.messages[0].seq;
    let mut seen: Vec<i64> = first.messages.iter().map(|m| m.seq).collect();
    let mut next = first.next;
    while let Some(before) = next {
        let page = s.history(ch.id, Some(before), None, 50).await.unwrap();
        assert!(page.messages.len() <= 50);
        seen.extend(page.messages.iter().map(|m| m.seq));
        next = page.next;
    }
    writer.await.unwrap();
    assert_eq!(
        seen,
        (1..=top).rev().collect::<Vec<i64>>(),
        "backwards: no miss, no duplicate"
    );

    // Forwards from 0 sees everything, including what arrived meanwhile.
    let mut fwd = Vec::new();
    let mut after = Some(0);
    while let Some(a) = after {
        let page = s.history(ch.id, None, Some(a), 50).await.unwrap();
        fwd.extend(page.messages.iter().map(|m| m.seq));
        after = page.next;
    }
    assert_eq!(fwd, (1..=180).collect::<Vec<i64>>());
}

#[tokio::test]
async fn read_marker_never_moves_backwards() {
    let s = store().await;
    let u = s.create_user("alice", "h").await.unwrap();
    let ch = s.create_channel("general", u.id).await.unwrap();
    let batch: Vec<_> = (0..5)
        .map(|i| msg(ch.id, u.id, &format!("m{i}"), None))
        .collect();
    s.send_batch(&batch).await.unwrap();
    // (before, after): the marker moves only forward and never past the last message.
    assert_eq!(s.mark_read(ch.id, u.id, 3).await.unwrap(), Some((0, 3)));
    assert_eq!(s.mark_read(ch.id, u.id, 1).await.unwrap(), Some((3, 3)));
    assert_eq!(s.mark_read(ch.id, u.id, 99).await.unwrap(), Some((3, 5)));
    let mine = s.my_channels(u.id).await.unwrap();
    assert_eq!(
        (mine[0].last_seq, mine[0].last_read_seq, mine[0].unread),
        (5, 5, 0)
    );
    assert_eq!(s.mark_read(ch.id, u.id + 1, 1).await.unwrap(), None);
}

#[tokio::test]
async fn direct_channel_is_get_or_create() {
    let s = store().await;
    let a = s.create_user("alice", "h").await.unwrap();
    let b = s.create_user("Bob", "h").await.unwrap();
    let d1 = s.direct_channel(a.id, b.id, "alice,Bob").await.unwrap();
    let d2 = s.direct_channel(b.id, a.id, "Bob,alice").await.unwrap();
    assert!(d1.created && !d2.created);
    assert_eq!(d1.channel.id, d2.channel.id);
    assert_eq!(s.member_ids(d1.channel.id).await.unwrap(), vec![a.id, b.id]);
    assert!(matches!(
        s.create_user("bob", "h").await,
        Err(shared::store::StoreError::Conflict)
    ));
}

#[tokio::test]
async fn group_commit_keeps_submission_order_and_batches() {
    use shared::store::{GroupCommit, GroupCommitConfig};
    let s = store().await;
    let u = s.create_user("alice", "h").await.unwrap();
    let ch = s.create_channel("general", u.id).await.unwrap();
    let gc = GroupCommit::spawn(s.clone(), GroupCommitConfig::default());
    // 300 sends queued one after another from one task: stored in that order.
    let mut pending = Vec::new();
    for i in 0..300 {
        let m = msg(ch.id, u.id, &format!("n{i}"), Some(&format!("k{i}")));
        pending.push(gc.enqueue(m).await.unwrap());
    }
    let out = futures_util::future::join_all(pending).await;
    for (i, o) in out.into_iter().enumerate() {
        let m = stored(o.unwrap());
        assert_eq!((m.seq, m.content), (i as i64 + 1, format!("n{i}")));
    }
    // A retry through the committer gets the original.
    match gc
        .send(msg(ch.id, u.id, "again", Some("k7")))
        .await
        .unwrap()
    {
        SendOutcome::Duplicate(m) => assert_eq!(m.seq, 8),
        other => panic!("expected the original, got {other:?}"),
    }
}

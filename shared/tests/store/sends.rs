//! Concurrent sends: gap-free seqs, one row per key, mixed outcomes in a batch, and the group
//! committer's order.

use std::collections::HashSet;

use shared::store::{NewMessage, SendOutcome};

use crate::common::*;

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

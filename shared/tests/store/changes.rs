//! Changes to a message in the store: one event per key even for concurrent retries, one
//! reaction per user per emoji, and the log (messages and events) gap-free by seq.

use shared::protocol::Change;
use shared::store::{ChangeKind, ChangeOutcome, Entry, NewChange, StoreError};

use crate::common::*;

fn change(
    channel_id: i64,
    user_id: i64,
    message_id: i64,
    kind: ChangeKind,
    key: Option<&str>,
) -> NewChange {
    NewChange {
        channel_id,
        user_id,
        message_id,
        kind,
        client_msg_id: key.map(str::to_owned),
    }
}

#[tokio::test]
async fn concurrent_changes_record_one_event_per_key_and_one_reaction_per_user() {
    let s = store().await;
    let u = s.create_user("alice", "h").await.unwrap();
    let v = s.create_user("bob", "h").await.unwrap();
    let ch = s.create_channel("general", u.id).await.unwrap();
    s.join(ch.id, v.id).await.unwrap();
    let m = stored(s.send(msg(ch.id, u.id, "hi", None)).await.unwrap());
    let (mid, mut tasks) = (m.id, Vec::new());
    for i in 0..40 {
        let s = s.clone();
        // Half retry one key; the other half react again with keys of their own.
        let key = if i % 2 == 0 {
            "r-1".to_owned()
        } else {
            format!("r-{i}")
        };
        let user = if i < 20 { u.id } else { v.id };
        tasks.push(tokio::spawn(async move {
            let c = change(
                ch.id,
                user,
                mid,
                ChangeKind::React {
                    emoji: "👍".into()
                },
                Some(&key),
            );
            s.apply_change(&c, |_| Ok::<(), StoreError>(()))
                .await
                .unwrap()
        }));
    }
    let (mut applied, mut duplicates, mut unchanged) = (0, 0, 0);
    for t in tasks {
        match t.await.unwrap() {
            ChangeOutcome::Applied { .. } => applied += 1,
            ChangeOutcome::Duplicate { .. } => duplicates += 1,
            ChangeOutcome::Unchanged { .. } => unchanged += 1,
        }
    }
    // Each user's reaction is recorded once (bob's under his own key "r-1": keys are per
    // user); every other attempt is a retry of a key or changes nothing.
    assert_eq!(applied, 2, "{duplicates} {unchanged}");
    let log = s.log_between(ch.id, 0, i64::MAX, 100).await.unwrap();
    assert_eq!(log.iter().map(Entry::seq).collect::<Vec<_>>(), [1, 2, 3]);
    let counts: Vec<i64> = log
        .iter()
        .filter_map(|e| match e {
            Entry::Event(e) => match &e.change {
                Change::ReactionAdded { count, .. } => Some(*count),
                _ => None,
            },
            Entry::Message(_) => None,
        })
        .collect();
    assert_eq!(counts, [1, 2]);
    let r = s.reactions(ch.id, &[m.seq], u.id).await.unwrap();
    let r = &r[&m.seq];
    assert_eq!((r.len(), r[0].count, r[0].me), (1, 2, true));
    assert_eq!(s.channel(ch.id).await.unwrap().unwrap().last_seq, 3);
}

#[tokio::test]
async fn a_refused_change_records_nothing_and_sends_interleave_with_events() {
    let s = store().await;
    let u = s.create_user("alice", "h").await.unwrap();
    let ch = s.create_channel("general", u.id).await.unwrap();
    let m = stored(s.send(msg(ch.id, u.id, "hi", None)).await.unwrap());
    let c = change(ch.id, u.id, m.id, ChangeKind::Delete, Some("d-1"));
    let r = s
        .apply_change(&c, |_| Err::<(), _>(StoreError::Conflict))
        .await;
    assert!(matches!(r, Err(StoreError::Conflict)));
    assert_eq!(s.channel(ch.id).await.unwrap().unwrap().last_seq, 1);
    let edit = ChangeKind::Edit {
        content: "hi!".into(),
    };
    s.apply_change(&change(ch.id, u.id, m.id, edit, None), |_| {
        Ok::<(), StoreError>(())
    })
    .await
    .unwrap();
    let m2 = stored(s.send(msg(ch.id, u.id, "two", None)).await.unwrap());
    assert_eq!(m2.seq, 3);
    assert_eq!(seqs(&s, ch.id).await, [1, 3]);
    let log = s.log_between(ch.id, 0, i64::MAX, 2).await.unwrap();
    assert_eq!(log.iter().map(Entry::seq).collect::<Vec<_>>(), [1, 2]);
}

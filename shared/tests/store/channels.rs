//! History paging, read markers and direct channels.

use crate::common::*;

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

//! The batch rules of `send_messages` (migration 0003): rejected and repeated keys, replies
//! within a batch, no seq taken by a duplicate, single sends, and a differential test against
//! migration 0002's per-input algorithm.

use std::collections::HashSet;

use shared::store::{NewMessage, SendOutcome, Store};

use crate::common::*;

#[tokio::test]
async fn same_key_twice_in_a_batch_when_the_first_is_rejected() {
    let s = store().await;
    let a = s.create_user("alice", "h").await.unwrap();
    let b = s.create_user("bob", "h").await.unwrap();
    let ch = s.create_channel("general", a.id).await.unwrap();
    // Bob is not a member: both sends of his key are rejected, neither takes a seq.
    let out = s
        .send_batch(&[
            msg(ch.id, b.id, "one", Some("k")),
            msg(ch.id, b.id, "two", Some("k")),
            msg(ch.id, a.id, "alice", None),
        ])
        .await
        .unwrap();
    assert_eq!(out[0], SendOutcome::NotMember);
    assert_eq!(out[1], SendOutcome::NotMember);
    assert_eq!(stored(out[2].clone()).seq, 1);
    // The first send of a key has a bad reply_to: the second stores it, the third gets it.
    let out = s
        .send_batch(&[
            reply(ch.id, a.id, "first", Some("r"), 9),
            msg(ch.id, a.id, "second", Some("r")),
            msg(ch.id, a.id, "third", Some("r")),
            msg(ch.id, a.id, "after", None),
        ])
        .await
        .unwrap();
    assert_eq!(out[0], SendOutcome::BadReplyTo);
    let second = stored(out[1].clone());
    assert_eq!((second.seq, second.content.as_str()), (2, "second"));
    assert_eq!(duplicate(out[2].clone()), second);
    assert_eq!(stored(out[3].clone()).seq, 3);
    assert_eq!(seqs(&s, ch.id).await, vec![1, 2, 3]);
    assert_eq!(s.channel(ch.id).await.unwrap().unwrap().last_seq, 3);
}

#[tokio::test]
async fn reply_to_a_message_stored_earlier_in_the_same_batch() {
    let s = store().await;
    let a = s.create_user("alice", "h").await.unwrap();
    let ch = s.create_channel("general", a.id).await.unwrap();
    let other = s.create_channel("other", a.id).await.unwrap();
    let out = s
        .send_batch(&[
            msg(ch.id, a.id, "m1", None),
            reply(ch.id, a.id, "to m1", None, 1),
            reply(ch.id, a.id, "to the one before", Some("k"), 2),
            // The other channel has no message yet.
            reply(other.id, a.id, "nothing there", None, 1),
            msg(other.id, a.id, "o1", None),
        ])
        .await
        .unwrap();
    let seq_reply = |o: &SendOutcome| {
        let m = stored(o.clone());
        (m.seq, m.reply_to)
    };
    assert_eq!(seq_reply(&out[0]), (1, None));
    assert_eq!(seq_reply(&out[1]), (2, Some(1)));
    assert_eq!(seq_reply(&out[2]), (3, Some(2)));
    assert_eq!(out[3], SendOutcome::BadReplyTo);
    assert_eq!(seq_reply(&out[4]), (1, None));
    // A reply_to one past what the batch has stored so far is rejected, and the rejected send
    // takes no seq: the next send of the channel gets the one it would have had.
    let out = s
        .send_batch(&[
            reply(ch.id, a.id, "to the next one", None, 5),
            msg(ch.id, a.id, "m4", None),
            reply(ch.id, a.id, "to m4", None, 4),
            reply(ch.id, a.id, "zero", None, 0),
        ])
        .await
        .unwrap();
    assert_eq!(out[0], SendOutcome::BadReplyTo);
    assert_eq!(seq_reply(&out[1]), (4, None));
    assert_eq!(seq_reply(&out[2]), (5, Some(4)));
    assert_eq!(out[3], SendOutcome::BadReplyTo);
    assert_eq!(seqs(&s, ch.id).await, vec![1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn a_duplicate_next_to_new_messages_of_its_channel_takes_no_seq() {
    let s = store().await;
    let a = s.create_user("alice", "h").await.unwrap();
    let ch = s.create_channel("general", a.id).await.unwrap();
    let original = stored(s.send(msg(ch.id, a.id, "orig", Some("k"))).await.unwrap());
    let out = s
        .send_batch(&[
            msg(ch.id, a.id, "new 1", Some("n1")),
            msg(ch.id, a.id, "retry with other text", Some("k")),
            msg(ch.id, a.id, "new 2", None),
        ])
        .await
        .unwrap();
    assert_eq!(stored(out[0].clone()).seq, 2);
    assert_eq!(duplicate(out[1].clone()), original);
    assert_eq!(stored(out[2].clone()).seq, 3);
    assert_eq!(seqs(&s, ch.id).await, vec![1, 2, 3]);
    assert_eq!(s.channel(ch.id).await.unwrap().unwrap().last_seq, 3);
    // The batch stored its new messages after all: the same batch again is all duplicates.
    let again = s
        .send_batch(&[
            msg(ch.id, a.id, "new 1", Some("n1")),
            msg(ch.id, a.id, "retry", Some("k")),
        ])
        .await
        .unwrap();
    assert_eq!(duplicate(again[0].clone()), stored(out[0].clone()));
    assert_eq!(duplicate(again[1].clone()), original);
}

#[tokio::test]
async fn single_sends_take_every_outcome() {
    let s = store().await;
    let a = s.create_user("alice", "h").await.unwrap();
    let b = s.create_user("bob", "h").await.unwrap();
    let ch = s.create_channel("general", a.id).await.unwrap();
    let first = stored(s.send(msg(ch.id, a.id, "first", Some("k"))).await.unwrap());
    assert_eq!(
        (first.seq, first.sender.as_str(), first.content.as_str()),
        (1, "alice", "first")
    );
    assert_eq!(first.client_msg_id.as_deref(), Some("k"));
    let retry = s
        .send(msg(ch.id, a.id, "other text", Some("k")))
        .await
        .unwrap();
    assert_eq!(retry, SendOutcome::Duplicate(first.clone()));
    // A retry with a bad reply_to still gets the original; a new key with one does not store.
    let retry = s.send(reply(ch.id, a.id, "x", Some("k"), 7)).await.unwrap();
    assert_eq!(retry, SendOutcome::Duplicate(first.clone()));
    assert_eq!(
        s.send(reply(ch.id, a.id, "x", Some("new"), 2))
            .await
            .unwrap(),
        SendOutcome::BadReplyTo
    );
    assert_eq!(
        s.send(reply(ch.id, a.id, "x", None, 0)).await.unwrap(),
        SendOutcome::BadReplyTo
    );
    assert_eq!(
        s.send(msg(ch.id, b.id, "x", Some("k"))).await.unwrap(),
        SendOutcome::NotMember
    );
    assert_eq!(
        s.send(msg(999_999_999_999, a.id, "x", None)).await.unwrap(),
        SendOutcome::NoChannel
    );
    let r = stored(
        s.send(reply(ch.id, a.id, "re", Some("new"), 1))
            .await
            .unwrap(),
    );
    assert_eq!((r.seq, r.reply_to), (2, Some(1)));
    assert!(r.id > first.id);
    assert_eq!(seqs(&s, ch.id).await, vec![1, 2]);
    // What a send returns is what history reads back.
    let h = s.history(ch.id, None, Some(0), 10).await.unwrap();
    let h: Vec<_> = h.messages.into_iter().map(as_sent).collect();
    assert_eq!(h, vec![first, r]);
}

#[tokio::test]
async fn concurrent_batches_sharing_keys_store_each_key_once_without_holes() {
    let s = store().await;
    let u = s.create_user("alice", "h").await.unwrap();
    let c1 = s.create_channel("one", u.id).await.unwrap();
    let c2 = s.create_channel("two", u.id).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..12 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            // Every batch: the shared keys k0..k4 (in both channels) and two keys of its own.
            let mut batch = Vec::new();
            for i in 0..5 {
                let ch = if (i + t) % 2 == 0 { c1.id } else { c2.id };
                batch.push(msg(ch, u.id, &format!("{t}"), Some(&format!("k{i}"))));
                batch.push(msg(c1.id, u.id, "own", Some(&format!("own-{t}-{i}"))));
            }
            s.send_batch(&batch).await.unwrap()
        }));
    }
    let mut stored_ids = HashSet::new();
    let mut originals = std::collections::HashMap::new();
    for t in tasks {
        for o in t.await.unwrap() {
            let (m, fresh) = match o {
                SendOutcome::Stored(m) => (m, true),
                SendOutcome::Duplicate(m) => (m, false),
                other => panic!("unexpected {other:?}"),
            };
            if fresh {
                assert!(stored_ids.insert(m.id), "stored twice: {m:?}");
            }
            let key = (m.channel_id, m.client_msg_id.clone());
            let id = *originals.entry(key).or_insert(m.id);
            assert_eq!(id, m.id, "every send of a key gets the same message");
        }
    }
    // Each shared key once per channel it was sent to, plus 12 x 5 own keys.
    assert_eq!(stored_ids.len(), originals.len());
    let (n1, n2) = (seqs(&s, c1.id).await, seqs(&s, c2.id).await);
    assert_eq!(n1, (1..=n1.len() as i64).collect::<Vec<_>>());
    assert_eq!(n2, (1..=n2.len() as i64).collect::<Vec<_>>());
    assert_eq!(n1.len() + n2.len(), stored_ids.len());
    assert_eq!(
        s.channel(c1.id).await.unwrap().unwrap().last_seq,
        n1.len() as i64
    );
}

/// Sends the same pseudo-random batches (1 to 10 sends; existing and missing channels,
/// members and not, stored, repeated and new keys, good and bad reply_to) through
/// `send_batch` on one database and through migration 0002's per-input function, kept as
/// `send_messages_exact`, on another: every outcome and every stored row must be the same, and
/// every message returned must be the row stored.
#[tokio::test]
async fn send_batch_decides_exactly_as_the_per_input_algorithm() {
    use std::collections::HashMap;
    struct Side {
        users: Vec<i64>,
        channels: Vec<i64>,
    }
    async fn setup(s: &Store) -> Side {
        let mut users = Vec::new();
        for name in ["u0", "u1", "u2"] {
            users.push(s.create_user(name, "h").await.unwrap().id);
        }
        let mut channels = Vec::new();
        for (i, members) in [vec![1], vec![], vec![1, 2], vec![2]].iter().enumerate() {
            let ch = s
                .create_channel(&format!("c{i}"), users[0])
                .await
                .unwrap()
                .id;
            for m in members {
                s.join(ch, users[*m]).await.unwrap();
            }
            channels.push(ch);
        }
        // A channel id that does not exist.
        channels.push(999_999_999_999);
        Side { users, channels }
    }
    let (db_new, db_old) = (testkit::fresh_db().await, testkit::fresh_db().await);
    let new = Store::connect(&db_new.url, 4).unwrap();
    let old = Store::connect(&db_old.url, 4).unwrap();
    let (side_new, side_old) = (setup(&new).await, setup(&old).await);
    let exact = shared::store::migrate::connect(&db_old.url).await.unwrap();
    let exact_stmt = exact
        .prepare(
            "SELECT outcome, seq, sender, content, reply_to, client_msg_id \
             FROM send_messages_exact($1::int8[], $2::int8[], $3::text[], $4::int8[], $5::text[])",
        )
        .await
        .unwrap();

    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut returned = Vec::new();
    let mut last_seq = [0i64; 5];
    for round in 0..400 {
        let size = if next(2) == 0 {
            1
        } else {
            2 + next(9) as usize
        };
        // (channel index, sender index, content, reply_to, key)
        let mut spec = Vec::new();
        for i in 0..size {
            let c = next(5) as usize;
            // No key, a new key, or one of a few (stored already, or twice in the batch).
            let key = match next(10) {
                0..=2 => None,
                3 | 4 => Some(format!("k{}", next(2))),
                _ => Some(format!("new-{round}-{i}")),
            };
            // Mostly around the edges of the valid range 1..=last_seq (which grows within the
            // batch): 0, 1, last, last + 1, last + 2, or anywhere below.
            let last = last_seq[c];
            let reply = (next(10) >= 6).then(|| match next(6) {
                0 => 0,
                1 => 1,
                2 => last,
                3 => last + 1,
                4 => last + 2,
                _ => next(last as u64 + 1) as i64,
            });
            spec.push((c, next(3) as usize, format!("r{round}-{i}"), reply, key));
        }
        let batch: Vec<NewMessage> = spec
            .iter()
            .map(|(c, u, content, reply, key)| NewMessage {
                channel_id: side_new.channels[*c],
                sender_id: side_new.users[*u],
                content: content.clone(),
                client_msg_id: key.clone(),
                reply_to: *reply,
                attachments: Vec::new(),
            })
            .collect();
        let got = new.send_batch(&batch).await.unwrap();
        let c: Vec<i64> = spec.iter().map(|x| side_old.channels[x.0]).collect();
        let s: Vec<i64> = spec.iter().map(|x| side_old.users[x.1]).collect();
        let b: Vec<&str> = spec.iter().map(|x| x.2.as_str()).collect();
        let r: Vec<Option<i64>> = spec.iter().map(|x| x.3).collect();
        let k: Vec<Option<&str>> = spec.iter().map(|x| x.4.as_deref()).collect();
        let want = exact
            .query(&exact_stmt, &[&c, &s, &b, &r, &k])
            .await
            .unwrap();
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let code: i16 = w.get(0);
            let m = match (g, code) {
                (SendOutcome::Stored(m), 0) | (SendOutcome::Duplicate(m), 1) => m,
                (SendOutcome::NoChannel, 2)
                | (SendOutcome::NotMember, 3)
                | (SendOutcome::BadReplyTo, 4) => continue,
                _ => panic!("round {round} send {i}: got {g:?}, 0002 says outcome {code}"),
            };
            let (ch, sender) = (spec[i].0, spec[i].1);
            assert_eq!(m.channel_id, side_new.channels[ch]);
            assert_eq!(m.sender_id, side_new.users[sender]);
            let w_seq: i64 = w.get(1);
            let w_sender: String = w.get(2);
            let w_content: String = w.get(3);
            let w_reply: Option<i64> = w.get(4);
            let w_key: Option<String> = w.get(5);
            assert_eq!(
                (m.seq, &m.sender, &m.content, m.reply_to, &m.client_msg_id),
                (w_seq, &w_sender, &w_content, w_reply, &w_key),
                "round {round} send {i}"
            );
            last_seq[ch] = last_seq[ch].max(m.seq);
            returned.push(m.clone());
        }
    }
    // Every message returned is the stored row, id and created_at included.
    let mut rows = HashMap::new();
    for (i, ch) in side_new.channels[..4].iter().enumerate() {
        let h = new.history(*ch, None, Some(0), 10_000).await.unwrap();
        let seqs: Vec<i64> = h.messages.iter().map(|m| m.seq).collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as i64).collect::<Vec<_>>(),
            "gap-free"
        );
        let old_h = old
            .history(side_old.channels[i], None, Some(0), 10_000)
            .await
            .unwrap();
        let strip = |m: &shared::Message| {
            (
                m.seq,
                m.sender.clone(),
                m.content.clone(),
                m.reply_to,
                m.client_msg_id.clone(),
            )
        };
        assert_eq!(
            h.messages.iter().map(strip).collect::<Vec<_>>(),
            old_h.messages.iter().map(strip).collect::<Vec<_>>()
        );
        let last = new.channel(*ch).await.unwrap().unwrap().last_seq;
        assert_eq!(last, seqs.len() as i64);
        for m in h.messages {
            rows.insert((m.channel_id, m.seq), as_sent(m));
        }
    }
    assert!(rows.len() > 200, "only {} messages stored", rows.len());
    for m in returned {
        assert_eq!(rows.get(&(m.channel_id, m.seq)), Some(&m));
    }
}

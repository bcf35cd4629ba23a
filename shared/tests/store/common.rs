//! What every store test uses: a fresh database, sends to build, outcomes to unwrap.

use shared::store::{NewMessage, SendOutcome, Store};

pub async fn store() -> Store {
    let db = testkit::fresh_db().await;
    Store::connect(&db.url, 16).unwrap()
}

pub fn msg(channel_id: i64, sender_id: i64, content: &str, key: Option<&str>) -> NewMessage {
    NewMessage {
        channel_id,
        sender_id,
        content: content.into(),
        client_msg_id: key.map(str::to_owned),
        reply_to: None,
        attachments: Vec::new(),
    }
}

pub fn stored(o: SendOutcome) -> shared::Message {
    match o {
        SendOutcome::Stored(m) => m,
        other => panic!("expected Stored, got {other:?}"),
    }
}

pub fn reply(
    channel_id: i64,
    sender_id: i64,
    content: &str,
    key: Option<&str>,
    to: i64,
) -> NewMessage {
    NewMessage {
        reply_to: Some(to),
        attachments: Vec::new(),
        ..msg(channel_id, sender_id, content, key)
    }
}

pub fn duplicate(o: SendOutcome) -> shared::Message {
    match o {
        SendOutcome::Duplicate(m) => m,
        other => panic!("expected Duplicate, got {other:?}"),
    }
}

/// The seqs stored in the channel, ascending.
pub async fn seqs(s: &Store, channel_id: i64) -> Vec<i64> {
    let h = s.history(channel_id, None, Some(0), 1000).await.unwrap();
    h.messages.iter().map(|m| m.seq).collect()
}

/// A message read back as a send returned it: a root's thread counters grow with the replies
/// stored after it.
pub fn as_sent(mut m: shared::Message) -> shared::Message {
    m.reply_count = 0;
    m.last_reply_at = None;
    m
}

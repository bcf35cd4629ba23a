//! Exact delivery accounting: what each socket should have received (every acked seq after
//! its start, from its `chat-client` seq tracks), and what was lost, duplicated or out of order.

use std::collections::HashMap;

use chat_client::{bitmap::Bitmap, Track};

/// Totals over every socket and channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub replayed: u64,
    /// Deliveries of seqs nobody saw acked (the sender died or timed out before its ack).
    pub unacked_deliveries: u64,
}

impl Tally {
    /// True when nothing was lost, duplicated or reordered.
    pub fn clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.out_of_order == 0
    }
}

/// Acked seqs per channel, merged from every socket (stored as `seq - 1`).
#[derive(Debug, Default)]
pub struct Acked {
    pub channels: HashMap<i64, Bitmap>,
}

impl Acked {
    pub fn insert(&mut self, channel: i64, seq: i64) {
        if let Ok(i) = u64::try_from(seq - 1) {
            self.channels.entry(channel).or_default().insert(i);
        }
    }

    pub fn total(&self) -> u64 {
        self.channels.values().map(Bitmap::len).sum()
    }
}

/// Adds one socket's tracks to `tally`, checking them against the acked seqs.
pub fn tally_tracks<'a>(
    tally: &mut Tally,
    acked: &Acked,
    tracks: impl IntoIterator<Item = (&'a i64, &'a Track)>,
) {
    let empty = Bitmap::default();
    for (channel, t) in tracks {
        let a = acked.channels.get(channel).unwrap_or(&empty);
        let (expected, lost) = t.expected_and_lost(a);
        tally.expected += expected;
        tally.lost += lost;
        tally.received += t.received;
        tally.duplicated += t.duplicated;
        tally.out_of_order += t.out_of_order;
        tally.replayed += t.replayed;
        let on_time = t
            .seen()
            .iter()
            .filter(|i| a.contains(*i + t.start().max(0) as u64))
            .count() as u64;
        tally.unacked_deliveries += t.received - on_time.min(t.received);
    }
}

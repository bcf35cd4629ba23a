//! Exact delivery accounting: which seqs each socket received per channel, what it should have
//! received (every acked seq after its start), and what was lost, duplicated or out of order.

use std::collections::HashMap;

/// A growable set of non-negative integers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bitmap {
    words: Vec<u64>,
}

impl Bitmap {
    /// Adds `i`; returns false when it was already there.
    pub fn insert(&mut self, i: u64) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let was = self.words[w] & (1 << b) != 0;
        self.words[w] |= 1 << b;
        !was
    }

    pub fn contains(&self, i: u64) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        self.words.get(w).is_some_and(|x| x & (1 << b) != 0)
    }

    pub fn len(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// Members in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &bits)| {
            (0..64u64)
                .filter(move |b| bits & (1 << b) != 0)
                .map(move |b| w as u64 * 64 + b)
        })
    }
}

/// What a `message` frame was, for the socket that received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A new seq, higher than every seq before it.
    InOrder,
    /// A new seq, but lower than one already received.
    OutOfOrder,
    /// A seq already received.
    Duplicate,
    /// A seq already received, replayed by a `resume` (allowed).
    Replayed,
    /// A new seq below one already received, from the gap a `resume` asked for after a
    /// reconnect: live messages committed after the new socket joined may reach it before the
    /// replay does (allowed: SPEC 5.4 orders delivery while a socket stays connected, and
    /// `resume` closes the gap across a reconnect).
    GapFilled,
    /// A seq at or before the socket's start cursor (not expected, not counted).
    BeforeStart,
}

/// The seqs one socket received in one channel.
#[derive(Debug, Clone, Default)]
pub struct Track {
    /// The channel's `last_seq` when the socket became ready: it must receive every acked seq
    /// above this.
    start: i64,
    /// `message` frames received, as `seq - start - 1`.
    seen: Bitmap,
    /// Acks received on this very socket (the sender's own copy counts as delivered to it).
    acked_here: Bitmap,
    /// Highest seq received so far (or the resume cursor after a reconnect).
    last: i64,
    /// Between a `resume` and its `resumed`: seqs seen before may come again.
    replaying: bool,
    /// During a replay after a reconnect: the gap `(from, upto]` the `resume` asked for, where
    /// `upto` is the channel's `last_seq` in the new socket's `ready`.
    gap: Option<(i64, i64)>,
    pub received: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub replayed: u64,
}

impl Track {
    pub fn new(start: i64) -> Self {
        Track {
            start,
            last: start,
            ..Track::default()
        }
    }

    pub fn start(&self) -> i64 {
        self.start
    }

    fn index(&self, seq: i64) -> Option<u64> {
        u64::try_from(seq - self.start - 1).ok()
    }

    /// Records a `message` frame carrying `seq`.
    pub fn on_message(&mut self, seq: i64) -> Delivery {
        let Some(i) = self.index(seq) else {
            return Delivery::BeforeStart;
        };
        let in_gap = self
            .gap
            .is_some_and(|(from, upto)| seq > from && seq <= upto);
        if !self.seen.insert(i) {
            // A replay repeats what the old socket saw above its contiguous cursor (say, past
            // its own send whose ack the disconnect lost); in the resumed gap that may come
            // after live messages.
            if self.replaying && (seq > self.last || in_gap) {
                self.last = self.last.max(seq);
                self.replayed += 1;
                return Delivery::Replayed;
            }
            self.duplicated += 1;
            return Delivery::Duplicate;
        }
        self.received += 1;
        if seq < self.last && self.replaying && in_gap {
            return Delivery::GapFilled;
        }
        if seq < self.last {
            self.out_of_order += 1;
            return Delivery::OutOfOrder;
        }
        self.last = seq;
        Delivery::InOrder
    }

    /// A one-line account of where the track stands, for diagnosing a bad delivery.
    pub fn state(&self) -> String {
        format!(
            "start {}, last {}, contiguous {}, replaying {}, gap {:?}",
            self.start,
            self.last,
            self.contiguous(),
            self.replaying,
            self.gap
        )
    }

    /// Records an `ack` for `seq` received on this socket.
    pub fn on_ack(&mut self, seq: i64) {
        if let Some(i) = self.index(seq) {
            self.acked_here.insert(i);
        }
    }

    /// The highest seq up to which this socket has everything: the cursor to `resume` from.
    pub fn contiguous(&self) -> i64 {
        let mut i = 0u64;
        while self.seen.contains(i) || self.acked_here.contains(i) {
            i += 1;
        }
        self.start + i as i64
    }

    /// A `resume` from `cursor` was sent: seqs after it may be replayed until `resumed`.
    pub fn begin_replay(&mut self, cursor: i64) {
        self.replaying = true;
        self.last = cursor;
    }

    /// Like [`Track::begin_replay`] on a new socket whose `ready` gave the channel's
    /// `last_seq` as `ready_last`: the gap `(cursor, ready_last]` may arrive after live
    /// messages above `ready_last`.
    pub fn begin_reconnect_replay(&mut self, cursor: i64, ready_last: i64) {
        self.begin_replay(cursor);
        self.gap = Some((cursor, ready_last));
    }

    /// The `resumed` frame arrived.
    pub fn end_replay(&mut self) {
        self.replaying = false;
        self.gap = None;
    }

    /// Of the channel's acked seqs, how many this socket should have had and how many it missed.
    pub fn expected_and_lost(&self, acked: &Bitmap) -> (u64, u64) {
        let mut expected = 0;
        let mut lost = 0;
        for seq0 in acked.iter() {
            // `acked` holds `seq - 1`.
            let seq = seq0 as i64 + 1;
            let Some(i) = self.index(seq) else { continue };
            expected += 1;
            if !self.seen.contains(i) && !self.acked_here.contains(i) {
                lost += 1;
            }
        }
        (expected, lost)
    }
}

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
            .seen
            .iter()
            .filter(|i| a.contains(*i + t.start.max(0) as u64))
            .count() as u64;
        tally.unacked_deliveries += t.received - on_time.min(t.received);
    }
}

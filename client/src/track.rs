//! The seqs one socket received in one channel, and what each new `message` was: in order, a
//! duplicate, a legitimate `resume` replay or gap fill, or out of order (SPEC 5.4; the rules
//! are BENCHMARKS.md "What `loadtest` reports").

use crate::bitmap::Bitmap;

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

impl Delivery {
    /// A seq not seen before: the message to show (everything else is dropped by seq).
    pub fn is_new(self) -> bool {
        matches!(
            self,
            Delivery::InOrder | Delivery::OutOfOrder | Delivery::GapFilled
        )
    }

    /// A delivery the protocol forbids: a seq twice, or a new seq below one already received.
    pub fn is_violation(self) -> bool {
        matches!(self, Delivery::Duplicate | Delivery::OutOfOrder)
    }
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

    /// `message` frames received, as `seq - start - 1`.
    pub fn seen(&self) -> &Bitmap {
        &self.seen
    }

    fn index(&self, seq: i64) -> Option<u64> {
        u64::try_from(seq - self.start - 1).ok()
    }

    /// Whether a `message` carrying `seq` arrived.
    pub fn has(&self, seq: i64) -> bool {
        self.index(seq).is_some_and(|i| self.seen.contains(i))
    }

    /// Records a `message` frame carrying `seq`.
    #[inline]
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

    /// Of the channel's acked seqs (`seq - 1` in `acked`), how many this socket should have had
    /// and how many it missed.
    pub fn expected_and_lost(&self, acked: &Bitmap) -> (u64, u64) {
        let mut expected = 0;
        let mut lost = 0;
        for seq0 in acked.iter() {
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

#[cfg(test)]
mod tests {
    use super::{Delivery, Track};

    #[test]
    fn only_first_sightings_are_new_and_only_repeats_or_reorders_are_violations() {
        let mut t = Track::new(10);
        let got: Vec<Delivery> = [9, 11, 13, 12, 13].map(|s| t.on_message(s)).into();
        assert_eq!(
            got,
            [
                Delivery::BeforeStart,
                Delivery::InOrder,
                Delivery::InOrder,
                Delivery::OutOfOrder,
                Delivery::Duplicate
            ]
        );
        let new: Vec<bool> = got.iter().map(|d| d.is_new()).collect();
        assert_eq!(new, [false, true, true, true, false]);
        let bad: Vec<bool> = got.iter().map(|d| d.is_violation()).collect();
        assert_eq!(bad, [false, false, false, true, true]);
        assert!(t.has(12) && !t.has(14) && !t.has(10));
        assert_eq!((t.received, t.duplicated, t.out_of_order), (3, 1, 1));
    }

    #[test]
    fn the_contiguous_cursor_counts_own_acks_and_stops_at_the_first_hole() {
        let mut t = Track::new(4);
        assert_eq!(t.contiguous(), 4);
        t.on_message(5);
        t.on_ack(6);
        t.on_message(8);
        assert_eq!(t.contiguous(), 6);
        t.on_message(7);
        assert_eq!(t.contiguous(), 8);
    }

    /// Property tests of dedupe and of the gap a reconnect's `resume` fills.
    mod props {
        use std::collections::HashSet;

        use proptest::prelude::*;

        use super::{Delivery, Track};

        proptest! {
            /// Dedupe: whatever the order and the repeats, each seq above the start is new
            /// exactly once, every repeat is a `Duplicate`, and the counters agree.
            #[test]
            fn each_seq_is_new_once_and_every_repeat_is_a_duplicate(
                start in 0i64..1_000,
                offsets in prop::collection::vec(-20i64..300, 0..400),
            ) {
                let mut t = Track::new(start);
                let mut distinct = HashSet::new();
                let (mut new, mut counted) = (0u64, 0u64);
                for off in offsets {
                    let seq = start + off;
                    let d = t.on_message(seq);
                    if seq <= start {
                        prop_assert_eq!(d, Delivery::BeforeStart);
                        continue;
                    }
                    counted += 1;
                    let first = distinct.insert(seq);
                    prop_assert_eq!(d.is_new(), first, "{:?} for {}", d, seq);
                    prop_assert_eq!(d == Delivery::Duplicate, !first);
                    new += u64::from(first);
                }
                prop_assert_eq!(t.received, new);
                prop_assert_eq!(t.duplicated, counted - new);
            }

            /// In-order delivery (any gaps between seqs) is never a violation.
            #[test]
            fn ascending_seqs_are_all_in_order(
                start in 0i64..1_000,
                mut offsets in prop::collection::vec(1i64..10_000, 0..200),
            ) {
                offsets.sort_unstable();
                offsets.dedup();
                let mut t = Track::new(start);
                for off in offsets {
                    prop_assert_eq!(t.on_message(start + off), Delivery::InOrder);
                }
                prop_assert_eq!(t.out_of_order + t.duplicated, 0);
            }

            /// The gap filler: after a reconnect, the replay of `(cursor, ready_last]` may
            /// interleave in any way with live messages above `ready_last`; nothing is a
            /// violation, every seq is shown once, and the cursor ends past all of them.
            #[test]
            fn a_resumed_gap_may_interleave_with_live_messages(
                seen in 0i64..50,
                gap in 0i64..50,
                live in 0i64..50,
                picks in prop::collection::vec(any::<bool>(), 0..100),
            ) {
                let mut t = Track::new(0);
                for s in 1..=seen {
                    prop_assert_eq!(t.on_message(s), Delivery::InOrder);
                }
                let cursor = t.contiguous();
                prop_assert_eq!(cursor, seen);
                let ready_last = seen + gap;
                t.begin_reconnect_replay(cursor, ready_last);
                let mut replay = (cursor + 1..=ready_last).peekable();
                let mut fresh = (ready_last + 1..=ready_last + live).peekable();
                let mut picks = picks.into_iter();
                loop {
                    let take_live = match (replay.peek(), fresh.peek()) {
                        (None, None) => break,
                        (Some(_), None) => false,
                        (None, Some(_)) => true,
                        (Some(_), Some(_)) => picks.next().unwrap_or(false),
                    };
                    let seq = if take_live { fresh.next() } else { replay.next() };
                    let Some(seq) = seq else { break };
                    let d = t.on_message(seq);
                    prop_assert!(d.is_new() && !d.is_violation(), "{:?} for {}: {}", d, seq, t.state());
                }
                t.end_replay();
                prop_assert_eq!(t.contiguous(), ready_last + live);
                prop_assert_eq!(t.received as i64, ready_last + live);
                prop_assert_eq!(t.out_of_order + t.duplicated, 0);
            }
        }
    }
}

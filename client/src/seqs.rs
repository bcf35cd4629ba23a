//! Per-channel seq tracking across reconnects: one [`Track`] per channel, the `resume` cursors
//! after a reconnect (the last contiguous seq of each channel), and the channels a
//! `resume_truncated` cut short, asked again once `resumed` arrives.

use std::collections::{BTreeMap, HashMap};

use shared::protocol::MyChannel;

use crate::track::{Delivery, Track};

/// The seq tracks of one client, kept across its sockets.
#[derive(Debug, Clone, Default)]
pub struct Seqs {
    tracks: HashMap<i64, Track>,
    /// Track only these channels; `None`: every channel of the first `ready`, and channels
    /// added later.
    only: Option<Vec<i64>>,
    started: bool,
    /// Channels whose replay a `resume_truncated` cut short, until `resumed`.
    truncated: Vec<i64>,
}

impl Seqs {
    /// Tracks `only` these channels, or every channel of the user (`None`).
    pub fn new(only: Option<Vec<i64>>) -> Self {
        Seqs {
            only,
            ..Seqs::default()
        }
    }

    /// Whether the first `ready` has been seen.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// The first `ready`: each channel is tracked from its `last_seq` (0 for a channel it does
    /// not list).
    pub fn start(&mut self, ready: &[MyChannel]) {
        self.started = true;
        let last = |c: i64| ready.iter().find(|m| m.id == c).map_or(0, |m| m.last_seq);
        match &self.only {
            Some(only) => {
                for &c in only {
                    self.tracks.insert(c, Track::new(last(c)));
                }
            }
            None => {
                for m in ready {
                    self.tracks.insert(m.id, Track::new(m.last_seq));
                }
            }
        }
    }

    /// A later `ready`, on a new socket: every channel resumes from its last contiguous seq,
    /// and the gap up to this `ready`'s `last_seq` may follow live messages. Returns the
    /// cursors for the `resume` frame.
    pub fn resume(&mut self, ready: &[MyChannel]) -> BTreeMap<i64, i64> {
        self.truncated.clear();
        let mut cursors = BTreeMap::new();
        for (c, t) in self.tracks.iter_mut() {
            let cur = t.contiguous();
            let ready_last = ready
                .iter()
                .find(|m| m.id == *c)
                .map_or(cur, |m| m.last_seq);
            t.begin_reconnect_replay(cur, ready_last);
            cursors.insert(*c, cur);
        }
        cursors
    }

    /// A `message` of `channel_id`; `None` when that channel is not tracked.
    #[inline]
    pub fn on_message(&mut self, channel_id: i64, seq: i64) -> Option<Delivery> {
        self.tracks.get_mut(&channel_id).map(|t| t.on_message(seq))
    }

    /// An `ack` of our own send: the sender's copy counts as delivered to it.
    pub fn on_ack(&mut self, channel_id: i64, seq: i64) {
        if let Some(t) = self.tracks.get_mut(&channel_id) {
            t.on_ack(seq);
        }
    }

    /// `channel_added`: a channel joined elsewhere is tracked from its `last_seq`, when this
    /// client tracks every channel of its user.
    pub fn on_channel_added(&mut self, channel_id: i64, last_seq: i64) {
        if self.started && self.only.is_none() {
            self.tracks
                .entry(channel_id)
                .or_insert_with(|| Track::new(last_seq));
        }
    }

    /// `resume_truncated`: the channel is asked again after `resumed`.
    pub fn on_truncated(&mut self, channel_id: i64) {
        self.truncated.push(channel_id);
    }

    /// `resumed`: the replay windows close. Returns the cursors of a follow-up `resume` for
    /// the channels cut short, if any.
    pub fn on_resumed(&mut self) -> Option<BTreeMap<i64, i64>> {
        for t in self.tracks.values_mut() {
            t.end_replay();
        }
        let mut cursors = BTreeMap::new();
        for c in std::mem::take(&mut self.truncated) {
            if let Some(t) = self.tracks.get_mut(&c) {
                let cur = t.contiguous();
                t.begin_replay(cur);
                cursors.insert(c, cur);
            }
        }
        (!cursors.is_empty()).then_some(cursors)
    }

    pub fn get(&self, channel_id: i64) -> Option<&Track> {
        self.tracks.get(&channel_id)
    }

    pub fn tracks(&self) -> &HashMap<i64, Track> {
        &self.tracks
    }

    pub fn into_tracks(self) -> HashMap<i64, Track> {
        self.tracks
    }
}

#[cfg(test)]
mod tests {
    use shared::protocol::{ChannelKind, MyChannel};

    use super::Seqs;
    use crate::track::Delivery;

    fn ready(channels: &[(i64, i64)]) -> Vec<MyChannel> {
        channels
            .iter()
            .map(|&(id, last_seq)| MyChannel {
                id,
                name: format!("c{id}"),
                kind: ChannelKind::Group,
                last_seq,
                last_read_seq: 0,
                unread: 0,
                mentions: 0,
            })
            .collect()
    }

    #[test]
    fn tracks_start_at_the_first_ready_and_only_chosen_channels_when_asked() {
        let mut all = Seqs::new(None);
        assert!(!all.is_started());
        all.start(&ready(&[(1, 5), (2, 0)]));
        assert!(all.is_started());
        assert_eq!(all.on_message(1, 5), Some(Delivery::BeforeStart));
        assert_eq!(all.on_message(1, 6), Some(Delivery::InOrder));
        assert_eq!(all.on_message(3, 1), None);
        all.on_channel_added(3, 7);
        assert_eq!(all.on_message(3, 8), Some(Delivery::InOrder));

        let mut some = Seqs::new(Some(vec![2, 9]));
        some.start(&ready(&[(1, 5), (2, 3)]));
        assert_eq!(some.on_message(1, 6), None);
        assert_eq!(some.get(2).map(|t| t.start()), Some(3));
        assert_eq!(some.get(9).map(|t| t.start()), Some(0));
        some.on_channel_added(4, 0);
        assert!(some.get(4).is_none());
    }

    #[test]
    fn a_reconnect_resumes_from_the_last_contiguous_seq_of_each_channel() {
        let mut s = Seqs::new(None);
        s.start(&ready(&[(1, 0), (2, 10)]));
        for seq in [1, 2, 4] {
            s.on_message(1, seq);
        }
        s.on_ack(2, 11);
        s.on_message(2, 12);
        let cursors = s.resume(&ready(&[(1, 6), (2, 12)]));
        assert_eq!(cursors.into_iter().collect::<Vec<_>>(), [(1, 2), (2, 12)]);
        // Live 7 first, then the gap (2, 6]: 3, 5 and 6 fill it; 4 is a legitimate replay.
        assert_eq!(s.on_message(1, 7), Some(Delivery::InOrder));
        assert_eq!(s.on_message(1, 3), Some(Delivery::GapFilled));
        assert_eq!(s.on_message(1, 4), Some(Delivery::Replayed));
        assert_eq!(s.on_message(1, 5), Some(Delivery::GapFilled));
        assert_eq!(s.on_message(1, 6), Some(Delivery::GapFilled));
        assert_eq!(s.on_message(1, 7), Some(Delivery::Duplicate));
        assert_eq!(s.on_resumed(), None);
        assert_eq!(s.on_message(1, 6), Some(Delivery::Duplicate));
        assert_eq!(s.get(1).map(|t| t.contiguous()), Some(7));
    }

    #[test]
    fn a_truncated_replay_is_asked_again_from_where_it_stopped() {
        let mut s = Seqs::new(None);
        s.start(&ready(&[(1, 0), (2, 0)]));
        s.resume(&ready(&[(1, 3000), (2, 0)]));
        for seq in 1..=1000 {
            assert_eq!(s.on_message(1, seq), Some(Delivery::InOrder));
        }
        s.on_truncated(1);
        let again = s.on_resumed().map(|c| c.into_iter().collect::<Vec<_>>());
        assert_eq!(again, Some(vec![(1, 1000)]));
        assert_eq!(s.on_message(1, 1001), Some(Delivery::InOrder));
        assert_eq!(s.on_resumed(), None);
    }
}

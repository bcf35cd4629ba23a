//! The mixed scenario's operations: of every ten a socket is told to make, four are new
//! messages and six change one of its own acked messages (two edits, three reactions added or
//! taken back, one delete). A change is a sequenced event of its channel, so the accounting
//! counts it like a message: its ack names its seq, and every member socket must get it once,
//! in order.

use std::collections::HashMap;

use rand::Rng;
use shared::protocol::ClientFrame;

/// Own messages kept per channel as change targets, the newest last.
const KEEP: usize = 32;
/// The reaction every change of that kind adds or takes back.
const EMOJI: &str = "👍";

/// What one operation is; its tag ends the `client_msg_id`, so an ack tells what it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Send,
    Edit,
    React,
    Unreact,
    Delete,
}

impl Op {
    fn tag(self) -> char {
        match self {
            Op::Send => 's',
            Op::Edit => 'e',
            Op::React => 'r',
            Op::Unreact => 'u',
            Op::Delete => 'd',
        }
    }

    /// The operation a `client_msg_id` made by [`Op::client_msg_id`] names.
    pub fn of(client_msg_id: &str) -> Option<Op> {
        match client_msg_id.rsplit('-').next()? {
            "s" => Some(Op::Send),
            "e" => Some(Op::Edit),
            "r" => Some(Op::React),
            "u" => Some(Op::Unreact),
            "d" => Some(Op::Delete),
            _ => None,
        }
    }

    /// `<socket>-<n>-<tag>`: unique per socket and operation, kept across resends.
    pub fn client_msg_id(self, socket: usize, n: u64) -> String {
        format!("{socket}-{n}-{}", self.tag())
    }
}

#[derive(Debug, Clone, Copy)]
struct Own {
    message_id: i64,
    reacted: bool,
    /// A change to it is waiting for its answer: the next one waits too, so two changes to
    /// one message never race.
    busy: bool,
}

/// One socket's own acked messages and the changes it has in flight.
#[derive(Debug, Default)]
pub struct Mix {
    own: HashMap<i64, Vec<Own>>,
    /// `client_msg_id` of a change in flight -> (channel, message).
    pending: HashMap<String, (i64, i64)>,
}

impl Mix {
    /// A send acked: its message becomes a target.
    pub fn on_sent(&mut self, channel_id: i64, message_id: i64) {
        let v = self.own.entry(channel_id).or_default();
        v.push(Own {
            message_id,
            reacted: false,
            busy: false,
        });
        if v.len() > KEEP {
            v.remove(0);
        }
    }

    /// A change answered (acked or refused): its message may change again.
    pub fn on_answered(&mut self, client_msg_id: &str) {
        let Some((ch, id)) = self.pending.remove(client_msg_id) else {
            return;
        };
        if let Some(m) = self
            .own
            .get_mut(&ch)
            .and_then(|v| v.iter_mut().find(|m| m.message_id == id))
        {
            m.busy = false;
        }
    }

    /// The next operation in `channel_id`: a change as `(op, frame)` under `client_msg_id`,
    /// or `None` for a new message (also when no own message there is free to change).
    pub fn next(
        &mut self,
        rng: &mut impl Rng,
        channel_id: i64,
        socket: usize,
        n: u64,
        content: impl FnOnce() -> String,
    ) -> Option<(Op, String, ClientFrame)> {
        let roll = rng.random_range(0..10u32);
        if roll < 4 {
            return None;
        }
        let v = self.own.get_mut(&channel_id)?;
        let free: Vec<usize> = (0..v.len()).filter(|&i| !v[i].busy).collect();
        let i = *free.get(rng.random_range(0..free.len().max(1)))?;
        let m = &mut v[i];
        let message_id = m.message_id;
        let op = match roll {
            4 | 5 => Op::Edit,
            6..=8 if m.reacted => Op::Unreact,
            6..=8 => Op::React,
            _ => Op::Delete,
        };
        let cmid = op.client_msg_id(socket, n);
        let frame = match op {
            Op::Edit => ClientFrame::Edit {
                channel_id,
                message_id,
                content: content(),
                client_msg_id: Some(cmid.clone()),
            },
            Op::React | Op::Unreact => {
                m.reacted = op == Op::React;
                let emoji = EMOJI.to_owned();
                let client_msg_id = Some(cmid.clone());
                if op == Op::React {
                    ClientFrame::React {
                        channel_id,
                        message_id,
                        emoji,
                        client_msg_id,
                    }
                } else {
                    ClientFrame::Unreact {
                        channel_id,
                        message_id,
                        emoji,
                        client_msg_id,
                    }
                }
            }
            Op::Delete | Op::Send => ClientFrame::Delete {
                channel_id,
                message_id,
                client_msg_id: Some(cmid.clone()),
            },
        };
        if op == Op::Delete {
            // A tombstone takes no more changes.
            v.remove(i);
        } else {
            m.busy = true;
        }
        self.pending.insert(cmid.clone(), (channel_id, message_id));
        Some((op, cmid, frame))
    }
}

#[cfg(test)]
mod tests {
    use rand::{rngs::StdRng, SeedableRng};

    use super::*;

    #[test]
    fn changes_touch_only_own_free_messages_and_a_deleted_one_never_again() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut mix = Mix::default();
        assert!(
            (0..50).all(|n| mix.next(&mut rng, 5, 1, n, String::new).is_none()),
            "no own message yet: only sends"
        );
        mix.on_sent(5, 100);
        let mut ops = Vec::new();
        let mut deleted = false;
        for n in 0..500 {
            let Some((op, cmid, frame)) = mix.next(&mut rng, 5, 1, n, || "x".into()) else {
                continue;
            };
            assert!(!deleted, "a change after the delete: {frame:?}");
            assert_eq!(Op::of(&cmid), Some(op));
            assert!(
                mix.next(&mut rng, 5, 1, n, String::new).is_none(),
                "a second change while one is in flight"
            );
            deleted = op == Op::Delete;
            mix.on_answered(&cmid);
            ops.push(op);
        }
        assert!(deleted, "{ops:?}");
        // Reactions alternate: added, then taken back.
        let reactions: Vec<_> = ops
            .iter()
            .filter(|o| matches!(o, Op::React | Op::Unreact))
            .collect();
        assert!(reactions.chunks(2).all(|p| p[0] == &Op::React));
        assert_eq!(Op::of("3-9-s"), Some(Op::Send));
        assert_eq!(Op::of("3-9"), None);
    }
}

//! Fuzz target: the client's per-channel gap and reorder tracking (`chat_client::Seqs`, one
//! `Track` per channel), driven by any sequence of `ready`s, messages, acks, reconnects,
//! `resume_truncated`s, `resumed`s and `channel_added`s. Checked after every step: a seq is
//! shown (new) at most once, a repeat is never new, the resume cursor is the last seq up to
//! which everything arrived (or was acked here), and the counters agree.
//!
//! Seqs stay within 16 bits of offset: a `Track` keeps a bitmap from its start seq, so a
//! server-sent seq far above it (2^40, say) makes it allocate that many bits (see FUZZING.md).
#![no_main]

use std::collections::HashSet;

use chat_client::{Delivery, Seqs};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use shared::protocol::{ChannelKind, MyChannel};

#[derive(Arbitrary, Debug)]
enum Op {
    Message(u8, u16),
    Ack(u8, u16),
    /// A new socket's `ready`, with each channel's `last_seq`.
    Reconnect(Vec<(u8, u16)>),
    Truncated(u8),
    Resumed,
    Added(u8, u16),
}

#[derive(Arbitrary, Debug)]
struct Input {
    only: Option<Vec<u8>>,
    ready: Vec<(u8, u16)>,
    ops: Vec<Op>,
}

fn ready(list: &[(u8, u16)]) -> Vec<MyChannel> {
    list.iter()
        .map(|&(c, s)| MyChannel {
            id: c.into(),
            name: String::new(),
            kind: ChannelKind::Group,
            last_seq: s.into(),
            last_read_seq: 0,
            unread: 0,
            mentions: 0,
        })
        .collect()
}

fuzz_target!(|input: Input| {
    let mut seqs = Seqs::new(input.only.map(|v| v.into_iter().map(i64::from).collect()));
    seqs.start(&ready(&input.ready));
    let mut shown: HashSet<(i64, i64)> = HashSet::new();
    let mut acked: HashSet<(i64, i64)> = HashSet::new();
    for op in input.ops {
        let touched = match op {
            Op::Message(c, s) => {
                let (c, s) = (i64::from(c), i64::from(s));
                let start = seqs.get(c).map(|t| t.start());
                match (seqs.on_message(c, s), start) {
                    (None, None) => {}
                    (Some(d), Some(start)) => {
                        assert_eq!(d == Delivery::BeforeStart, s <= start, "{d:?} {s} {start}");
                        if d.is_new() {
                            assert!(shown.insert((c, s)), "seq {s} of {c} shown twice");
                        } else if d != Delivery::BeforeStart {
                            assert!(shown.contains(&(c, s)), "{d:?} for unseen seq {s}");
                        }
                        assert_eq!(seqs.get(c).map(|t| t.has(s)), Some(s > start));
                    }
                    other => panic!("tracked and untracked at once: {other:?}"),
                }
                Some(c)
            }
            Op::Ack(c, s) => {
                let (c, s) = (i64::from(c), i64::from(s));
                if seqs.get(c).is_some() {
                    acked.insert((c, s));
                }
                seqs.on_ack(c, s);
                Some(c)
            }
            Op::Reconnect(list) => {
                let before: Vec<(i64, i64)> = seqs
                    .tracks()
                    .iter()
                    .map(|(c, t)| (*c, t.contiguous()))
                    .collect();
                let cursors = seqs.resume(&ready(&list));
                assert_eq!(cursors.len(), before.len());
                for (c, cur) in before {
                    assert_eq!(cursors.get(&c), Some(&cur), "resume cursor of {c}");
                }
                None
            }
            Op::Truncated(c) => {
                seqs.on_truncated(c.into());
                None
            }
            Op::Resumed => {
                if let Some(cursors) = seqs.on_resumed() {
                    for (c, cur) in cursors {
                        assert_eq!(seqs.get(c).map(|t| t.contiguous()), Some(cur));
                    }
                }
                None
            }
            Op::Added(c, s) => {
                seqs.on_channel_added(c.into(), s.into());
                Some(c.into())
            }
        };
        let Some(c) = touched else { continue };
        let Some(t) = seqs.get(c) else { continue };
        let cur = t.contiguous();
        assert!(cur >= t.start());
        let here = |s: i64| shown.contains(&(c, s)) || acked.contains(&(c, s));
        assert!((t.start() + 1..=cur).all(here), "hole below cursor {cur}");
        assert!(!here(cur + 1), "cursor {cur} stops before the first hole");
        let mine = shown.iter().filter(|(ch, _)| *ch == c).count() as u64;
        assert_eq!(t.received, mine);
    }
});

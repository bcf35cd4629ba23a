//! The bounded outbound queue of one socket. Producers (fanout, control events, the socket's
//! own replies) never wait on it: when a push would pass the frame or byte bound, the queue
//! drops what it holds and asks its socket to close with 4008 (slow consumer). Frames the
//! socket asked for (a `resume` replay) are queued beside the bound and not counted in it: a
//! replay of several channels never makes the next live message look like a slow consumer.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::wire::Frame;

/// Close code for a socket that cannot keep up.
pub const SLOW_CONSUMER: u16 = 4008;

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// This push overflowed the queue: the socket is now closing with 4008.
    Overflow,
    /// The socket is already closing; the frame was dropped.
    Closed,
}

#[derive(Debug, Default)]
struct Inner {
    /// Each frame, and whether it counts in the bound (not a requested one).
    frames: VecDeque<(Frame, bool)>,
    /// Frames and payload bytes counted in the bound.
    counted: usize,
    bytes: usize,
    close: Option<(u16, &'static str)>,
}

/// A single-consumer queue of text frames, shared (`Arc`) by every producer of one socket.
#[derive(Debug)]
pub struct OutQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    max_frames: usize,
    max_bytes: usize,
}

impl OutQueue {
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        OutQueue {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            max_frames,
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a frame within the bounds.
    pub fn push(&self, frame: Frame) -> Pushed {
        self.push_inner(frame, true)
    }

    /// Queues a frame the socket itself asked for (a `resume` replay), beside the bounds: its
    /// size is capped by `RESUME_MAX` per channel rather than by the rate of others.
    pub fn push_requested(&self, frame: Frame) -> Pushed {
        self.push_inner(frame, false)
    }

    fn push_inner(&self, frame: Frame, bounded: bool) -> Pushed {
        let pushed = {
            let mut q = self.lock();
            if q.close.is_some() {
                return Pushed::Closed;
            }
            let len = frame.len();
            if bounded && (q.counted >= self.max_frames || q.bytes + len > self.max_bytes) {
                q.frames = VecDeque::new();
                q.counted = 0;
                q.bytes = 0;
                q.close = Some((SLOW_CONSUMER, "slow consumer"));
                Pushed::Overflow
            } else {
                if bounded {
                    q.counted += 1;
                    q.bytes += len;
                }
                q.frames.push_back((frame, bounded));
                Pushed::Queued
            }
        };
        self.notify.notify_one();
        pushed
    }

    /// Asks the socket to close with `code` once it has written what is queued (1012 on
    /// drain) or at once (4008). The first close asked for wins.
    pub fn close(&self, code: u16, reason: &'static str) {
        {
            let mut q = self.lock();
            if q.close.is_none() {
                q.close = Some((code, reason));
            }
        }
        self.notify.notify_one();
    }

    /// Waits until something is queued or a close is asked for.
    pub async fn ready(&self) {
        self.notify.notified().await;
    }

    /// Takes every queued frame (up to `max` of them), and the close request if any.
    pub fn take(&self, max: usize, out: &mut Vec<Frame>) -> Option<(u16, &'static str)> {
        let mut q = self.lock();
        let n = q.frames.len().min(max);
        let (mut frames, mut bytes) = (0, 0);
        for (f, counted) in q.frames.drain(..n) {
            if counted {
                frames += 1;
                bytes += f.len();
            }
            out.push(f);
        }
        q.counted = q.counted.saturating_sub(frames);
        q.bytes = q.bytes.saturating_sub(bytes);
        if !q.frames.is_empty() {
            // More to take: keep the writer awake.
            self.notify.notify_one();
        }
        q.close
    }

    /// Frees the buffer of an empty queue: an idle socket holds none (the next push
    /// allocates it again).
    pub fn release_if_empty(&self) {
        let mut q = self.lock();
        if q.frames.is_empty() {
            q.frames = VecDeque::new();
        }
    }

    /// Resolves once a push has overflowed the queue: what a writer blocked on a client that
    /// does not read waits for beside its write.
    pub async fn overflow(&self) {
        loop {
            self.ready().await;
            if self.overflowed() {
                return;
            }
        }
    }

    /// Whether the socket was told to close because it overflowed.
    pub fn overflowed(&self) -> bool {
        matches!(self.lock().close, Some((SLOW_CONSUMER, _)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Frame {
        Frame::text(s.as_bytes())
    }

    #[test]
    fn requested_frames_do_not_count_in_the_bound() {
        let q = OutQueue::new(2, 1 << 20);
        for _ in 0..10 {
            assert_eq!(q.push_requested(f("replayed")), Pushed::Queued);
        }
        assert_eq!(q.push(f("a")), Pushed::Queued);
        assert_eq!(q.push(f("b")), Pushed::Queued);
        assert_eq!(q.push(f("c")), Pushed::Overflow);
        assert!(q.overflowed());
    }

    #[test]
    fn taking_frees_only_what_was_counted() {
        let q = OutQueue::new(2, 1 << 20);
        q.push_requested(f("r"));
        assert_eq!(q.push(f("a")), Pushed::Queued);
        assert_eq!(q.push(f("b")), Pushed::Queued);
        let mut out = Vec::new();
        assert_eq!(q.take(2, &mut out), None);
        assert_eq!(out.len(), 2);
        // "r" and "a" went: one counted frame left, room for one more.
        assert_eq!(q.push(f("c")), Pushed::Queued);
        assert_eq!(q.push(f("d")), Pushed::Overflow);
    }
}

//! Sends and changes (edit, delete, react, unreact) not answered yet, by `client_msg_id`: each
//! kept as the frame first written, resent as it was (same id, so the server applies it once,
//! SPEC 5.3) after a reconnect or when the server asked to retry later, and resolved by its
//! `ack` or a final `error`.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use shared::protocol::{ClientFrame, ErrorCode};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::frames;

/// Wait before resending a send refused with `rate_limited` or `unavailable` that names no
/// `retry_after_ms`.
const DEFAULT_RETRY_AFTER_MS: u64 = 100;
/// Bounds on a server-named wait.
const RETRY_AFTER_MS: (u64, u64) = (1, 5000);

/// What an `error` frame did to the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not about a send waiting here: no `client_msg_id`, or one already resolved.
    Unrelated,
    /// `rate_limited` or `unavailable`: the send is resent with the same id once the server's
    /// `retry_after_ms` has passed.
    Retrying,
    /// Refused for good: the send is no longer pending.
    Refused,
}

#[derive(Debug, Clone)]
struct Pending {
    /// Order of the first write, so resends keep the order of the sends.
    order: u64,
    frame: Utf8Bytes,
}

/// The unacked sends of one client, kept across its sockets.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    pending: HashMap<String, Pending>,
    /// Sends to write again at a time, earliest first.
    retries: VecDeque<(Instant, String)>,
    written: u64,
}

impl Outbox {
    /// Records a send to `channel_id` under `client_msg_id`; returns the frame to write.
    pub fn push(&mut self, channel_id: i64, content: String, client_msg_id: String) -> Utf8Bytes {
        let frame = ClientFrame::Send {
            channel_id,
            content,
            client_msg_id: Some(client_msg_id.clone()),
            reply_to: None,
            attachments: Vec::new(),
        };
        self.push_frame(client_msg_id, &frame)
    }

    /// Records `frame` (a send or a change, carrying `client_msg_id`); returns its text.
    pub fn push_frame(&mut self, client_msg_id: String, frame: &ClientFrame) -> Utf8Bytes {
        let frame = frames::client_text(frame);
        self.written += 1;
        self.pending.insert(
            client_msg_id,
            Pending {
                order: self.written,
                frame: frame.clone(),
            },
        );
        frame
    }

    /// Sends waiting for their `ack`.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn contains(&self, client_msg_id: &str) -> bool {
        self.pending.contains_key(client_msg_id)
    }

    /// An `ack`: true when it resolved a pending send (false for a second ack of a send that
    /// was resent, or an id this client never sent).
    pub fn on_ack(&mut self, client_msg_id: Option<&str>) -> bool {
        client_msg_id.is_some_and(|id| self.pending.remove(id).is_some())
    }

    /// An `error` frame with `code`, about `client_msg_id` if it names one, received at `now`.
    pub fn on_error(
        &mut self,
        code: ErrorCode,
        client_msg_id: Option<&str>,
        retry_after_ms: Option<u64>,
        now: Instant,
    ) -> Refusal {
        let Some(id) = client_msg_id.filter(|id| self.pending.contains_key(*id)) else {
            return Refusal::Unrelated;
        };
        if matches!(code, ErrorCode::RateLimited | ErrorCode::Unavailable) {
            let (lo, hi) = RETRY_AFTER_MS;
            let wait = retry_after_ms
                .unwrap_or(DEFAULT_RETRY_AFTER_MS)
                .clamp(lo, hi);
            let at = now + Duration::from_millis(wait);
            let pos = self.retries.partition_point(|(t, _)| *t <= at);
            self.retries.insert(pos, (at, id.to_owned()));
            Refusal::Retrying
        } else {
            self.pending.remove(id);
            Refusal::Refused
        }
    }

    /// Every pending send in the order first written: what a new socket writes after `resume`.
    pub fn unacked(&self) -> Vec<Utf8Bytes> {
        let mut v: Vec<&Pending> = self.pending.values().collect();
        v.sort_unstable_by_key(|p| p.order);
        v.into_iter().map(|p| p.frame.clone()).collect()
    }

    /// When the earliest retry is due.
    pub fn next_retry(&self) -> Option<Instant> {
        self.retries.front().map(|(t, _)| *t)
    }

    /// The frames of the retries due by `now` whose send is still pending.
    pub fn take_due(&mut self, now: Instant) -> Vec<Utf8Bytes> {
        let mut due = Vec::new();
        while self.retries.front().is_some_and(|(t, _)| *t <= now) {
            let Some((_, id)) = self.retries.pop_front() else {
                break;
            };
            if let Some(p) = self.pending.get(&id) {
                due.push(p.frame.clone());
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use shared::protocol::{ClientFrame, ErrorCode};

    use super::{Outbox, Refusal};

    fn decode(f: &str) -> ClientFrame {
        serde_json::from_str(f).expect("a client frame")
    }

    #[test]
    fn an_ack_resolves_a_send_once() {
        let mut o = Outbox::default();
        let f = o.push(5, "hi".into(), "c-1".into());
        assert_eq!(
            decode(&f),
            ClientFrame::Send {
                channel_id: 5,
                content: "hi".into(),
                client_msg_id: Some("c-1".into()),
                reply_to: None,
                attachments: Vec::new(),
            }
        );
        assert_eq!((o.len(), o.contains("c-1")), (1, true));
        assert!(!o.on_ack(None));
        assert!(!o.on_ack(Some("c-2")));
        assert!(o.on_ack(Some("c-1")));
        assert!(!o.on_ack(Some("c-1")), "a second ack of a resent send");
        assert!(o.is_empty());
    }

    #[test]
    fn unacked_sends_are_resent_as_first_written_in_send_order() {
        let mut o = Outbox::default();
        let frames: Vec<_> = (0..20)
            .map(|i| o.push(1, format!("m{i}"), format!("c-{i}")))
            .collect();
        o.on_ack(Some("c-3"));
        let mut expect = frames;
        expect.remove(3);
        assert_eq!(o.unacked(), expect);
    }

    #[test]
    fn retryable_errors_resend_after_the_servers_wait_and_others_resolve_the_send() {
        let t0 = Instant::now();
        let mut o = Outbox::default();
        o.push(1, "a".into(), "a".into());
        let b = o.push(1, "b".into(), "b".into());
        o.push(1, "c".into(), "c".into());
        let rl = ErrorCode::RateLimited;
        assert_eq!(o.on_error(rl, Some("b"), Some(40), t0), Refusal::Retrying);
        assert_eq!(
            o.on_error(ErrorCode::Unavailable, Some("a"), None, t0),
            Refusal::Retrying
        );
        assert_eq!(
            o.on_error(ErrorCode::Validation, Some("c"), None, t0),
            Refusal::Refused
        );
        assert_eq!(o.on_error(rl, Some("c"), None, t0), Refusal::Unrelated);
        assert_eq!(o.on_error(rl, None, None, t0), Refusal::Unrelated);
        assert_eq!(o.len(), 2);
        assert_eq!(o.next_retry(), Some(t0 + Duration::from_millis(40)));
        assert!(o.take_due(t0 + Duration::from_millis(39)).is_empty());
        assert_eq!(o.take_due(t0 + Duration::from_millis(40)), vec![b]);
        // `a` waits the default 100 ms; acked meanwhile, it is not resent.
        assert_eq!(o.next_retry(), Some(t0 + Duration::from_millis(100)));
        o.on_ack(Some("a"));
        assert!(o.take_due(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(o.next_retry(), None);
        // A server-named wait is bounded.
        o.on_error(rl, Some("b"), Some(3_600_000), t0);
        assert_eq!(o.next_retry(), Some(t0 + Duration::from_secs(5)));
    }
}

//! Coalesced, paced `resume` reads: concurrent replays of one channel on this edge share one
//! PostgreSQL history read, and the edge runs only a few such reads at once, so a reconnect
//! storm (every socket of a dead edge resuming here) costs a few reads per channel instead of
//! one per socket.
//!
//! - A request joins its channel's next read, one that has not started yet: a read begins
//!   after every request it serves arrived, so it sees every message committed before each of
//!   them, as a read of its own would.
//! - A channel's reads start at least `spacing` apart: the first request of a quiet channel
//!   is read at once; those arriving within `spacing` of that read (a storm) wait for the
//!   next one and share it.
//! - A read holds one of `concurrency` permits (fewer than the PostgreSQL pool), so replays
//!   never take every connection from sends and gap fills; requests arriving while a read
//!   waits for its permit join it.
//! - A read starts from the smallest `after` of its requests and asks for enough rows that
//!   each request gets its full slice ([`slice_of`]); requests whose `after`s lie more than
//!   `RESUME_MAX` apart are split into separate reads ([`plan`]), so no read asks for more
//!   than `2 * RESUME_MAX + 1` rows.
//! - Rows are framed once and shared (`Arc`) by every request's slice.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shared::chat::{Chat, ChatError};
use tokio::sync::{oneshot, Semaphore};
use tokio::time::Instant;

use crate::channel::{encode, Slice};
use crate::metrics::EdgeMetrics;
use crate::socket::lock;
use crate::wire::Frame;

/// One request waiting for its channel's next read.
struct Request {
    after: i64,
    reply: oneshot::Sender<Result<Slice, ChatError>>,
}

/// The edge's coalescer of replay reads.
pub struct Replays {
    chat: Chat,
    metrics: EdgeMetrics,
    permits: Semaphore,
    spacing: Duration,
    /// Per channel with a driver: the requests for its next read.
    waiting: Mutex<HashMap<i64, Vec<Request>>>,
}

impl std::fmt::Debug for Replays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replays")
            .field("spacing", &self.spacing)
            .finish_non_exhaustive()
    }
}

impl Replays {
    /// At most `concurrency` reads at once (at least 1); a channel's reads `spacing` apart.
    pub fn new(chat: Chat, metrics: EdgeMetrics, concurrency: usize, spacing: Duration) -> Self {
        Replays {
            chat,
            metrics,
            permits: Semaphore::new(concurrency.max(1)),
            spacing,
            waiting: Mutex::new(HashMap::new()),
        }
    }

    /// The messages of `channel_id` after `after` (at most `RESUME_MAX`), from the channel's
    /// next read. The caller has checked membership.
    pub async fn replay(self: &Arc<Self>, channel_id: i64, after: i64) -> Result<Slice, ChatError> {
        Chat::check_resume_seq(after)?;
        self.metrics.resume_requests.increment(1);
        let (reply, answer) = oneshot::channel();
        let first = match lock(&self.waiting).entry(channel_id) {
            Entry::Occupied(mut e) => {
                e.get_mut().push(Request { after, reply });
                false
            }
            Entry::Vacant(e) => {
                e.insert(vec![Request { after, reply }]);
                true
            }
        };
        if first {
            tokio::spawn(self.clone().drive(channel_id));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(ChatError::Unexpected(anyhow::anyhow!("replay read lost"))))
    }

    /// Serves a channel's requests, one read after another, until none came for `spacing`.
    async fn drive(self: Arc<Self>, channel_id: i64) {
        loop {
            {
                let mut waiting = lock(&self.waiting);
                if waiting.get(&channel_id).is_none_or(Vec::is_empty) {
                    waiting.remove(&channel_id);
                    return;
                }
            }
            // Never closed; requests keep joining while the read waits for its permit.
            let permit = self.permits.acquire().await.ok();
            let started = Instant::now();
            let batch = lock(&self.waiting)
                .get_mut(&channel_id)
                .map(std::mem::take)
                .unwrap_or_default();
            self.serve(channel_id, batch).await;
            drop(permit);
            tokio::time::sleep_until(started + self.spacing).await;
        }
    }

    /// Reads what `batch` needs (one read per [`plan`] group) and answers every request.
    async fn serve(&self, channel_id: i64, mut batch: Vec<Request>) {
        let max = self.chat.limits().resume_max.max(1);
        batch.sort_by_key(|r| r.after);
        while !batch.is_empty() {
            let afters: Vec<i64> = batch.iter().map(|r| r.after).collect();
            let Some(read) = plan(&afters, max).into_iter().next() else {
                return;
            };
            let group: Vec<Request> = batch.drain(..read.requests).collect();
            self.metrics.history_reads.increment(1);
            let rows = match self
                .chat
                .replay_rows(channel_id, read.from, read.limit)
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    for r in group {
                        let _ = r.reply.send(Err(copy_error(&e)));
                    }
                    continue;
                }
            };
            let complete = (rows.len() as i64) < read.limit;
            let rows: Arc<[(i64, Frame)]> = rows.into_iter().map(encode).collect();
            let mut short = Vec::new();
            for r in group {
                match slice_of(&rows, |x| x.0, r.after, max as usize, complete) {
                    Some((range, truncated)) => {
                        let slice = Slice::new(rows.clone(), range, truncated);
                        let _ = r.reply.send(Ok(slice));
                    }
                    // Cannot happen with `plan`'s limits; read again from its own `after`
                    // (the afters left in `batch` are all larger, so the order holds).
                    None => short.push(r),
                }
            }
            batch.splice(..0, short);
        }
    }
}

/// A read error for each request of a shared read (`ChatError` is not `Clone`).
fn copy_error(e: &ChatError) -> ChatError {
    match e {
        ChatError::Unavailable(x) => ChatError::Unavailable(anyhow::anyhow!("{x:#}")),
        other => ChatError::Unexpected(anyhow::anyhow!("{other:#}")),
    }
}

/// One read of a batch: from the first request's `after`, `limit` rows, serving the first
/// `requests` requests (sorted by `after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Read {
    from: i64,
    limit: i64,
    requests: usize,
}

/// Splits requests with ascending `afters` into reads: each from its first `after`, taking
/// the next ones no more than `max` above it, asking for `max + 1 + (last - first)` rows.
/// At most `last - first` rows can lie in `(first, last]` (seqs are distinct integers), so
/// every request of the read finds `max + 1` rows above its own `after` or the read ends
/// before its limit: [`slice_of`] can answer it exactly.
fn plan(afters: &[i64], max: i64) -> Vec<Read> {
    let mut reads = Vec::new();
    let mut i = 0;
    while let Some(&from) = afters.get(i) {
        let n = afters[i..].partition_point(|&a| a.saturating_sub(from) <= max);
        let last = afters[i + n - 1];
        reads.push(Read {
            from,
            limit: max + 1 + (last - from),
            requests: n,
        });
        i += n;
    }
    reads
}

/// What a request with `after` gets of a read's `rows` (ascending by `seq`): the range of at
/// most `max` rows after it, and whether more were missed (a row beyond them exists).
/// `complete`: the read returned every row there was. `None`: the read stopped too early to
/// tell (it needs a read of its own).
fn slice_of<T>(
    rows: &[T],
    seq: impl Fn(&T) -> i64,
    after: i64,
    max: usize,
    complete: bool,
) -> Option<(Range<usize>, bool)> {
    let start = rows.partition_point(|r| seq(r) <= after);
    let available = rows.len() - start;
    if available > max {
        Some((start..start + max, true))
    } else if complete {
        Some((start..rows.len(), false))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows `from+1..=to` minus `holes`, as a read would return them.
    fn rows(from: i64, to: i64, holes: &[i64]) -> Vec<i64> {
        (from + 1..=to).filter(|s| !holes.contains(s)).collect()
    }

    /// What a request gets from a shared read planned by `plan`, against the table of `all`
    /// the channel holds: the read returns at most `limit` rows after `from`.
    fn served(all: &[i64], afters: &[i64], max: i64) -> Vec<(Vec<i64>, bool)> {
        let mut out = Vec::new();
        let mut i = 0;
        for read in plan(afters, max) {
            let got: Vec<i64> = all
                .iter()
                .copied()
                .filter(|&s| s > read.from)
                .take(read.limit as usize)
                .collect();
            let complete = (got.len() as i64) < read.limit;
            for &after in &afters[i..i + read.requests] {
                let (range, truncated) =
                    slice_of(&got, |s| *s, after, max as usize, complete).expect("served");
                out.push((got[range].to_vec(), truncated));
            }
            i += read.requests;
        }
        out
    }

    /// What a read of its own gives: the first `max` after `after`, truncated if more exist.
    fn alone(all: &[i64], after: i64, max: i64) -> (Vec<i64>, bool) {
        let above: Vec<i64> = all.iter().copied().filter(|&s| s > after).collect();
        let truncated = above.len() as i64 > max;
        (above.into_iter().take(max as usize).collect(), truncated)
    }

    #[test]
    fn every_request_gets_what_a_read_of_its_own_gives() {
        let max = 5;
        let tables = [
            rows(0, 0, &[]),
            rows(0, 3, &[]),
            rows(0, 5, &[]),
            rows(0, 6, &[]),
            rows(0, 40, &[]),
            rows(0, 40, &[2, 3, 4, 11, 12, 30]),
            rows(10, 17, &[]),
        ];
        let batches: [&[i64]; 8] = [
            &[0],
            &[0, 0, 0],
            &[0, 1, 2, 3, 4, 5, 6, 7],
            &[0, 5, 10],
            &[0, 12, 13, 39],
            &[3, 4, 40, 41, 100],
            &[0, 6, 11, 17, 23, 29, 35],
            &[1, 2, 2, 8, 8, 9],
        ];
        for all in &tables {
            for afters in batches {
                let got = served(all, afters, max);
                for (k, &after) in afters.iter().enumerate() {
                    assert_eq!(
                        got[k],
                        alone(all, after, max),
                        "table {all:?}, batch {afters:?}, after {after}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_read_capped_at_resume_max_from_the_smallest_after_would_under_serve() {
        // The trap the limit avoids: 1..=20 stored, requests after 0 and after 4, max 5.
        let all = rows(0, 20, &[]);
        let naive: Vec<i64> = all.iter().copied().take(6).collect();
        // A 6-row read from 0 holds only 5 and 6 after 4, and cannot tell what follows.
        assert_eq!(slice_of(&naive, |s| *s, 4, 5, false), None);
        let planned = plan(&[0, 4], 5);
        assert_eq!(
            planned,
            vec![Read {
                from: 0,
                limit: 10,
                requests: 2
            }]
        );
        let got = served(&all, &[0, 4], 5);
        assert_eq!(got[0], (vec![1, 2, 3, 4, 5], true));
        assert_eq!(got[1], (vec![5, 6, 7, 8, 9], true));
    }

    #[test]
    fn exactly_max_missed_is_not_truncated() {
        let all = rows(0, 10, &[]);
        assert_eq!(served(&all, &[5], 5)[0], (vec![6, 7, 8, 9, 10], false));
        assert_eq!(served(&all, &[4], 5)[0], (vec![5, 6, 7, 8, 9], true));
        assert_eq!(served(&all, &[10, 12], 5), vec![(vec![], false); 2]);
    }

    #[test]
    fn afters_far_apart_get_separate_bounded_reads() {
        let reads = plan(&[0, 3, 5, 6, 1_000, 1_000_000], 5);
        assert_eq!(
            reads,
            vec![
                Read {
                    from: 0,
                    limit: 11,
                    requests: 3
                },
                Read {
                    from: 6,
                    limit: 6,
                    requests: 1
                },
                Read {
                    from: 1_000,
                    limit: 6,
                    requests: 1
                },
                Read {
                    from: 1_000_000,
                    limit: 6,
                    requests: 1
                },
            ]
        );
        assert!(plan(&[0, 5, 5, 5], 5).iter().all(|r| r.limit <= 2 * 5 + 1));
        assert!(plan(&[], 5).is_empty());
    }

    #[test]
    fn a_short_read_is_reported_not_guessed() {
        // A read that stopped at its limit cannot tell whether a request above it is complete.
        let got = rows(0, 6, &[]);
        assert_eq!(slice_of(&got, |s| *s, 3, 5, false), None);
        assert_eq!(slice_of(&got, |s| *s, 3, 5, true), Some((3..6, false)));
        assert_eq!(slice_of(&got, |s| *s, 0, 5, false), Some((0..5, true)));
    }
}

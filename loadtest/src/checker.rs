//! The history check of `--check-db`: after the run, every seq the load test saw acked is
//! looked up in PostgreSQL itself (a message, or a change in the channel's event log), so a
//! send the servers acked and then lost is counted, whatever they report.

use anyhow::Context;
use serde::Serialize;

use crate::accounting::{Acked, Tally};

/// The four figures a chaos run must keep at zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct History {
    /// Acked (channel, seq) with neither a message nor an event row in PostgreSQL.
    pub acked_not_stored: u64,
    /// Per socket and channel: acked seqs after its start that never arrived.
    pub gaps: u64,
    /// An event delivered twice to one socket.
    pub duplicates: u64,
    /// Events delivered out of seq order.
    pub out_of_order: u64,
}

impl History {
    pub fn clean(&self) -> bool {
        *self == History::default()
    }
}

/// Checks every acked seq against the database at `url`; the delivery figures come from the
/// sockets' own records (`tally`).
pub async fn check(url: &str, acked: &Acked, tally: &Tally) -> anyhow::Result<History> {
    let db = shared::store::migrate::connect(url).await?;
    let q = db
        .prepare(
            "SELECT count(*) FROM (
                 SELECT seq FROM messages WHERE channel_id = $1 AND seq = ANY($2)
                 UNION
                 SELECT seq FROM channel_events WHERE channel_id = $1 AND seq = ANY($2)) s",
        )
        .await
        .context("prepare the history check")?;
    let mut missing = 0;
    for (channel, seqs) in &acked.channels {
        let want: Vec<i64> = seqs.iter().map(|i| i as i64 + 1).collect();
        let row = db
            .query_one(&q, &[channel, &want])
            .await
            .with_context(|| format!("read channel {channel}"))?;
        let found: i64 = row.get(0);
        missing += want.len() as u64 - (found.max(0) as u64).min(want.len() as u64);
    }
    Ok(History {
        acked_not_stored: missing,
        gaps: tally.lost,
        duplicates: tally.duplicated,
        out_of_order: tally.out_of_order,
    })
}

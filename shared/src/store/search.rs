//! Full-text search of messages (migration 0007): `websearch_to_tsquery` against the generated
//! `messages.search`, scoped to a user's channels, ranked then newest first, with a snippet
//! of each hit and a `(rank, id)` cursor.

use super::messages::{message, MESSAGE_COLS};
use super::{Store, StoreError};
use crate::protocol::Message;

/// Marks `ts_headline` puts around a matched word: private-use characters, removed from the
/// content beforehand, so a transport can turn them into tags of its own.
pub const MARK_START: char = '\u{E000}';
pub const MARK_END: char = '\u{E001}';

/// One search hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub message: Message,
    /// `ts_rank` of the message for the query (a `real`, compared exactly by the cursor).
    pub rank: f32,
    /// The matching part of the content, HTML-escaped (`&`, `<`, `>`: escaped before
    /// `ts_headline`, whose parser would drop what looks like a tag), each matched word
    /// between [`MARK_START`] and [`MARK_END`].
    pub snippet: String,
}

/// Where a page of hits starts: below this `(rank, id)`, in `rank DESC, id DESC` order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchCursor {
    pub rank: f32,
    pub id: i64,
}

impl SearchCursor {
    /// The opaque text of the cursor: 24 hex digits.
    pub fn encode(&self) -> String {
        format!("{:08x}{:016x}", self.rank.to_bits(), self.id as u64)
    }

    /// Reads [`SearchCursor::encode`]'s text back; `None` for anything else.
    pub fn decode(s: &str) -> Option<Self> {
        if s.len() != 24 || !s.is_ascii() {
            return None;
        }
        let rank = f32::from_bits(u32::from_str_radix(&s[..8], 16).ok()?);
        let id = u64::from_str_radix(&s[8..], 16).ok()? as i64;
        rank.is_finite().then_some(SearchCursor { rank, id })
    }
}

impl Store {
    /// The text search configuration `messages.search` is generated with (migration 0007),
    /// and `language` as PostgreSQL names it (an error if it names no configuration).
    pub async fn search_languages(&self, language: &str) -> Result<(String, String), StoreError> {
        let c = self.client().await?;
        let r = c
            .query_one(
                "SELECT coalesce(search_language(), ''), $1::text::regconfig::text",
                &[&language],
            )
            .await?;
        Ok((r.get(0), r.get(1)))
    }

    /// Up to `limit` messages of `user`'s channels (only `channel`, if given) that match the
    /// web-search-syntax `query` under the configuration `language`, best rank first, then
    /// newest; only those below `after` in that order.
    pub async fn search(
        &self,
        user: i64,
        channel: Option<i64>,
        language: &str,
        query: &str,
        after: Option<SearchCursor>,
        limit: i64,
    ) -> Result<Vec<Hit>, StoreError> {
        let c = self.client().await?;
        let after = after.unwrap_or(SearchCursor {
            rank: f32::INFINITY,
            id: i64::MAX,
        });
        // The channels are read first (an init plan), so the scan of `messages` gets their
        // ids as one array: one GIN probe of (channel, words) per channel.
        let q = c
            .prepare_cached(&format!(
                "WITH q AS (SELECT websearch_to_tsquery($1::text::regconfig, $2) AS q)
                 SELECT {MESSAGE_COLS}, h.rank AS hit_rank,
                        ts_headline($1::text::regconfig,
                                    replace(replace(replace(translate(m.content, $7, ''),
                                        '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),
                                    q.q, $8) AS hit_snippet
                   FROM (SELECT s.channel_id, s.seq, s.id, s.rank
                           FROM (SELECT m.channel_id, m.seq, m.id, ts_rank(m.search, q.q) AS rank
                                   FROM messages m, q
                                  WHERE m.channel_id = ANY (ARRAY(
                                            SELECT cm.channel_id FROM channel_members cm
                                             WHERE cm.user_id = $3
                                               AND (cm.channel_id = $4 OR $4 IS NULL)))
                                    AND m.search @@ q.q
                                 -- (a fence: the rank is computed once per match)
                                 OFFSET 0) s
                          WHERE (s.rank, s.id) < ($5::real, $6)
                          ORDER BY s.rank DESC, s.id DESC
                          LIMIT $9) h
                   JOIN messages m ON m.channel_id = h.channel_id AND m.seq = h.seq
                   JOIN users u ON u.id = m.sender_id
                   CROSS JOIN q
                  ORDER BY h.rank DESC, h.id DESC"
            ))
            .await?;
        let marks: String = [MARK_START, MARK_END].iter().collect();
        let options =
            format!("StartSel=\"{MARK_START}\", StopSel=\"{MARK_END}\", MaxWords=30, MinWords=12");
        let rows = c
            .query(
                &q,
                &[
                    &language,
                    &query,
                    &user,
                    &channel,
                    &after.rank,
                    &after.id,
                    &marks,
                    &options,
                    &limit,
                ],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Hit {
                message: message(r),
                rank: r.get("hit_rank"),
                snippet: r.get("hit_snippet"),
            })
            .collect())
    }
}

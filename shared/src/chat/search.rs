//! Searching the messages of one's channels: the query checked, the scope (one channel, or
//! every channel of the caller) enforced, a page of ranked hits with their snippets and the
//! cursor of the next page.

use super::{Chat, ChatError};
use crate::store::{Hit, SearchCursor};

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 256;

/// A search as a client asks for it.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// Web-search syntax: words (all must match), `"a phrase"`, `or`, `-word`.
    pub query: String,
    /// Only this channel (the caller must be a member); otherwise all of the caller's.
    pub channel_id: Option<i64>,
    /// The `next` of the previous page.
    pub before: Option<String>,
    pub limit: Option<i64>,
}

/// A page of hits, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    pub hits: Vec<Hit>,
    /// The opaque cursor to pass as `before` for the next page, or `None` at the end.
    pub next: Option<String>,
}

impl Chat {
    /// Messages of `user`'s channels matching the query under the text search configuration
    /// `language`, ranked then newest first. Only messages in their current state are found:
    /// an edited one by its new text only, a deleted one never.
    pub async fn search(
        &self,
        user: i64,
        language: &str,
        req: SearchRequest,
    ) -> Result<SearchPage, ChatError> {
        let query = req.query.trim();
        if query.is_empty() {
            return Err(ChatError::Validation("q must not be empty".into()));
        }
        if query.chars().count() > MAX_QUERY_CHARS {
            return Err(ChatError::Validation(format!(
                "q must be at most {MAX_QUERY_CHARS} characters"
            )));
        }
        let after = req
            .before
            .as_deref()
            .map(|b| {
                SearchCursor::decode(b).ok_or_else(|| {
                    ChatError::Validation("before must be the `next` of a search page".into())
                })
            })
            .transpose()?;
        let limit = self.page_limit(req.limit)?;
        if let Some(channel) = req.channel_id {
            self.require_member(channel, user).await?;
        }
        let mut hits = self
            .store()
            .search(user, req.channel_id, language, query, after, limit + 1)
            .await?;
        let more = hits.len() as i64 > limit;
        hits.truncate(limit.max(0) as usize);
        let next = more.then(|| hits.last()).flatten().map(|h| {
            SearchCursor {
                rank: h.rank,
                id: h.message.id,
            }
            .encode()
        });
        Ok(SearchPage { hits, next })
    }
}

//! `GET /api/search`: full-text search of the caller's channels, an adapter over
//! `shared::chat`'s search, each snippet rendered as HTML-escaped text with `<mark>` tags.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use shared::chat::SearchRequest;
use shared::store::{MARK_END, MARK_START};
use shared::Message;

use crate::error::ApiError;
use crate::extract::{AuthUser, Json, Query};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    q: String,
    channel_id: Option<i64>,
    before: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct SearchHit {
    message: Message,
    /// The matching part of the content, HTML-escaped, each matched word in `<mark>`...`</mark>`.
    snippet: String,
    rank: f32,
}

#[derive(Debug, Serialize)]
pub struct SearchResults {
    results: Vec<SearchHit>,
    /// Opaque: pass as `before` for the next page; `null` at the end.
    next: Option<String>,
}

/// `GET /api/search?q=&channel_id=&before=&limit=`: best match first, then newest.
pub async fn search(
    State(s): State<AppState>,
    me: AuthUser,
    Query(q): Query<SearchQuery>,
) -> Result<Json<SearchResults>, ApiError> {
    let req = SearchRequest {
        query: q.q,
        channel_id: q.channel_id,
        before: q.before,
        limit: q.limit,
    };
    let page = s.chat.search(me.id, &s.search_language, req).await?;
    Ok(Json(SearchResults {
        results: page
            .hits
            .into_iter()
            .map(|h| SearchHit {
                snippet: snippet_html(&h.snippet),
                message: h.message,
                rank: h.rank,
            })
            .collect(),
        next: page.next,
    }))
}

/// The store's snippet (HTML-escaped text) with its marks turned into `<mark>` tags.
fn snippet_html(s: &str) -> String {
    s.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_become_tags() {
        let s = format!("a &lt;b&gt; {MARK_START}word{MARK_END} c");
        assert_eq!(snippet_html(&s), "a &lt;b&gt; <mark>word</mark> c");
    }
}

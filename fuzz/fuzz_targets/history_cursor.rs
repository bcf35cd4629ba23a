//! Fuzz target: the history cursor query (`?before=SEQ&after=SEQ&limit=N`), parsed exactly as
//! the route does (axum's `Query` into `api_server::HistoryQuery`). Any query either parses,
//! and the cursors written back parse to the same, or is refused; it never panics.
#![no_main]

use api_server::HistoryQuery;
use axum::extract::Query;
use axum::http::Uri;
use libfuzzer_sys::fuzz_target;

fn parse(query: &str) -> Option<HistoryQuery> {
    let uri: Uri = format!("/api/channels/1/messages?{query}").parse().ok()?;
    Query::<HistoryQuery>::try_from_uri(&uri)
        .ok()
        .map(|Query(q)| q)
}

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let Some(q) = parse(query) else {
        return;
    };
    let mut pairs = Vec::new();
    for (k, v) in [("before", q.before), ("after", q.after), ("limit", q.limit)] {
        if let Some(v) = v {
            pairs.push(format!("{k}={v}"));
        }
    }
    let back = parse(&pairs.join("&")).expect("written cursors parse");
    assert_eq!(
        (back.before, back.after, back.limit),
        (q.before, q.after, q.limit),
        "{query:?}"
    );
});

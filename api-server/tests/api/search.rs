//! Message search: scoped to the caller's channels, current content only (edits re-index,
//! deletes vanish), ranked then newest first with a stable cursor, escaped snippets, and a
//! server that refuses a search language its index is not built with.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{test_config, Resp, TestApp};

async fn search(app: &TestApp, token: &str, query: &str) -> Resp {
    app.get(&format!("/api/search?{query}"), Some(token)).await
}

/// `(channel_id, content)` of each result, in order.
fn found(r: &Resp) -> Vec<(i64, String)> {
    assert_eq!(r.status, 200, "{r:?}");
    r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["message"]["channel_id"].as_i64().unwrap(),
                h["message"]["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn search_never_finds_a_channel_the_caller_is_not_in() {
    let app = TestApp::spawn().await;
    let (_, at) = app.user("alice").await;
    let (_, bt) = app.user("bob").await;
    let mine = app.channel(&at, "alice-only").await;
    let theirs = app.channel(&bt, "bob-only").await;
    let shared = app.channel(&at, "both").await;
    assert_eq!(app.join(&bt, shared).await.status, 200);
    app.say(&at, mine, "zebra in mine").await;
    app.say(&bt, theirs, "zebra in theirs").await;
    app.say(&bt, shared, "zebra in shared").await;

    let mut got = found(&search(&app, &at, "q=zebra").await);
    got.sort();
    assert_eq!(
        got,
        vec![
            (mine, "zebra in mine".to_owned()),
            (shared, "zebra in shared".to_owned())
        ]
    );
    let got = found(&search(&app, &at, &format!("q=zebra&channel_id={shared}")).await);
    assert_eq!(got, vec![(shared, "zebra in shared".to_owned())]);
    // Naming a channel one is not in: 403, not its messages; no such channel: 404.
    let r = search(&app, &at, &format!("q=zebra&channel_id={theirs}")).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{r:?}");
    let r = search(&app, &at, "q=zebra&channel_id=999999").await;
    assert_eq!((r.status, r.code()), (404, "not_found"), "{r:?}");
    // Leaving a channel takes its messages out of one's results.
    assert_eq!(app.leave(&at, shared).await.status, 204);
    let got = found(&search(&app, &at, "q=zebra").await);
    assert_eq!(got, vec![(mine, "zebra in mine".to_owned())]);
    // Without a token: 401.
    let r = app.get("/api/search?q=zebra", None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn edits_reindex_and_deleted_messages_vanish() {
    let app = TestApp::spawn().await;
    let (_, at) = app.user("alice").await;
    let c = app.channel(&at, "general").await;
    let m = app.say(&at, c, "the old wording").await;
    let path = format!("/api/channels/{c}/messages/{}", m["id"].as_str().unwrap());
    assert_eq!(found(&search(&app, &at, "q=wording").await).len(), 1);

    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&at),
            Some(json!({"content": "a fresh phrasing"})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(found(&search(&app, &at, "q=wording").await), vec![]);
    assert_eq!(
        found(&search(&app, &at, "q=fresh").await),
        vec![(c, "a fresh phrasing".to_owned())]
    );

    let r = app.call(Method::DELETE, &path, Some(&at), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(found(&search(&app, &at, "q=fresh").await), vec![]);
    assert_eq!(found(&search(&app, &at, "q=phrasing").await), vec![]);
}

#[tokio::test]
async fn pages_follow_rank_then_newest_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let (_, at) = app.user("alice").await;
    let c = app.channel(&at, "general").await;
    let d = app.channel(&at, "random").await;
    // Three messages say "apple" three times (a higher rank), five once, in two channels;
    // one does not say it at all.
    let mut strong = Vec::new();
    let mut weak = Vec::new();
    for i in 0..8 {
        let ch = if i % 2 == 0 { c } else { d };
        if i % 3 == 0 {
            strong.push(app.say(&at, ch, &format!("apple apple apple {i}")).await);
        } else {
            weak.push(app.say(&at, ch, &format!("one apple and pears {i}")).await);
        }
    }
    app.say(&at, c, "only pears here").await;
    // Best rank first, each rank newest first.
    let ids = |v: &[Value]| -> Vec<String> {
        v.iter()
            .rev()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let expected: Vec<String> = ids(&strong).into_iter().chain(ids(&weak)).collect();

    let mut got = Vec::new();
    let mut before: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = "q=apple&limit=3".to_owned();
        if let Some(b) = &before {
            q.push_str(&format!("&before={b}"));
        }
        let r = search(&app, &at, &q).await;
        assert_eq!(r.status, 200, "{r:?}");
        let results = r.body["results"].as_array().unwrap();
        assert!(results.len() <= 3);
        got.extend(
            results
                .iter()
                .map(|h| h["message"]["id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        match r.body["next"].as_str() {
            Some(n) => before = Some(n.to_owned()),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(got, expected);
    assert_eq!(pages, 3);

    // A garbled cursor and an empty query are refused.
    let r = search(&app, &at, "q=apple&before=nonsense").await;
    assert_eq!((r.status, r.code()), (400, "validation"), "{r:?}");
    let r = search(&app, &at, "q=%20%20").await;
    assert_eq!((r.status, r.code()), (400, "validation"), "{r:?}");
    let r = app.get("/api/search", Some(&at)).await;
    assert_eq!(r.status, 400, "{r:?}");
}

#[tokio::test]
async fn phrases_and_exclusions_follow_web_search_syntax_and_snippets_are_escaped() {
    let app = TestApp::spawn().await;
    let (_, at) = app.user("alice").await;
    let c = app.channel(&at, "general").await;
    app.say(
        &at,
        c,
        "<script>alert(1)</script> the red balloon & \u{E000}",
    )
    .await;
    app.say(&at, c, "a balloon that is red").await;
    app.say(&at, c, "green balloon").await;

    let got = found(&search(&app, &at, "q=%22red%20balloon%22").await);
    assert_eq!(
        got,
        vec![(
            c,
            "<script>alert(1)</script> the red balloon & \u{E000}".to_owned()
        )]
    );
    let mut got = found(&search(&app, &at, "q=balloon%20red").await);
    got.sort();
    assert_eq!(got.len(), 2, "{got:?}");
    let got = found(&search(&app, &at, "q=balloon%20-red").await);
    assert_eq!(got, vec![(c, "green balloon".to_owned())]);

    let r = search(&app, &at, "q=%22red%20balloon%22").await;
    let snippet = r.body["results"][0]["snippet"].as_str().unwrap();
    assert_eq!(
        snippet,
        "&lt;script&gt;alert(1)&lt;/script&gt; the <mark>red</mark> <mark>balloon</mark> &amp; "
    );
}

#[tokio::test]
async fn a_search_language_the_index_is_not_built_with_is_refused_at_start() {
    let mut config = test_config().await;
    config.search_language = "english".to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let err = api_server::run(config, listener, token)
        .await
        .expect_err("a mismatched search language must not start");
    assert!(
        format!("{err:#}").contains("set_search_language('english')"),
        "{err:#}"
    );
}

//! Attachments: uploads sniffed (never trusted), capped (413, nothing stored), never left half
//! stored when the client goes away; downloads to members only, as downloads that cannot run
//! as our pages; sends that carry them, and only their sender's files of their channel. The
//! store's tests run twice: on a local directory and on an S3 bucket (a real moto server).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use api_server::files::Files;
use bytes::Bytes;
use shared::ServerFrame;

use crate::pubsub::Sub;
use crate::support::{test_config, Resp, TestApp};

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

/// Where a test's attachments go.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Local,
    S3,
}

/// A test's store, read as it is, not through the server.
enum Backend {
    Local(PathBuf),
    S3(String),
}

impl Backend {
    /// Stored objects (a local directory's staging files included).
    fn stored(&self) -> Vec<String> {
        match self {
            Backend::Local(dir) => files(dir).iter().map(|p| p.display().to_string()).collect(),
            Backend::S3(bucket) => testkit::s3().keys(bucket).unwrap(),
        }
    }

    /// Uploads under way: a directory's staging files, a bucket's unfinished multipart uploads.
    fn in_flight(&self) -> Vec<String> {
        match self {
            Backend::Local(_) => self.stored(),
            Backend::S3(bucket) => testkit::s3().unfinished_uploads(bucket).unwrap(),
        }
    }

    /// Waits up to 5 s for the store to hold nothing, finished or not (a dropped upload is
    /// aborted in the background); what it still holds.
    async fn until_empty(&self) -> Vec<String> {
        for _ in 0..50 {
            if self.stored().is_empty() && self.in_flight().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut left = self.stored();
        left.extend(self.in_flight());
        left
    }
}

/// The server, its store and its database URL.
async fn spawn(kind: Kind, max_bytes: Option<u64>) -> (TestApp, Backend, String) {
    let mut c = test_config().await;
    if let Some(m) = max_bytes {
        c.attachment_max_bytes = m;
    }
    let backend = match kind {
        Kind::Local => Backend::Local(c.data_dir.join("attachments")),
        Kind::S3 => {
            let s3 = testkit::s3();
            let bucket = s3.bucket().unwrap();
            c.attachment_store = Some(format!("s3://{bucket}/files"));
            c.attachment_store_options = s3.options();
            Backend::S3(bucket)
        }
    };
    let db = c.database_url.clone();
    (TestApp::start(c).await, backend, db)
}

async fn upload(
    app: &TestApp,
    token: &str,
    channel: i64,
    name: &str,
    ctype: &str,
    body: &[u8],
) -> Resp {
    let path = format!("/api/channels/{channel}/attachments?name={name}");
    app.raw(&path, Some(token), ctype, body.to_vec()).await
}

/// Files under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

async fn rows(db: &str) -> i64 {
    let c = shared::store::migrate::connect(db).await.unwrap();
    c.query_one("SELECT count(*) FROM attachments", &[])
        .await
        .unwrap()
        .get(0)
}

/// Sends raw bytes over HTTP/1.1 and returns the status (0: the connection closed first).
async fn raw_http(base: &str, head: &str, body: &[u8]) -> u16 {
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let _ = s.write_all(body).await;
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn types_are_sniffed_and_downloads_are_for_members_only() {
    sniffed_and_members_only(Kind::Local).await;
}

#[tokio::test]
async fn types_are_sniffed_and_downloads_are_for_members_only_in_a_bucket() {
    sniffed_and_members_only(Kind::S3).await;
}

async fn sniffed_and_members_only(kind: Kind) {
    let (app, store, _) = spawn(kind, None).await;
    let (_, at) = app.user("alice").await;
    let (_, bt) = app.user("bob").await;
    let c = app.channel(&at, "general").await;

    // A PNG that claims to be HTML is a PNG; HTML that claims to be a PNG is plain text.
    let r = upload(&app, &at, c, "pic.html", "text/html", PNG).await;
    assert_eq!(r.status, 201, "{r:?}");
    let png = r.body.clone();
    assert_eq!(
        (
            png["name"].as_str(),
            png["size"].as_i64(),
            png["content_type"].as_str()
        ),
        (Some("pic.html"), Some(PNG.len() as i64), Some("image/png"))
    );
    let id = png["id"].as_str().unwrap();
    assert_eq!(png["url"], format!("/api/attachments/{id}"));
    let html = b"<html><script>alert(document.cookie)</script></html>";
    let r = upload(&app, &at, c, "x.png", "image/png", html).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["content_type"], "text/plain; charset=utf-8");
    let html_url = r.body["url"].as_str().unwrap().to_owned();
    assert_eq!(store.stored().len(), 2, "{:?}", store.stored());

    let get = |url: String, token: Option<String>| {
        let http = app.http.clone();
        let base = app.base.clone();
        async move {
            let mut req = http.get(format!("{base}{url}"));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send().await.unwrap()
        }
    };
    let r = get(png["url"].as_str().unwrap().to_owned(), Some(at.clone())).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "sandbox; default-src 'none'");
    assert_eq!(
        h["content-disposition"],
        "inline; filename=\"pic.html\"; filename*=UTF-8''pic.html"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);
    let r = get(html_url.clone(), Some(at.clone())).await;
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    assert_eq!(r.bytes().await.unwrap().as_ref(), html);

    // Not a member: 403, and nothing of the file. No token: 401. No such id: 404.
    let r = get(html_url.clone(), Some(bt.clone())).await;
    assert_eq!(r.status(), 403);
    assert!(!r.text().await.unwrap().contains("script"));
    assert_eq!(get(html_url.clone(), None).await.status(), 401);
    assert_eq!(
        get("/api/attachments/nope".into(), Some(at.clone()))
            .await
            .status(),
        404
    );
    // Nor may a non-member upload to the channel.
    let r = upload(&app, &bt, c, "b.txt", "text/plain", b"hello").await;
    assert_eq!(r.status, 403, "{r:?}");
    // Once a member, the download works.
    assert_eq!(app.join(&bt, c).await.status, 200);
    assert_eq!(get(html_url, Some(bt)).await.status(), 200);
}

#[tokio::test]
async fn a_send_carries_its_senders_attachments_of_its_channel_only() {
    let (app, _, _) = spawn(Kind::Local, None).await;
    let (_, at) = app.user("alice").await;
    let (_, bt) = app.user("bob").await;
    let c = app.channel(&at, "general").await;
    let other = app.channel(&at, "other").await;
    assert_eq!(app.join(&bt, c).await.status, 200);

    // A multipart form: the first file field is the file.
    let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nignored\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"report.pdf\"\r\n\
Content-Type: image/gif\r\n\r\n%PDF-1.7\nbody\r\n--XyZ--\r\n";
    let r = app
        .raw(
            &format!("/api/channels/{c}/attachments"),
            Some(&at),
            "multipart/form-data; boundary=XyZ",
            body.to_vec(),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        (
            r.body["name"].as_str(),
            r.body["content_type"].as_str(),
            r.body["size"].as_i64()
        ),
        (Some("report.pdf"), Some("application/pdf"), Some(13))
    );
    let pdf = r.body.clone();
    let txt = upload(&app, &at, c, "notes.txt", "text/plain", b"some notes")
        .await
        .body;
    let elsewhere = upload(&app, &at, other, "x.txt", "text/plain", b"x")
        .await
        .body;
    let bobs = upload(&app, &bt, c, "bob.txt", "text/plain", b"bob's")
        .await
        .body;

    let ids = |v: &[&Value]| -> Vec<Value> { v.iter().map(|a| a["id"].clone()).collect() };
    let mut sub = Sub::new(&[format!("channel-{c}")]).await;
    let r = app
        .send(
            &at,
            c,
            json!({"content": "two files", "attachments": ids(&[&pdf, &txt])}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["attachments"], json!([pdf, txt]));
    // The live `message` frame carries them too.
    let live = loop {
        if let (_, ServerFrame::Message { message }) = sub.next().await {
            break message;
        }
    };
    assert_eq!(
        serde_json::to_value(&live.attachments).unwrap(),
        json!([pdf, txt])
    );
    let h = app.history(&at, c, "").await;
    assert_eq!(h.body["messages"][0]["attachments"], json!([pdf, txt]));
    // A message without attachments has no such field.
    let plain = app.say(&at, c, "plain").await;
    assert!(plain.get("attachments").is_none(), "{plain}");

    // Someone else's file, a file of another channel, an unknown id, the same id twice: 400,
    // nothing sent.
    for bad in [
        ids(&[&bobs]),
        ids(&[&elsewhere]),
        vec![json!("nope")],
        ids(&[&txt, &txt]),
    ] {
        let r = app
            .send(&at, c, json!({"content": "no", "attachments": bad}))
            .await;
        assert_eq!((r.status, r.code()), (400, "validation"), "{r:?}");
    }
    let h = app.history(&at, c, "").await;
    assert_eq!(h.body["messages"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_upload_over_the_limit_is_refused_and_nothing_is_stored() {
    over_the_limit(Kind::Local).await;
}

#[tokio::test]
async fn an_upload_over_the_limit_is_refused_and_nothing_is_stored_in_a_bucket() {
    over_the_limit(Kind::S3).await;
}

async fn over_the_limit(kind: Kind) {
    let (app, store, db) = spawn(kind, Some(1024)).await;
    let (_, at) = app.user("alice").await;
    let c = app.channel(&at, "general").await;
    let big = vec![b'a'; 2048];

    // Declared too large: refused before a byte is read.
    let r = upload(&app, &at, c, "big.txt", "text/plain", &big).await;
    assert_eq!((r.status, r.code()), (413, "too_large"), "{r:?}");
    // Streamed (chunked, no length): refused once the count passes the limit.
    let head = format!(
        "POST /api/channels/{c}/attachments?name=big.txt HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {at}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut body = Vec::new();
    for chunk in big.chunks(512) {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(raw_http(&app.base, &head, &body).await, 413);
    assert_eq!(store.until_empty().await, Vec::<String>::new());
    assert_eq!(rows(&db).await, 0);
    // At the limit: stored.
    let r = upload(&app, &at, c, "ok.txt", "text/plain", &big[..1024]).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!((store.stored().len(), rows(&db).await), (1, 1));
}

#[tokio::test]
async fn an_upload_cut_off_midway_leaves_nothing_behind() {
    cut_off_midway(Kind::Local).await;
}

#[tokio::test]
async fn an_upload_cut_off_midway_leaves_nothing_behind_in_a_bucket() {
    cut_off_midway(Kind::S3).await;
}

async fn cut_off_midway(kind: Kind) {
    let (app, store, db) = spawn(kind, None).await;
    let (_, at) = app.user("alice").await;
    let c = app.channel(&at, "general").await;
    // Half of a declared 1 MiB body, then the client goes away.
    let head = format!(
        "POST /api/channels/{c}/attachments?name=half.bin HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {at}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: 1048576\r\n\r\n"
    );
    {
        let addr = app.base.trim_start_matches("http://");
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&vec![7u8; 512 * 1024]).await.unwrap();
        s.flush().await.unwrap();
        // Let the server start storing it before the connection drops.
        tokio::time::sleep(Duration::from_millis(300)).await;
        // It is under way: its staging file or unfinished multipart upload exists.
        assert_eq!(store.in_flight().len(), 1, "{:?}", store.in_flight());
    }
    assert_eq!(store.until_empty().await, Vec::<String>::new());
    assert_eq!(rows(&db).await, 0);
    // The same upload, whole, is stored: the test sees files when there are some.
    let r = upload(
        &app,
        &at,
        c,
        "whole.bin",
        "application/octet-stream",
        &vec![7u8; 1 << 20],
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!((store.stored().len(), rows(&db).await), (1, 1));
}

#[tokio::test]
async fn a_file_of_several_parts_reads_back_whole() {
    several_parts(Kind::Local).await;
}

#[tokio::test]
async fn a_file_of_several_parts_reads_back_whole_in_a_bucket() {
    several_parts(Kind::S3).await;
}

/// 12 MiB: three parts of a multipart upload (5 MiB each at most), streamed both ways.
async fn several_parts(kind: Kind) {
    let (app, store, db) = spawn(kind, None).await;
    let (_, at) = app.user("alice").await;
    let c = app.channel(&at, "general").await;
    let bytes: Vec<u8> = (0..12u32 << 20).map(|i| (i % 251) as u8).collect();
    let r = upload(&app, &at, c, "big.bin", "text/plain", &bytes).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["size"].as_u64(), Some(bytes.len() as u64));
    assert_eq!(r.body["content_type"], "application/octet-stream");
    let got = app
        .http
        .get(format!("{}{}", app.base, r.body["url"].as_str().unwrap()))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(
        got.headers()["content-length"],
        bytes.len().to_string().as_str()
    );
    assert!(
        got.bytes().await.unwrap().as_ref() == bytes.as_slice(),
        "the bytes differ"
    );
    assert_eq!((store.stored().len(), rows(&db).await), (1, 1));
    assert_eq!(
        store.in_flight().len(),
        usize::from(matches!(kind, Kind::Local))
    );
}

#[tokio::test]
async fn an_upload_dropped_mid_body_leaves_nothing_behind() {
    dropped_mid_body(Kind::Local).await;
}

#[tokio::test]
async fn an_upload_dropped_mid_body_leaves_nothing_behind_in_a_bucket() {
    dropped_mid_body(Kind::S3).await;
}

/// The upload's future dropped while it waits for more of the body (a request cancelled, not
/// failed): the store is rid of it in the background all the same.
async fn dropped_mid_body(kind: Kind) {
    use futures_util::StreamExt;
    let c = test_config().await;
    let (files, store) = match kind {
        Kind::Local => (
            Files::open(None, &[], &c.data_dir, 1 << 20).unwrap(),
            Backend::Local(c.data_dir.join("attachments")),
        ),
        Kind::S3 => {
            let bucket = testkit::s3().bucket().unwrap();
            let url = format!("s3://{bucket}/files");
            let opts = testkit::s3().options();
            (
                Files::open(Some(&url), &opts, &c.data_dir, 1 << 20).unwrap(),
                Backend::S3(bucket),
            )
        }
    };
    let body =
        futures_util::stream::once(async { Ok::<_, std::io::Error>(Bytes::from(vec![1u8; 4096])) })
            .chain(futures_util::stream::pending());
    let put = tokio::spawn(async move { files.put(1, "dropped", body).await.map(|s| s.size) });
    for _ in 0..50 {
        if !store.in_flight().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.in_flight().len(), 1, "the upload never began");
    put.abort();
    assert!(put.await.unwrap_err().is_cancelled());
    assert_eq!(store.until_empty().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_bucket_that_cannot_be_listed_stops_the_start() {
    let mut c = test_config().await;
    c.attachment_store = Some("s3://no-such-bucket/files".into());
    c.attachment_store_options = testkit::s3().options();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let run = api_server::run(c, listener, tokio_util::sync::CancellationToken::new());
    let err = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the start was not refused")
        .expect_err("started without its bucket");
    let text = format!("{err:#}");
    assert!(text.contains("cannot be listed"), "{text}");
    assert!(text.contains("no-such-bucket"), "{text}");
}

#[tokio::test]
async fn pictures_get_thumbnails_made_once_for_members_only() {
    thumbnails(Kind::Local).await;
}

#[tokio::test]
async fn pictures_get_thumbnails_made_once_for_members_only_in_a_bucket() {
    thumbnails(Kind::S3).await;
}

/// A picture of `w` x `h`, as PNG.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([30, 120, 200]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

async fn thumbnails(kind: Kind) {
    let (app, store, _) = spawn(kind, None).await;
    let (_, at) = app.user("alice").await;
    let (_, bt) = app.user("bob").await;
    let c = app.channel(&at, "general").await;
    let get = |url: String, token: Option<String>| {
        let (http, base) = (app.http.clone(), app.base.clone());
        async move {
            let mut req = http.get(format!("{base}{url}"));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send().await.unwrap()
        }
    };

    let r = upload(&app, &at, c, "wide.png", "image/png", &png(1000, 500)).await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let url = format!("/api/attachments/{id}/thumbnail");
    assert_eq!(r.body["thumbnail_url"], url.as_str());
    assert_eq!(store.stored().len(), 1);
    let first = get(url.clone(), Some(at.clone())).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "image/jpeg");
    assert_eq!(first.headers()["x-content-type-options"], "nosniff");
    let first = first.bytes().await.unwrap();
    let t = image::load_from_memory(&first).unwrap();
    assert_eq!((t.width(), t.height()), (320, 160));
    // Kept beside the file, and served from there the next time.
    let kept = store.stored();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(
        kept.iter().any(|k| k.ends_with(&format!("{id}.thumb"))),
        "{kept:?}"
    );
    let again = get(url.clone(), Some(at.clone())).await;
    assert_eq!(again.bytes().await.unwrap(), first);

    // Members only.
    assert_eq!(get(url.clone(), Some(bt.clone())).await.status(), 403);
    assert_eq!(get(url.clone(), None).await.status(), 401);

    // A text file has none; a PNG header claiming 100,000 x 100,000 pixels is refused
    // without being decoded, and the server goes on.
    let r = upload(&app, &at, c, "a.txt", "text/plain", b"text").await;
    assert!(r.body.get("thumbnail_url").is_none(), "{r:?}");
    let text = format!(
        "/api/attachments/{}/thumbnail",
        r.body["id"].as_str().unwrap()
    );
    assert_eq!(get(text, Some(at.clone())).await.status(), 404);
    let mut bomb = png(1, 1);
    bomb[16..24].copy_from_slice(&[0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0]);
    let r = upload(&app, &at, c, "bomb.png", "image/png", &bomb).await;
    assert_eq!(r.body["content_type"], "image/png", "{r:?}");
    let bomb_url = r.body["thumbnail_url"].as_str().unwrap().to_owned();
    let refused = get(bomb_url, Some(at.clone())).await;
    assert_eq!(refused.status(), 404);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    assert_eq!(get(url, Some(at)).await.status(), 200);
}

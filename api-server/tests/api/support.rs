//! `TestApp`: the real server on port 0 with a fresh database, and one method per endpoint.

use std::time::Duration;

use api_server::Config;
use reqwest::Method;
use serde_json::{json, Value};
use shared::store::Store;
use tokio_util::sync::CancellationToken;

/// A status and a parsed JSON body (`Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
}

impl Resp {
    /// The `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// A running server.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Store,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A test configuration: fresh database, the shared Redis, a cheap Argon2 cost.
pub async fn test_config() -> Config {
    let db = testkit::fresh_db().await;
    let mut c = Config::new(&db.url, &testkit::redis_url(), testkit::JWT_SECRET);
    c.argon2_memory_kib = 4096;
    c.db_pool_size = 8;
    c.data_dir = testkit::scratch::make("api-data").unwrap();
    c
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::start(test_config().await).await
    }

    pub async fn spawn_with(f: impl FnOnce(&mut Config)) -> Self {
        let mut c = test_config().await;
        f(&mut c);
        Self::start(c).await
    }

    /// Starts `run(config, listener, token)` in a task and waits until it answers.
    pub async fn start(config: Config) -> Self {
        init_tracing();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let store = Store::connect(&config.database_url, 4).unwrap();
        let server = api_server::run(config, listener, shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = server.await {
                eprintln!("api-server stopped: {e:#}");
            }
        });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let app = TestApp {
            base,
            http,
            store,
            shutdown,
        };
        // The listener is bound already; wait until migrations ran and routes answer.
        app.wait_for(
            |r| r.status == 200 || r.status == 503,
            |a| a.get("/health", None),
        )
        .await;
        app
    }

    /// Polls `req` every 100 ms for up to 20 s until `ok` holds for its answer.
    pub async fn wait_for<'a, F, Fut>(&'a self, ok: impl Fn(&Resp) -> bool, req: F) -> Resp
    where
        F: Fn(&'a Self) -> Fut,
        Fut: std::future::Future<Output = Resp>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let r = req(self).await;
            if ok(&r) || tokio::time::Instant::now() > deadline {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Any request; `body` is sent as JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        finish(req).await
    }

    /// A request with a raw body and content type.
    pub async fn raw(&self, path: &str, token: Option<&str>, ctype: &str, body: Vec<u8>) -> Resp {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", ctype)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        finish(req).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn register(&self, username: &str, password: &str) -> Resp {
        let body = json!({"username": username, "password": password});
        self.post("/api/register", None, body).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Resp {
        self.login_from(username, password, None).await
    }

    /// Login with an `X-Forwarded-For` header, as HAProxy would send.
    pub async fn login_from(&self, username: &str, password: &str, xff: Option<&str>) -> Resp {
        let mut req = self
            .http
            .post(format!("{}/api/login", self.base))
            .json(&json!({"username": username, "password": password}));
        if let Some(x) = xff {
            req = req.header("x-forwarded-for", x);
        }
        finish(req).await
    }

    /// Registers and logs in; returns `(user id, token)`.
    pub async fn user(&self, username: &str) -> (i64, String) {
        let r = self.register(username, "password-123").await;
        assert_eq!(r.status, 201, "{r:?}");
        let r = self.login(username, "password-123").await;
        assert_eq!(r.status, 200, "{r:?}");
        (
            r.body["user"]["id"].as_i64().unwrap(),
            r.body["token"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn me(&self, token: &str) -> Resp {
        self.get("/api/me", Some(token)).await
    }

    pub async fn users(&self, token: &str, query: &str) -> Resp {
        self.get(&format!("/api/users{query}"), Some(token)).await
    }

    pub async fn create_channel(&self, token: &str, name: &str) -> Resp {
        self.post("/api/channels", Some(token), json!({"name": name}))
            .await
    }

    /// Creates a channel and returns its id.
    pub async fn channel(&self, token: &str, name: &str) -> i64 {
        let r = self.create_channel(token, name).await;
        assert_eq!(r.status, 201, "{r:?}");
        r.body["id"].as_i64().unwrap()
    }

    pub async fn channels(&self, token: &str, query: &str) -> Resp {
        self.get(&format!("/api/channels{query}"), Some(token))
            .await
    }

    pub async fn my_channels(&self, token: &str) -> Resp {
        self.get("/api/me/channels", Some(token)).await
    }

    pub async fn join(&self, token: &str, id: i64) -> Resp {
        self.call(
            Method::POST,
            &format!("/api/channels/{id}/join"),
            Some(token),
            None,
        )
        .await
    }

    pub async fn leave(&self, token: &str, id: i64) -> Resp {
        self.call(
            Method::POST,
            &format!("/api/channels/{id}/leave"),
            Some(token),
            None,
        )
        .await
    }

    pub async fn members(&self, token: &str, id: i64) -> Resp {
        self.get(&format!("/api/channels/{id}/members"), Some(token))
            .await
    }

    pub async fn dm(&self, token: &str, user_id: i64) -> Resp {
        self.post("/api/dms", Some(token), json!({"user_id": user_id}))
            .await
    }

    pub async fn history(&self, token: &str, id: i64, query: &str) -> Resp {
        self.get(&format!("/api/channels/{id}/messages{query}"), Some(token))
            .await
    }

    pub async fn send(&self, token: &str, id: i64, body: Value) -> Resp {
        self.post(&format!("/api/channels/{id}/messages"), Some(token), body)
            .await
    }

    /// Sends `content` and asserts 201; returns the message.
    pub async fn say(&self, token: &str, id: i64, content: &str) -> Value {
        let r = self.send(token, id, json!({"content": content})).await;
        assert_eq!(r.status, 201, "{r:?}");
        r.body
    }

    pub async fn read(&self, token: &str, id: i64, seq: i64) -> Resp {
        self.post(
            &format!("/api/channels/{id}/read"),
            Some(token),
            json!({"seq": seq}),
        )
        .await
    }

    pub async fn health(&self) -> Resp {
        self.get("/health", None).await
    }

    pub async fn text(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

/// Sends the request; the body is parsed as JSON when it is JSON, else `Null`.
async fn finish(req: reqwest::RequestBuilder) -> Resp {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    Resp {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// Logs to stderr when `TEST_LOG` is set; silent otherwise.
fn init_tracing() {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .with_test_writer()
            .try_init();
    }
}

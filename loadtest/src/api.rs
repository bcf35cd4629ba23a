//! The REST calls of SPEC section 3 the load test needs: register, login, create and join channels.

use std::{net::IpAddr, time::Duration};

use serde::Deserialize;
use serde_json::json;
use shared::protocol::{Channel, ErrorBody, User};

/// Why a REST call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{method} {path}: HTTP {status}: {body}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        body: String,
    },
    #[error("{0}")]
    Http(#[from] reqwest::Error),
}

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub token: String,
}

#[derive(Deserialize)]
struct LoginBody {
    token: String,
    user: User,
}

/// HTTP client of one deployment.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

/// Tries on `429 rate_limited` and `503 unavailable` before giving up.
const ATTEMPTS: u32 = 30;

impl Api {
    /// A client of `base` (e.g. `http://127.0.0.1:8080`) whose sockets bind to `source`.
    pub fn new(base: &str, source: Option<IpAddr>) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .local_address(source)
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Api {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// POSTs `body`, retrying (bounded) while the server answers 429 or 503.
    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: serde_json::Value,
    ) -> Result<reqwest::Response, ApiError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            if resp.status().is_success() {
                return Ok(resp);
            }
            let text = resp.text().await.unwrap_or_default();
            let retry = matches!(status, 429 | 503) && attempt < ATTEMPTS;
            if !retry {
                return Err(ApiError::Status {
                    method: "POST",
                    path: path.to_owned(),
                    status,
                    body: text,
                });
            }
            let wait_ms = serde_json::from_str::<ErrorBody>(&text)
                .ok()
                .and_then(|b| b.error.retry_after_ms)
                .unwrap_or(500)
                .clamp(50, 10_000);
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        }
    }

    /// Registers `username` (201) and logs in.
    pub async fn register_and_login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Session, ApiError> {
        let body = json!({ "username": username, "password": password });
        self.post("/api/register", None, body.clone()).await?;
        let login: LoginBody = self.post("/api/login", None, body).await?.json().await?;
        Ok(Session {
            user: login.user,
            token: login.token,
        })
    }

    /// Creates a channel named `name`; the creator is a member.
    pub async fn create_channel(&self, token: &str, name: &str) -> Result<Channel, ApiError> {
        let resp = self
            .post("/api/channels", Some(token), json!({ "name": name }))
            .await?;
        Ok(resp.json().await?)
    }

    /// Joins channel `id` (idempotent).
    pub async fn join(&self, token: &str, id: i64) -> Result<(), ApiError> {
        self.post(&format!("/api/channels/{id}/join"), Some(token), json!({}))
            .await?;
        Ok(())
    }
}

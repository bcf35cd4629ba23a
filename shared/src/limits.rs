//! Configurable limits of SPEC section 6, read once from the environment.

use std::time::Duration;

/// Input and rate limits shared by the edge and the api-server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest WebSocket frame or reassembled message, in bytes (close 1009 above it).
    pub max_frame_bytes: usize,
    /// Largest message content, in characters.
    pub max_content_chars: usize,
    pub max_channel_name_chars: usize,
    pub username_min: usize,
    pub username_max: usize,
    pub password_min: usize,
    pub password_max: usize,
    /// Sends per second per user (token bucket refill rate).
    pub send_rate_per_sec: f64,
    /// Token bucket size for sends.
    pub send_burst: f64,
    /// Login attempts allowed per username and per address within `login_window`.
    pub login_attempts: u32,
    pub login_window: Duration,
    pub history_default: i64,
    pub history_max: i64,
    /// Messages replayed per channel by one `resume` before `resume_truncated`.
    pub resume_max: i64,
    /// Longest `client_msg_id`, in bytes.
    pub max_client_msg_id: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 64 * 1024,
            max_content_chars: 4000,
            max_channel_name_chars: 80,
            username_min: 3,
            username_max: 32,
            password_min: 8,
            password_max: 256,
            send_rate_per_sec: 20.0,
            send_burst: 50.0,
            login_attempts: 10,
            login_window: Duration::from_secs(60),
            history_default: 50,
            history_max: 200,
            resume_max: 1000,
            max_client_msg_id: 128,
        }
    }
}

impl Limits {
    /// Defaults overridden by `MAX_FRAME_BYTES`, `MAX_CONTENT_CHARS`, `SEND_RATE_PER_SEC`,
    /// `SEND_BURST`, `LOGIN_ATTEMPTS`, `LOGIN_WINDOW_SECS`, `RESUME_MAX`.
    pub fn from_env() -> anyhow::Result<Self> {
        let mut l = Limits::default();
        l.max_frame_bytes = env_or("MAX_FRAME_BYTES", l.max_frame_bytes)?;
        l.max_content_chars = env_or("MAX_CONTENT_CHARS", l.max_content_chars)?;
        l.send_rate_per_sec = env_or("SEND_RATE_PER_SEC", l.send_rate_per_sec)?;
        l.send_burst = env_or("SEND_BURST", l.send_burst)?;
        l.login_attempts = env_or("LOGIN_ATTEMPTS", l.login_attempts)?;
        l.login_window =
            Duration::from_secs(env_or("LOGIN_WINDOW_SECS", l.login_window.as_secs())?);
        l.resume_max = env_or("RESUME_MAX", l.resume_max)?;
        Ok(l)
    }
}

/// Reads `name` from the environment and parses it, or returns `default` when unset.
pub fn env_or<T>(name: &str, default: T) -> anyhow::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .map_err(|e| anyhow::anyhow!("environment variable {name}={v:?}: {e}")),
        _ => Ok(default),
    }
}

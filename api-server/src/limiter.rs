//! The login rate limit: a fixed window per username and per address (sends are limited by
//! `shared::ratelimit`, the same for every transport).

use std::time::{Duration, Instant};

use dashmap::DashMap;
use shared::limits::Limits;

/// Login attempts per key (a username or an address) within a fixed window. An attempt is
/// counted when it starts, so concurrent guesses cannot overrun the limit; a successful login
/// gives its attempts back, so only failures use up the allowance (many users behind one
/// address, like a load test behind HAProxy, may log in as often as they like).
#[derive(Debug)]
pub struct LoginLimiter {
    attempts: u32,
    window: Duration,
    windows: DashMap<String, Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

impl LoginLimiter {
    pub fn new(l: &Limits) -> Self {
        LoginLimiter {
            attempts: l.login_attempts.max(1),
            window: l.login_window,
            windows: DashMap::new(),
        }
    }

    /// Counts an attempt against every key, or refuses (counting nothing) when one of them
    /// has used its allowance, with the time until its window ends.
    pub fn begin(&self, keys: &[String], now: Instant) -> Result<(), Duration> {
        for k in keys {
            if let Some(w) = self.windows.get(k) {
                let end = w.start + self.window;
                if now < end && w.count >= self.attempts {
                    return Err(end - now);
                }
            }
        }
        for k in keys {
            let mut w = self.windows.entry(k.clone()).or_insert(Window {
                start: now,
                count: 0,
            });
            if now >= w.start + self.window {
                *w = Window {
                    start: now,
                    count: 0,
                };
            }
            w.count += 1;
        }
        Ok(())
    }

    /// Gives back the attempt counted by [`LoginLimiter::begin`] after a successful login.
    pub fn succeeded(&self, keys: &[String]) {
        for k in keys {
            if let Some(mut w) = self.windows.get_mut(k) {
                w.count = w.count.saturating_sub(1);
            }
        }
    }

    /// Forgets windows that have ended.
    pub fn prune(&self, now: Instant) {
        let window = self.window;
        self.windows.retain(|_, w| now < w.start + window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_window_counts_failures_per_key() {
        let l = LoginLimiter::new(&Limits::default());
        let t0 = Instant::now();
        let keys = ["user:a".to_owned(), "addr:1".to_owned()];
        for _ in 0..10 {
            assert!(l.begin(&keys, t0).is_ok());
        }
        assert_eq!(l.begin(&keys, t0), Err(Duration::from_secs(60)));
        // The same address is refused for another user too.
        assert!(l
            .begin(&["user:b".to_owned(), "addr:1".to_owned()], t0)
            .is_err());
        // Successes give their attempt back.
        let other = ["user:c".to_owned(), "addr:2".to_owned()];
        for _ in 0..100 {
            assert!(l.begin(&other, t0).is_ok());
            l.succeeded(&other);
        }
        // The window ends.
        assert!(l.begin(&keys, t0 + Duration::from_secs(60)).is_ok());
        l.prune(t0 + Duration::from_secs(200));
        assert!(l.windows.is_empty());
    }
}

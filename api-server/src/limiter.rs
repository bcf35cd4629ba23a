//! In-process rate limiters: a token bucket per user for sends, and a fixed window per
//! username and per address for login attempts.

use std::time::{Duration, Instant};

use dashmap::DashMap;
use shared::limits::Limits;

/// Token bucket per user: `rate` tokens per second, at most `burst`.
#[derive(Debug)]
pub struct SendLimiter {
    rate: f64,
    burst: f64,
    buckets: DashMap<i64, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl SendLimiter {
    pub fn new(l: &Limits) -> Self {
        SendLimiter {
            rate: l.send_rate_per_sec.max(0.0),
            burst: l.send_burst.max(1.0),
            buckets: DashMap::new(),
        }
    }

    /// Takes one token for `user`, or says how long until one is available.
    pub fn check(&self, user: i64, now: Instant) -> Result<(), Duration> {
        let mut b = self.buckets.entry(user).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        let wait = if self.rate > 0.0 {
            (1.0 - b.tokens) / self.rate
        } else {
            3600.0
        };
        Err(Duration::from_secs_f64(wait.min(3600.0)))
    }

    /// Forgets buckets that have refilled completely (they behave as absent ones).
    pub fn prune(&self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
            b.tokens + elapsed * rate < burst
        });
    }
}

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
    fn send_bucket_allows_the_burst_then_the_rate() {
        let l = SendLimiter::new(&Limits::default());
        let t0 = Instant::now();
        for _ in 0..50 {
            assert!(l.check(1, t0).is_ok());
        }
        let wait = l.check(1, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(50));
        // Another user has a bucket of their own.
        assert!(l.check(2, t0).is_ok());
        // 100 ms later, two more sends at 20/s.
        let t1 = t0 + Duration::from_millis(100);
        assert!(l.check(1, t1).is_ok());
        assert!(l.check(1, t1).is_ok());
        assert!(l.check(1, t1).is_err());
        l.prune(t0 + Duration::from_secs(10));
        assert!(l.buckets.is_empty());
    }

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

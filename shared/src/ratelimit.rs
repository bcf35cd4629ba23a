//! The per-user send rate of SPEC section 6, one meaning for every transport: a GCRA token
//! bucket per user (the `governor` crate) refilling `SEND_RATE_PER_SEC` tokens a second up to
//! `SEND_BURST`. A rate of 0 (or less) turns the limit off; a burst below 1 (or NaN) counts as 1.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::limits::Limits;

type Keyed = RateLimiter<i64, DefaultKeyedStateStore<i64>, DefaultClock>;

/// Send tokens per user, shared by every socket or request of that user in one process.
pub struct SendLimiter {
    limiter: Option<Keyed>,
    clock: DefaultClock,
}

impl std::fmt::Debug for SendLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendLimiter")
            .field("on", &self.limiter.is_some())
            .finish()
    }
}

impl SendLimiter {
    pub fn new(l: &Limits) -> Self {
        let limiter = quota(l.send_rate_per_sec, l.send_burst).map(RateLimiter::keyed);
        SendLimiter {
            limiter,
            clock: DefaultClock::default(),
        }
    }

    /// Takes one token for `user`, or says how long until one is available.
    pub fn check(&self, user: i64) -> Result<(), Duration> {
        let Some(l) = &self.limiter else {
            return Ok(());
        };
        l.check_key(&user)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets users whose bucket has refilled completely (they behave as absent ones).
    pub fn prune(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Users with a bucket in memory.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }
}

/// The quota of `rate` tokens a second with a burst of `burst`; `None` when the rate turns
/// the limit off.
fn quota(rate: f64, burst: f64) -> Option<Quota> {
    if rate.is_nan() || rate <= 0.0 || rate.is_infinite() {
        return None;
    }
    // One token every 1/rate seconds, at least a nanosecond apart.
    let period = Duration::from_secs_f64((1.0 / rate).clamp(1e-9, 1e9));
    // NaN would pass `clamp` and cast to 0, which turned the limit off: it counts as 1.
    let burst = if burst.is_nan() { 1.0 } else { burst };
    // governor multiplies the period by the burst in u64 nanoseconds: a huge burst at a slow
    // rate overflowed it (a panic in debug builds, a wrapped, wrong limit in release).
    let most = (u64::MAX as f64 / period.as_nanos().max(1) as f64).min(f64::from(u32::MAX));
    let burst = NonZeroU32::new(burst.clamp(1.0, most.max(1.0)) as u32)?;
    Some(Quota::with_period(period)?.allow_burst(burst))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: f64, burst: f64) -> Limits {
        Limits {
            send_rate_per_sec: rate,
            send_burst: burst,
            ..Limits::default()
        }
    }

    #[test]
    fn the_burst_then_refusal_with_the_time_to_the_next_token() {
        let l = SendLimiter::new(&Limits::default());
        for _ in 0..50 {
            assert!(l.check(1).is_ok());
        }
        let wait = l.check(1).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(50),
            "{wait:?}"
        );
        // Another user has a bucket of their own.
        assert!(l.check(2).is_ok());
        assert_eq!(l.tracked(), 2);
    }

    #[test]
    fn tokens_come_back_at_the_rate() {
        let l = SendLimiter::new(&limits(100.0, 1.0));
        assert!(l.check(1).is_ok());
        let wait = l.check(1).unwrap_err();
        std::thread::sleep(wait + Duration::from_millis(2));
        assert!(l.check(1).is_ok());
    }

    #[test]
    fn a_rate_of_zero_turns_the_limit_off() {
        for rate in [0.0, -1.0, f64::NAN] {
            let l = SendLimiter::new(&limits(rate, 1.0));
            for _ in 0..1000 {
                assert!(l.check(1).is_ok());
            }
            assert_eq!(l.tracked(), 0);
        }
    }

    #[test]
    fn a_slow_rate_says_how_long_to_wait() {
        let l = SendLimiter::new(&limits(0.1, 1.0));
        assert!(l.check(1).is_ok());
        let wait = l.check(1).unwrap_err();
        assert!(
            wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// Each user gets exactly the burst at once, then a refusal whose wait is at most
            /// one token's period; users do not share tokens. (Rates of at most 1/s: no token
            /// comes back while the test runs.)
            #[test]
            fn the_burst_is_granted_whole_then_refused_for_at_most_a_period(
                rate in 0.001f64..1.0,
                burst in 1u32..200,
                users in 1i64..4,
            ) {
                let l = SendLimiter::new(&limits(rate, f64::from(burst)));
                let period = Duration::from_secs_f64(1.0 / rate);
                for u in 0..users {
                    for _ in 0..burst {
                        prop_assert!(l.check(u).is_ok());
                    }
                    let wait = l.check(u).unwrap_err();
                    prop_assert!(wait > Duration::ZERO && wait <= period, "{:?} > {:?}", wait, period);
                }
            }

            /// Any positive finite rate limits, whatever the configured burst (NaN, negative,
            /// huge): a user never gets more than the burst, counted as at least 1.
            #[test]
            fn a_positive_rate_always_limits_whatever_the_burst(
                rate in 0.001f64..1.0,
                burst in prop_oneof![any::<f64>(), Just(f64::NAN), Just(-1.0), Just(0.0), 0.0f64..300.0],
            ) {
                let l = SendLimiter::new(&limits(rate, burst));
                let cap = if burst.is_nan() { 1.0 } else { burst.clamp(1.0, 301.0).floor() };
                let granted = (0..301).take_while(|_| l.check(7).is_ok()).count();
                prop_assert_eq!(granted as f64, cap, "burst {}", burst);
            }
        }
    }
}

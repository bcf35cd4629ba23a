//! Waits between reconnect attempts: exponential with full jitter (a uniform draw between zero
//! and a ceiling that doubles per failed attempt, up to a cap), so the sockets of a dead edge do
//! not all come back in the same instant.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    /// Waits drawn since the last success.
    failures: u32,
}

impl Default for Backoff {
    /// 100 ms, doubling up to 2 s.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(2))
    }
}

impl Backoff {
    /// The first wait is at most `base`; each next one at most twice the last, up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap: cap.max(base),
            failures: 0,
        }
    }

    /// The most the next wait can be.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The next wait, drawn uniformly from `[0, ceiling]`; the ceiling then doubles.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=nanos))
    }

    /// A connection got through: the next outage starts from `base` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rand::{rngs::StdRng, SeedableRng};

    use super::Backoff;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_ceiling_doubles_up_to_the_cap_and_resets_after_a_success() {
        let mut b = Backoff::new(100 * MS, 1000 * MS);
        let mut rng = StdRng::seed_from_u64(1);
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            ceilings.push(b.ceiling());
            b.next_delay(&mut rng);
        }
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000].map(|m| m * MS));
        for _ in 0..100 {
            b.next_delay(&mut rng);
        }
        assert_eq!(b.ceiling(), 1000 * MS, "no overflow after many failures");
        b.reset();
        assert_eq!(b.ceiling(), 100 * MS);
    }

    #[test]
    fn waits_are_spread_over_the_whole_range_below_the_ceiling() {
        let mut rng = StdRng::seed_from_u64(7);
        let waits: Vec<Duration> = (0..2000)
            .map(|_| Backoff::new(100 * MS, 100 * MS).next_delay(&mut rng))
            .collect();
        assert!(waits.iter().all(|w| *w <= 100 * MS));
        // Full jitter: every tenth of the range is drawn, not just the top.
        for tenth in 0..10u32 {
            let (lo, hi) = (10 * MS * tenth, 10 * MS * (tenth + 1));
            let n = waits.iter().filter(|w| **w >= lo && **w < hi).count();
            assert!((100..=300).contains(&n), "{n} waits in [{lo:?}, {hi:?})");
        }
    }
}

//! Pure timing rules for the Management API: when to wait before a call, how long to back off.

use std::time::Duration;

/// Longest single wait for the rate limit or a retry.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(10);

/// What the last answer said about the tenant's bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Budget {
    remaining: Option<u64>,
    /// Unix seconds when tokens are next added.
    reset: Option<u64>,
}

impl Budget {
    /// Records the `x-ratelimit-remaining` / `x-ratelimit-reset` of an answer.
    pub fn observe(&mut self, remaining: Option<u64>, reset: Option<u64>) {
        if remaining.is_some() || reset.is_some() {
            self.remaining = remaining;
            self.reset = reset;
        }
    }

    /// How long to wait before the next call so as not to be told no: nothing while tokens
    /// remain, else until the reset time (plus `jitter`, a fraction of a second).
    pub fn wait_before(&self, now_unix: f64, jitter: f64) -> Duration {
        match (self.remaining, self.reset) {
            (Some(0), Some(reset)) if (reset as f64) > now_unix => {
                capped(reset as f64 - now_unix + jitter)
            }
            _ => Duration::ZERO,
        }
    }

    /// After taking a call, one token fewer is left.
    pub fn spend(&mut self) {
        if let Some(r) = self.remaining.as_mut() {
            *r = r.saturating_sub(1);
        }
    }
}

/// How long to wait after a 429: `Retry-After` when sent, else until the reset time, else a
/// second; plus jitter; capped.
pub fn after_429(
    retry_after_secs: Option<f64>,
    reset: Option<u64>,
    now_unix: f64,
    jitter: f64,
) -> Duration {
    let base = retry_after_secs
        .or_else(|| reset.map(|r| r as f64 - now_unix))
        .filter(|s| *s > 0.0)
        .unwrap_or(1.0);
    capped(base + jitter)
}

/// Seconds as a wait, at most [`MAX_WAIT`] (also for absurd header values).
fn capped(secs: f64) -> Duration {
    Duration::from_secs_f64(secs.clamp(0.0, MAX_WAIT.as_secs_f64()))
}

/// Exponential backoff with full jitter (`jitter01` in 0..1) for retry number `attempt` (0-based).
pub fn backoff(attempt: u32, jitter01: f64) -> Duration {
    let exp = BACKOFF_BASE
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(BACKOFF_CAP);
    exp.mul_f64(jitter01.clamp(0.0, 1.0))
        .max(Duration::from_millis(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_only_when_the_bucket_is_empty() {
        let mut b = Budget::default();
        assert_eq!(b.wait_before(100.0, 0.0), Duration::ZERO);
        b.observe(Some(1), Some(101));
        assert_eq!(b.wait_before(100.0, 0.0), Duration::ZERO);
        b.spend();
        assert_eq!(b.wait_before(100.5, 0.1), Duration::from_secs_f64(0.6));
        assert_eq!(b.wait_before(101.5, 0.1), Duration::ZERO, "reset passed");
        b.observe(Some(0), Some(10_000));
        assert_eq!(b.wait_before(0.0, 0.0), MAX_WAIT);
        b.observe(Some(0), Some(u64::MAX));
        assert_eq!(
            b.wait_before(0.0, 0.0),
            MAX_WAIT,
            "absurd reset headers cannot panic or stall"
        );
        b.observe(None, None);
        assert_eq!(
            b.wait_before(0.0, 0.0),
            MAX_WAIT,
            "answers without headers change nothing"
        );
    }

    #[test]
    fn waits_after_429_prefer_retry_after() {
        assert_eq!(
            after_429(Some(2.0), Some(200), 100.0, 0.0),
            Duration::from_secs(2)
        );
        assert_eq!(
            after_429(None, Some(103), 100.0, 0.25),
            Duration::from_secs_f64(3.25)
        );
        assert_eq!(
            after_429(None, Some(90), 100.0, 0.0),
            Duration::from_secs(1)
        );
        assert_eq!(after_429(None, None, 100.0, 0.0), Duration::from_secs(1));
        assert_eq!(after_429(Some(3600.0), None, 0.0, 0.0), MAX_WAIT);
        assert_eq!(after_429(Some(f64::INFINITY), None, 0.0, 0.0), MAX_WAIT);
        assert_eq!(after_429(Some(1e300), None, 0.0, 0.0), MAX_WAIT);
        assert_eq!(after_429(None, Some(u64::MAX), 0.0, 0.0), MAX_WAIT);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0, 1.0) <= Duration::from_millis(200));
        assert_eq!(backoff(3, 1.0), Duration::from_millis(1600));
        assert_eq!(backoff(30, 1.0), BACKOFF_CAP);
        assert_eq!(backoff(5, 0.0), Duration::from_millis(10));
    }
}

//! The Management API's token bucket (one per tenant), as Auth0 describes it: `burst` tokens
//! at most, refilled continuously at `per_second`. Pure: the caller passes the time.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Bucket {
    burst: u32,
    per_second: f64,
    tokens: f64,
    updated: Instant,
}

/// The rate-limit headers of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers {
    pub limit: u32,
    pub remaining: u32,
    /// Unix seconds when a token is next added (now when the bucket is full).
    pub reset: u64,
}

impl Bucket {
    pub fn new(burst: u32, per_second: f64, now: Instant) -> Self {
        Self {
            burst,
            per_second,
            tokens: f64::from(burst),
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(f64::from(self.burst));
        self.updated = now;
    }

    /// Takes a token if there is one. Either way, the headers to send.
    pub fn take(&mut self, now: Instant, unix_now: Duration) -> (bool, Headers) {
        self.refill(now);
        let allowed = self.tokens >= 1.0;
        if allowed {
            self.tokens -= 1.0;
        }
        (allowed, self.headers(unix_now))
    }

    fn headers(&self, unix_now: Duration) -> Headers {
        let missing = f64::from(self.burst) - self.tokens;
        let until_next = if missing <= 0.0 || self.per_second <= 0.0 {
            0.0
        } else {
            (1.0 - self.tokens.fract()) / self.per_second
        };
        Headers {
            limit: self.burst,
            remaining: self.tokens.floor() as u32,
            reset: (unix_now.as_secs_f64() + until_next).ceil() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuse_then_refill() {
        let t0 = Instant::now();
        let unix = Duration::from_secs(1_000_000);
        let mut b = Bucket::new(2, 2.0, t0);
        let (ok, h) = b.take(t0, unix);
        assert!(ok);
        assert_eq!((h.limit, h.remaining), (2, 1));
        assert!(b.take(t0, unix).0);
        let (ok, h) = b.take(t0, unix);
        assert!(!ok);
        assert_eq!(h.remaining, 0);
        assert_eq!(
            h.reset, 1_000_001,
            "a token comes back within the next second"
        );
        // Half a second at 2/s refills one token.
        let t1 = t0 + Duration::from_millis(500);
        assert!(b.take(t1, unix).0);
        assert!(!b.take(t1, unix).0);
        // Long idle: full again, never more than the burst.
        let (ok, h) = b.take(t1 + Duration::from_secs(60), unix);
        assert!(ok);
        assert_eq!(h.remaining, 1);
    }

    #[test]
    fn a_full_bucket_resets_now() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10, 2.5, t0);
        let unix = Duration::from_secs(42);
        let (_, h) = b.take(t0 + Duration::from_secs(10), unix);
        assert_eq!(h.remaining, 9);
        assert!(h.reset >= 42);
    }
}

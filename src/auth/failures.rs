//! Failed authentications, limited per client address: after a burst, each address may fail
//! at a steady rate, and failures beyond it are answered 429 with `Retry-After`. Valid
//! credentials are always checked and accepted, so a caller who authenticates is never held
//! back by someone else's failures, even from the same address (behind one load balancer).

use std::{net::IpAddr, num::NonZeroU32, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

pub struct FailureLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl FailureLimiter {
    /// `per_minute` failures at once, then one every `60 / per_minute` seconds.
    pub fn new(per_minute: NonZeroU32) -> Self {
        let quota = Quota::per_minute(per_minute).allow_burst(per_minute);
        Self {
            limiter: RateLimiter::keyed(quota),
        }
    }

    /// Counts a failed authentication from `ip`; answers how long that address should wait
    /// when it has failed more than its quota allows.
    pub fn failed(&self, ip: IpAddr) -> Option<Duration> {
        self.limiter
            .check_key(&ip)
            .err()
            .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets addresses whose quota has refilled (call now and then; memory stays bounded by
    /// the addresses that failed recently).
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_may_fail_its_quota_then_waits_and_others_are_not_affected() {
        let limiter = FailureLimiter::new(NonZeroU32::new(3).unwrap());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(limiter.failed(a), None);
        }
        let wait = limiter.failed(a).expect("over its quota");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert_eq!(limiter.failed(b), None);
        limiter.forget_idle();
    }
}

//! A rate limit on kept refusals per client address: a client that sends refused bodies in a
//! loop is answered 429 once past its allowance, and what it sends then is not kept. Accepted
//! webhooks never count: a provider's good traffic is never limited here.

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Refusals kept per second per client address, unless configured otherwise.
pub const DEFAULT_REFUSALS_PER_SECOND: u32 = 10;
/// How many a client may have kept at once before the rate applies.
pub const DEFAULT_REFUSALS_BURST: u32 = 100;

/// Forget addresses not seen for a while every this many checks, so the table stays small.
const CLEANUP_EVERY: u64 = 4096;

pub struct RefusalLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU64,
}

impl std::fmt::Debug for RefusalLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefusalLimiter").field("clients", &self.limiter.len()).finish()
    }
}

impl Default for RefusalLimiter {
    fn default() -> RefusalLimiter {
        RefusalLimiter::new(DEFAULT_REFUSALS_PER_SECOND, DEFAULT_REFUSALS_BURST)
    }
}

impl RefusalLimiter {
    /// `per_second` and `burst` below 1 count as 1.
    pub fn new(per_second: u32, burst: u32) -> RefusalLimiter {
        let per_second = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        RefusalLimiter {
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            checks: AtomicU64::new(0),
        }
    }

    /// `Ok` when a refusal from `peer` may be kept now; otherwise how long until one may.
    pub fn check(&self, peer: Option<IpAddr>) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % CLEANUP_EVERY == CLEANUP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        let key = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        self.limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_past_its_burst_waits_and_others_do_not() {
        let limiter = RefusalLimiter::new(1, 3);
        let flooder = Some("203.0.113.9".parse().expect("ip"));
        for _ in 0..3 {
            assert!(limiter.check(flooder).is_ok());
        }
        let wait = limiter.check(flooder).expect_err("past its burst");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limiter.check(Some("198.51.100.1".parse().expect("ip"))).is_ok(), "another client");
    }
}

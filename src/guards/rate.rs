//! Token-bucket rate limits (GCRA, from `governor`) with bounded memory.
//!
//! With `key = "client_ip"` each client address has its own bucket; IPv6
//! clients are counted per /64, since one host usually holds a whole /64. At
//! most `max_keys` buckets are kept. When the table is full, buckets that have
//! refilled (idle clients) are dropped; if it is still full, every request
//! shares one overflow bucket with the route's quota until space frees, so a
//! flood of distinct addresses cannot grow memory. `RateLimit` is the
//! validated `rate_limit` setting a limiter runs.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use serde::Deserialize;

/// A validated `rate_limit = { per_second, burst, key, max_keys }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
    pub key: RateKey,
    pub max_keys: usize,
}

impl RateLimit {
    /// The default burst: one second's worth of requests, at least 1.
    pub fn default_burst(per_second: f64) -> u32 {
        per_second.ceil().clamp(1.0, f64::from(u32::MAX)) as u32
    }

    pub const DEFAULT_MAX_KEYS: usize = 100_000;

    fn quota(&self) -> Quota {
        let period = Duration::from_secs_f64(1.0 / self.per_second).max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(self.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(burst)
    }
}

/// What a rate limit counts separately.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateKey {
    /// One bucket per client address (per /64 for IPv6).
    #[default]
    ClientIp,
    /// One bucket for the whole route.
    Route,
}

impl RateKey {
    /// As the file writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            RateKey::ClientIp => "client_ip",
            RateKey::Route => "route",
        }
    }
}

pub struct RateLimiter {
    spec: RateLimit,
    keyed: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// The route's bucket (`key = "route"`), or the overflow bucket.
    shared: DefaultDirectRateLimiter,
}

impl RateLimiter {
    pub fn new(spec: &RateLimit) -> Self {
        let keyed = (spec.key == RateKey::ClientIp).then(|| DefaultKeyedRateLimiter::keyed(spec.quota()));
        RateLimiter { spec: *spec, keyed, shared: DefaultDirectRateLimiter::direct(spec.quota()) }
    }

    /// `Err` holds the seconds to wait (for `Retry-After`, at least 1).
    pub fn check(&self, client: IpAddr) -> Result<(), u64> {
        let retry = |wait: Duration| wait.as_millis().div_ceil(1000).max(1) as u64;
        if let Some(keyed) = &self.keyed {
            if keyed.len() >= self.spec.max_keys {
                keyed.retain_recent();
            }
            if keyed.len() < self.spec.max_keys {
                return keyed
                    .check_key(&bucket_key(client))
                    .map_err(|not_until| retry(not_until.wait_time_from(keyed.clock().now())));
            }
        }
        self.shared.check().map_err(|not_until| retry(not_until.wait_time_from(self.shared.clock().now())))
    }

    /// Drops buckets that have refilled; returns how many remain.
    pub fn sweep(&self) -> usize {
        match &self.keyed {
            Some(keyed) => {
                keyed.retain_recent();
                keyed.shrink_to_fit();
                keyed.len()
            }
            None => 0,
        }
    }
}

/// IPv4 addresses count alone; IPv6 addresses by their /64.
pub(super) fn bucket_key(ip: IpAddr) -> IpAddr {
    match crate::client_ip::canonical(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(per_second: f64, burst: u32, key: RateKey, max_keys: usize) -> RateLimit {
        RateLimit { per_second, burst, key, max_keys }
    }

    #[test]
    fn burst_then_refusal_with_retry_after() {
        let limiter = RateLimiter::new(&spec(1.0, 3, RateKey::ClientIp, 100));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(limiter.check(a), Ok(()));
        }
        assert_eq!(limiter.check(a), Err(1));
        // Another client has its own bucket.
        assert_eq!(limiter.check("10.0.0.2".parse().unwrap()), Ok(()));
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let limiter = RateLimiter::new(&spec(0.1, 1, RateKey::ClientIp, 100));
        assert_eq!(limiter.check("2001:db8::1".parse().unwrap()), Ok(()));
        assert!(limiter.check("2001:db8::2".parse().unwrap()).is_err());
        assert_eq!(limiter.check("2001:db8:0:1::1".parse().unwrap()), Ok(()));
    }

    #[test]
    fn the_table_never_grows_past_max_keys() {
        let limiter = RateLimiter::new(&spec(1000.0, 1000, RateKey::ClientIp, 50));
        for i in 0..10_000u32 {
            let _ = limiter.check(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
        }
        assert!(limiter.keyed.as_ref().unwrap().len() <= 50);
    }

    #[test]
    fn route_key_shares_one_bucket() {
        let limiter = RateLimiter::new(&spec(0.5, 2, RateKey::Route, 100));
        assert_eq!(limiter.check("10.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(limiter.check("10.0.0.2".parse().unwrap()), Ok(()));
        assert_eq!(limiter.check("10.0.0.3".parse().unwrap()), Err(2));
    }
}

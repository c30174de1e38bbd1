//! A rate limit shared through Redis (`[cluster]`): every host's requests
//! draw on one bucket, so the configured rate holds for the cluster, not
//! per host.
//!
//! Each check is one script (GCRA, as the local limiter): the bucket's
//! theoretical arrival time is read, moved on by one emission interval if
//! the request fits within the burst, and written back with an expiry at
//! the time the bucket is full again, so idle buckets vanish. Time is Redis's
//! own (`TIME`), never a host's clock, so hosts whose clocks differ share
//! fairly. Buckets are keyed as the local ones (`rate:<route>:<client /64
//! or address>`, or `rate:<route>:route`). A failed call is the caller's to
//! answer with the local limiter (`GuardState::admit_shared`).

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use redis::Script;

use super::rate::{RateKey, RateLimit, bucket_key};
use crate::cluster::{Call, Cluster, ClusterError};

/// KEYS[1]: the bucket; ARGV[1]: the emission interval (µs); ARGV[2]: the
/// burst. Returns 0 when admitted, else the milliseconds until a request
/// would be. A stored value that is no number, or lies further ahead than
/// any admission can put it, counts as a full bucket.
static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now
if tat < now or tat > now + interval * burst then tat = now end
local next_tat = tat + interval
local allowed_at = next_tat - interval * burst
if now < allowed_at then
  return math.ceil((allowed_at - now) / 1000)
end
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', string.format('%d', math.ceil((next_tat - now) / 1000)))
return 0
",
    )
});

/// One route's shared rate limit.
pub struct SharedRate {
    cluster: Arc<Cluster>,
    route: Arc<str>,
    spec: RateLimit,
}

impl SharedRate {
    pub fn new(cluster: Arc<Cluster>, route: Arc<str>, spec: RateLimit) -> SharedRate {
        SharedRate { cluster, route, spec }
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Checks a request from `client` against the cluster's bucket: `Ok(Err)`
    /// holds the seconds to wait (for `Retry-After`, at least 1).
    pub async fn check(&self, client: IpAddr) -> Result<Result<(), u64>, ClusterError> {
        let bucket = match self.spec.key {
            RateKey::ClientIp => bucket_key(client).to_string(),
            RateKey::Route => "route".to_string(),
        };
        let name = self.cluster.key("rate", &format!("{}:{bucket}", self.route));
        let interval_us = 1e6 / self.spec.per_second;
        let mut check = GCRA.key(name);
        check.arg(interval_us).arg(self.spec.burst.max(1));
        let wait_ms = self.cluster.invoke::<i64>(Call::RateLimit, &check).await?;
        // Only a positive wait refuses (a day at most, whatever Redis said).
        Ok(match wait_ms {
            ..=0 => Ok(()),
            ms => Err((ms as u64).div_ceil(1000).clamp(1, 86_400)),
        })
    }
}

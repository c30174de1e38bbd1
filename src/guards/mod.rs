//! Per-route guards: who may call a route, with which secret, how big, how often.
//!
//! A guard runs after the route is chosen and before a byte is forwarded. The
//! order is fixed: source allowlist (403), secret header (401 missing, 403
//! wrong), rate limit (429 with `Retry-After`), in-flight cap (503). Body size
//! is enforced where the body streams. `Guards` is one route's guards as
//! validated (`config` builds them from the file and writes them back in its
//! spelling); this module runs them, and `GuardState` holds the counters that
//! live as long as one config load. With `[cluster]`, the rate limit and
//! `dedupe` share their state through Redis (`shared_rate`, `dedupe::shared`);
//! each falls back to this host's own table when Redis fails.

pub mod dedupe;
mod rate;
mod shared_rate;

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderName};
use ipnet::IpNet;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use dedupe::{Dedupe, DedupeSpec};
pub use rate::{RateKey, RateLimit, RateLimiter};
use shared_rate::SharedRate;

use crate::cluster::{Call, Cluster};
use crate::error::ProxyError;
use crate::secret::Secret;
use crate::verify::Verifier;

#[derive(Debug, Clone)]
pub struct SecretHeader {
    pub name: HeaderName,
    pub value: Secret,
    /// Remove the header before forwarding (default), so the backend never sees it.
    pub strip: bool,
}

/// The validated guards of one route.
#[derive(Debug, Clone, Default)]
pub struct Guards {
    /// Allowed client networks; `None` means anyone.
    pub allow_from: Option<Vec<IpNet>>,
    /// The `allow_from` entries as written, for explanations.
    pub allow_from_names: Vec<String>,
    pub secret_header: Option<SecretHeader>,
    /// Overrides `[limits] max_body` for this route.
    pub max_body: Option<u64>,
    pub rate_limit: Option<RateLimit>,
    pub max_in_flight: Option<usize>,
    /// Repeats of an answered request are answered here (`dedupe`).
    pub dedupe: Option<DedupeSpec>,
    /// The request's signature is checked before anything else reads its body (`verify`).
    pub verify: Option<Arc<Verifier>>,
}

impl Guards {
    pub fn is_empty(&self) -> bool {
        self.allow_from.is_none()
            && self.secret_header.is_none()
            && self.max_body.is_none()
            && self.rate_limit.is_none()
            && self.max_in_flight.is_none()
            && self.dedupe.is_none()
            && self.verify.is_none()
    }

    /// Whether `client` may call the route.
    pub fn allows(&self, client: IpAddr) -> bool {
        // IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are compared as IPv4.
        let client = crate::client_ip::canonical(client);
        self.allow_from.as_ref().is_none_or(|nets| nets.iter().any(|net| net.contains(&client)))
    }

    /// The secret check: `Ok` when there is no secret or it matches.
    pub fn check_secret(&self, headers: &HeaderMap) -> Result<(), ProxyError> {
        let Some(secret) = &self.secret_header else { return Ok(()) };
        let mut values = headers.get_all(&secret.name).iter();
        match (values.next(), values.next()) {
            (None, _) => Err(ProxyError::MissingSecret),
            (Some(value), None) if secret.value.matches(value.as_bytes()) => Ok(()),
            _ => Err(ProxyError::WrongSecret),
        }
    }
}

/// What `GuardState::admit` let through.
pub struct Admitted {
    /// The in-flight slot, with `max_in_flight`.
    pub permit: Option<OwnedSemaphorePermit>,
    /// The rate limit is checked in the cluster's bucket before forwarding.
    pub shared_rate_due: bool,
}

/// Counters that belong to one route for one config load.
pub struct GuardState {
    limiter: Option<RateLimiter>,
    /// With `[cluster]` and a rate limit: the cluster's bucket, checked
    /// before forwarding (`admit_shared`); `limiter` decides while Redis fails.
    shared_rate: Option<SharedRate>,
    in_flight: Option<Arc<Semaphore>>,
    /// Kept across reloads (see `new`), so a redelivery is still recognised.
    pub dedupe: Option<Arc<Dedupe>>,
}

impl GuardState {
    /// `previous` is the same route's state from the config load before, if
    /// any: its dedupe table is kept when the settings did not change.
    /// `cluster`: the cluster and this route's name, with `[cluster]`.
    pub fn new(guards: &Guards, previous: Option<&GuardState>, cluster: Option<(&Arc<Cluster>, &str)>) -> Self {
        let cluster: Option<(Arc<Cluster>, Arc<str>)> = cluster.map(|(cluster, route)| (cluster.clone(), route.into()));
        let kept = previous
            .and_then(|p| p.dedupe.clone())
            .filter(|d| Some(d.spec()) == guards.dedupe.as_ref() && d.is_shared() == cluster.is_some());
        let shared_rate = guards.rate_limit.zip(cluster.clone());
        GuardState {
            limiter: guards.rate_limit.as_ref().map(RateLimiter::new),
            shared_rate: shared_rate.map(|(spec, (cluster, route))| SharedRate::new(cluster, route, spec)),
            in_flight: guards.max_in_flight.map(|n| Arc::new(Semaphore::new(n))),
            dedupe: kept.or_else(|| guards.dedupe.clone().map(|spec| Dedupe::shared_through(spec, cluster))),
        }
    }

    /// Runs every guard of `guards` for a request from `client` that can be
    /// run without waiting. On success returns the in-flight permit to hold
    /// until the response ends, and whether the rate limit is still to be
    /// checked in Redis (`admit_shared`, before forwarding).
    pub fn admit(&self, guards: &Guards, client: IpAddr, headers: &HeaderMap) -> Result<Admitted, ProxyError> {
        if !guards.allows(client) {
            return Err(ProxyError::Forbidden);
        }
        guards.check_secret(headers)?;
        let mut shared_rate_due = false;
        if let Some(limiter) = &self.limiter {
            match &self.shared_rate {
                Some(shared) if shared.cluster().is_up() => shared_rate_due = true,
                shared => {
                    if let Some(shared) = shared {
                        // Degraded: this host's bucket alone decides.
                        shared.cluster().fell_back(Call::RateLimit);
                    }
                    limiter.check(client).map_err(ProxyError::RateLimited)?;
                }
            }
        }
        let permit = match &self.in_flight {
            None => None,
            Some(slots) => Some(slots.clone().try_acquire_owned().map_err(|_| ProxyError::RouteBusy)?),
        };
        Ok(Admitted { permit, shared_rate_due })
    }

    /// The rate limit's check in the cluster's bucket, which `admit` left to
    /// do; when Redis fails, this host's own bucket decides.
    pub async fn admit_shared(&self, client: IpAddr) -> Result<(), ProxyError> {
        let (Some(shared), Some(limiter)) = (&self.shared_rate, &self.limiter) else { return Ok(()) };
        let verdict = match shared.check(client).await {
            Ok(verdict) => verdict,
            Err(_) => {
                shared.cluster().fell_back(Call::RateLimit);
                limiter.check(client)
            }
        };
        verdict.map_err(ProxyError::RateLimited)
    }

    /// Forgets idle rate-limit buckets; returns how many are still tracked.
    pub fn sweep(&self) -> usize {
        if let Some(dedupe) = &self.dedupe {
            dedupe.sweep();
        }
        self.limiter.as_ref().map_or(0, RateLimiter::sweep)
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderName;

    use super::*;
    use crate::config::TELEGRAM;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let header = SecretHeader { name: HeaderName::from_static("x-s"), value: Secret::new(b"hunter2"), strip: true };
        assert!(!format!("{header:?}").contains("hunter2"));
    }

    #[test]
    fn secret_check_distinguishes_missing_wrong_and_right() {
        let guards = Guards {
            secret_header: Some(SecretHeader {
                name: HeaderName::from_static("x-telegram-bot-api-secret-token"),
                value: Secret::new(b"s3cret"),
                strip: true,
            }),
            ..Guards::default()
        };
        let mut headers = HeaderMap::new();
        assert_eq!(guards.check_secret(&headers), Err(ProxyError::MissingSecret));
        headers.insert("x-telegram-bot-api-secret-token", "s3cre".parse().unwrap());
        assert_eq!(guards.check_secret(&headers), Err(ProxyError::WrongSecret));
        headers.insert("x-telegram-bot-api-secret-token", "s3cret".parse().unwrap());
        assert_eq!(guards.check_secret(&headers), Ok(()));
        headers.append("x-telegram-bot-api-secret-token", "s3cret".parse().unwrap());
        assert_eq!(guards.check_secret(&headers), Err(ProxyError::WrongSecret), "a repeated secret header is refused");
    }

    #[test]
    fn a_reload_keeps_the_dedupe_table_while_its_settings_stay() {
        let spec = DedupeSpec {
            key: dedupe::KeySource::TelegramUpdateId,
            window: std::time::Duration::from_secs(600),
            max_keys: 10,
        };
        let guards = Guards { dedupe: Some(spec.clone()), ..Guards::default() };
        let first = GuardState::new(&guards, None, None);
        let same = GuardState::new(&guards, Some(&first), None);
        assert!(Arc::ptr_eq(first.dedupe.as_ref().unwrap(), same.dedupe.as_ref().unwrap()));
        let changed = Guards { dedupe: Some(DedupeSpec { max_keys: 20, ..spec.clone() }), ..Guards::default() };
        let fresh = GuardState::new(&changed, Some(&same), None);
        assert!(!Arc::ptr_eq(same.dedupe.as_ref().unwrap(), fresh.dedupe.as_ref().unwrap()));
        let rekeyed = DedupeSpec { key: "form:out_trade_no".parse().unwrap(), ..spec };
        let other_key = GuardState::new(&Guards { dedupe: Some(rekeyed), ..Guards::default() }, Some(&same), None);
        assert!(!Arc::ptr_eq(same.dedupe.as_ref().unwrap(), other_key.dedupe.as_ref().unwrap()));
        assert!(GuardState::new(&Guards::default(), Some(&fresh), None).dedupe.is_none());
    }

    #[test]
    fn allowlists_match_mapped_ipv4() {
        let guards = Guards { allow_from: Some(vec![TELEGRAM[0].parse().unwrap()]), ..Guards::default() };
        assert!(guards.allows("149.154.167.1".parse().unwrap()));
        assert!(guards.allows("::ffff:149.154.167.1".parse().unwrap()));
        assert!(!guards.allows("149.154.176.1".parse().unwrap()));
    }
}

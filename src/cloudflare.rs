//! Cloudflare as a peer: its published address ranges (the built-in set
//! `cloudflare`, usable in `allow_from` and `[listen] trusted_proxies`), and
//! the diagnosis for an operator whose site is behind Cloudflare without
//! trusting it: a request refused by `allow_from` whose client (as the rule in
//! `client_ip` settled it) is a Cloudflare address that is not trusted came
//! through Cloudflare, and its real sender was never looked at. That is logged
//! at most once a minute and shown on the status page for an hour.
//!
//! Not for reading `CF-Connecting-IP`: that is `client_ip`'s rule.

use std::net::IpAddr;
use std::sync::{LazyLock, Mutex};

use ipnet::IpNet;

/// The day the ranges below were written down (from the well-known list, not
/// fetched: see `IPV4`); `hookgate check` prints it.
pub const AS_OF: &str = "2026-12-06";

/// Cloudflare's published IPv4 ranges, as https://www.cloudflare.com/ips-v4
/// lists them (15 ranges). Not fetched from there: the machine this was written
/// on had no network. They are the well-known list, written down on `AS_OF`,
/// and the same fifteen ranges, in the same order, as XBoard's
/// `app/Http/Middleware/TrustProxies.php` (cedar2025/Xboard at 3d9c7555, read
/// on that day) and several other public copies of the list. Check them against
/// the URL above, and update `AS_OF`, before a release.
pub const IPV4: [&str; 15] = [
    "173.245.48.0/20",
    "103.21.244.0/22",
    "103.22.200.0/22",
    "103.31.4.0/22",
    "141.101.64.0/18",
    "108.162.192.0/18",
    "190.93.240.0/20",
    "188.114.96.0/20",
    "197.234.240.0/22",
    "198.41.128.0/17",
    "162.158.0.0/15",
    "104.16.0.0/13",
    "104.24.0.0/14",
    "172.64.0.0/13",
    "131.0.72.0/22",
];

/// Cloudflare's published IPv6 ranges, as https://www.cloudflare.com/ips-v6
/// lists them (7 ranges); from the same well-known list as `IPV4`, not fetched.
pub const IPV6: [&str; 7] = [
    "2400:cb00::/32",
    "2606:4700::/32",
    "2803:f800::/32",
    "2405:b500::/32",
    "2405:8100::/32",
    "2a06:98c0::/29",
    "2c0f:f248::/32",
];

/// The ranges, parsed once.
pub fn ranges() -> &'static [IpNet] {
    static RANGES: LazyLock<Vec<IpNet>> =
        LazyLock::new(|| IPV4.iter().chain(&IPV6).filter_map(|net| net.parse().ok()).collect());
    &RANGES
}

/// Whether `ip` is one of Cloudflare's addresses (a v4-mapped one as IPv4).
pub fn contains(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    ranges().iter().any(|net| net.contains(&ip))
}

/// What the operator is told, in the log, on the status page and by `hookgate route`.
pub const HINT: &str = "this request came through Cloudflare; add `cloudflare` to `trusted_proxies`";

/// How often the hint is logged at most.
const LOG_EVERY_SECONDS: u64 = 60;
/// How long the status page shows the hint after the last such refusal.
const SHOW_FOR_SECONDS: u64 = 3600;

/// The last refusal the hint is about; lives across reloads (in `Metrics`).
#[derive(Default)]
pub struct Hint(Mutex<HintState>);

#[derive(Default)]
struct HintState {
    /// Unix time of the last line logged; 0 before the first.
    logged_at: u64,
    last: Option<Seen>,
}

/// One refusal: when, on which route, from which Cloudflare address.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Seen {
    pub unix_time: u64,
    pub route: String,
    /// The Cloudflare address the request came from.
    pub via: IpAddr,
    pub hint: &'static str,
}

impl Hint {
    /// Records a refusal by `allow_from` on `route` of a request from
    /// `client`, when `client` is a Cloudflare address and not `trusted`;
    /// returns whether it was one. Logs the hint at most once a minute.
    pub fn refused(&self, route: &str, client: IpAddr, trusted: impl Fn(IpAddr) -> bool, now: u64) -> bool {
        if trusted(client) || !contains(client) {
            return false;
        }
        let Ok(mut state) = self.0.lock() else { return true };
        state.last = Some(Seen { unix_time: now, route: route.to_string(), via: client, hint: HINT });
        if state.logged_at == 0 || now.saturating_sub(state.logged_at) >= LOG_EVERY_SECONDS {
            state.logged_at = now;
            tracing::warn!(route = %route, client = %client, "refused by allow_from: {HINT}");
        }
        true
    }

    /// The last refusal, if it was within the hour and its address is still
    /// not `trusted` (a reload that trusts it clears the hint).
    pub fn current(&self, trusted: impl Fn(IpAddr) -> bool, now: u64) -> Option<Seen> {
        let state = self.0.lock().ok()?;
        let seen = state.last.as_ref()?;
        let recent = now.saturating_sub(seen.unix_time) <= SHOW_FOR_SECONDS;
        (recent && !trusted(seen.via)).then(|| seen.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_are_whole_and_valid() {
        assert_eq!(ranges().len(), IPV4.len() + IPV6.len());
        for (ip, inside) in [
            ("104.16.0.1", true),
            ("::ffff:104.16.0.1", true),
            ("2606:4700::1", true),
            ("131.0.75.255", true),
            ("149.154.167.1", false),
            ("104.32.0.1", false),
        ] {
            assert_eq!(contains(ip.parse().unwrap()), inside, "{ip}");
        }
    }

    #[test]
    fn the_hint_is_logged_once_a_minute_and_cleared_by_trusting_cloudflare() {
        let hint = Hint::default();
        let none = |_: IpAddr| false;
        let cf: IpAddr = "104.16.0.1".parse().unwrap();
        assert!(!hint.refused("hook", "149.154.167.1".parse().unwrap(), none, 100), "not a Cloudflare address");
        assert!(hint.current(none, 100).is_none());
        assert!(hint.refused("hook", cf, none, 100));
        assert_eq!(hint.0.lock().unwrap().logged_at, 100);
        assert!(hint.refused("hook", cf, none, 159));
        assert_eq!(hint.0.lock().unwrap().logged_at, 100, "not again within the minute");
        assert!(hint.refused("hook", cf, none, 160));
        assert_eq!(hint.0.lock().unwrap().logged_at, 160);
        assert_eq!(hint.current(none, 200).map(|s| s.via), Some(cf));
        assert!(hint.current(none, 160 + SHOW_FOR_SECONDS + 1).is_none(), "an hour later");
        let trusting = contains;
        assert!(hint.current(trusting, 200).is_none());
        assert!(!hint.refused("hook", cf, trusting, 300), "a trusted Cloudflare hop is no mistake");
    }
}

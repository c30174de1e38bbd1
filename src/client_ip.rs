//! Which address a request comes from.
//!
//! The rule, used by the guards, the access log and nothing else:
//! - the socket peer (or the source a trusted peer sent in a PROXY protocol
//!   header) is the client, unless that address is a trusted proxy;
//! - if it is, `X-Forwarded-For` is read from the right: trusted proxies are
//!   skipped and the first untrusted address is the client. Addresses to its
//!   left were written by the client and are ignored, so they cannot be forged.
//! - If every address is trusted, the left-most one is used; if an entry is not
//!   an address, the walk stops at the last good one.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::header::HeaderName;
use ipnet::IpNet;

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Whether `peer` is one of the configured trusted proxies.
pub fn is_trusted(peer: IpAddr, trusted: &[IpNet]) -> bool {
    !trusted.is_empty() && trusted.iter().any(|net| net.contains(&peer))
}

/// The client's address by the rule above.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut client = peer;
    let values: Vec<&str> = headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).collect();
    for entry in values.iter().rev().flat_map(|v| v.rsplit(',')) {
        let Some(ip) = parse_entry(entry.trim()) else { break };
        client = ip;
        if !is_trusted(ip, trusted) {
            break;
        }
    }
    client
}

/// An `X-Forwarded-For` entry: an address, possibly with a port or brackets.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_with(peer: &str, xff: &[&str], trusted: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for v in xff {
            headers.append(X_FORWARDED_FOR, v.parse().unwrap());
        }
        let trusted: Vec<IpNet> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        resolve(peer.parse().unwrap(), &headers, &trusted).to_string()
    }

    #[test]
    fn client_ip_table() {
        let cases: &[(&str, &[&str], &[&str], &str)] = &[
            // Untrusted peer: its X-Forwarded-For is ignored, however convincing.
            ("203.0.113.9", &["149.154.160.1"], &["10.0.0.0/8"], "203.0.113.9"),
            ("203.0.113.9", &["149.154.160.1"], &[], "203.0.113.9"),
            // Trusted peer: the right-most untrusted entry.
            ("10.0.0.1", &["149.154.160.1"], &["10.0.0.0/8"], "149.154.160.1"),
            ("10.0.0.1", &["6.6.6.6, 149.154.160.1"], &["10.0.0.0/8"], "149.154.160.1"),
            ("10.0.0.1", &["149.154.160.1, 10.0.0.7"], &["10.0.0.0/8"], "149.154.160.1"),
            ("10.0.0.1", &["149.154.160.1", "10.0.0.7"], &["10.0.0.0/8"], "149.154.160.1"),
            // Forged left-most entries do not matter.
            ("10.0.0.1", &["149.154.160.1, 6.6.6.6"], &["10.0.0.0/8"], "6.6.6.6"),
            // No header, all trusted, or garbage.
            ("10.0.0.1", &[], &["10.0.0.0/8"], "10.0.0.1"),
            ("10.0.0.1", &["10.0.0.9, 10.0.0.8"], &["10.0.0.0/8"], "10.0.0.9"),
            ("10.0.0.1", &["6.6.6.6, garbage, 10.0.0.8"], &["10.0.0.0/8"], "10.0.0.8"),
            ("10.0.0.1", &["[2001:db8::1]:443"], &["10.0.0.0/8"], "2001:db8::1"),
            ("10.0.0.1", &["1.2.3.4:5678"], &["10.0.0.0/8"], "1.2.3.4"),
        ];
        for (peer, xff, trusted, want) in cases {
            assert_eq!(resolve_with(peer, xff, trusted), *want, "peer {peer} xff {xff:?}");
        }
    }
}

//! Which address a request comes from.
//!
//! The rule, used by the guards, the access log, `hookgate route --from` and
//! nothing else, over HTTP/1.1 and HTTP/2 alike:
//! - the socket peer (or the source a trusted peer sent in a PROXY protocol
//!   header) is the client, unless that address is a trusted proxy; an
//!   untrusted peer's `X-Forwarded-For` and `CF-Connecting-IP` are never read;
//! - if it is, the hops are walked back from it: first the peer, then
//!   `X-Forwarded-For` read from the right. At each trusted hop inside
//!   Cloudflare's ranges (the built-in set `cloudflare`), a `CF-Connecting-IP`
//!   holding exactly one address is the client and the walk ends: that hop is
//!   Cloudflare, which sets the header to the address that connected to it
//!   (and replaces any a client sent). A missing, repeated or malformed
//!   `CF-Connecting-IP` is passed over and the walk goes on;
//! - otherwise trusted proxies are skipped and the first untrusted address is
//!   the client. Addresses to its left were written by the client and are
//!   ignored, so they cannot be forged.
//! - If every address is trusted, the left-most one is used; if an entry is not
//!   an address, the walk stops at the last good one.
//!
//! So `CF-Connecting-IP` is believed only from a Cloudflare address that the
//! operator trusts, directly or through trusted hops: a client that reaches
//! hookgate (or a trusted proxy in front of it) without Cloudflare cannot set
//! its own address that way.
//!
//! An IPv4 client is IPv4 everywhere: `canonical` turns a v4-mapped address
//! (`::ffff:203.0.113.9`, what a dual-stack `[::]` listener reports) into plain
//! IPv4. The server applies it to the peer and the PROXY source once per
//! connection, and this rule to every address it reads from a header.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::header::HeaderName;
use ipnet::IpNet;

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const CF_CONNECTING_IP: HeaderName = HeaderName::from_static("cf-connecting-ip");

/// `[listen] trusted_proxies`, resolved to networks.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    /// The part of `nets` inside Cloudflare's ranges, worked out once so that
    /// a request through other trusted proxies never looks for `CF-Connecting-IP`.
    cloudflare: Vec<IpNet>,
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        let mut cloudflare = Vec::new();
        for net in &nets {
            for cf in crate::cloudflare::ranges() {
                // Two CIDR blocks are nested or apart: their overlap is the smaller one.
                if cf.contains(net) {
                    cloudflare.push(*net);
                } else if net.contains(cf) {
                    cloudflare.push(*cf);
                }
            }
        }
        TrustedProxies { nets, cloudflare }
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies.
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        if self.nets.is_empty() {
            return false;
        }
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client `CF-Connecting-IP` names, when `hop` is a trusted
    /// Cloudflare address and the header holds exactly one address.
    fn cloudflare_client(&self, hop: IpAddr, headers: &HeaderMap) -> Option<IpAddr> {
        if !self.cloudflare.iter().any(|net| net.contains(&hop)) {
            return None;
        }
        let mut values = headers.get_all(&CF_CONNECTING_IP).iter();
        match (values.next(), values.next()) {
            (Some(one), None) => one.to_str().ok()?.trim().parse().ok().map(canonical),
            _ => None,
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) as the IPv4 address it is.
#[inline]
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `peer` with its address made canonical, the port kept.
pub fn canonical_peer(peer: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical(peer.ip()), peer.port())
}

/// The client's address by the rule above.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = canonical(peer);
    if !trusted.contains(peer) {
        return peer;
    }
    if let Some(client) = trusted.cloudflare_client(peer, headers) {
        return client;
    }
    let mut client = peer;
    // Lines as bytes: one with a byte past ASCII (a client's, passed on by
    // nginx's `$proxy_add_x_forwarded_for` on the line with the real
    // address) is read entry by entry like any other, not skipped whole.
    let values: Vec<&[u8]> = headers.get_all(&X_FORWARDED_FOR).iter().map(|v| v.as_bytes()).collect();
    for entry in values.iter().rev().flat_map(|v| v.rsplit(|&b| b == b',')) {
        let Some(ip) = std::str::from_utf8(entry.trim_ascii()).ok().and_then(parse_entry) else { break };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
        if let Some(cloudflare_says) = trusted.cloudflare_client(ip, headers) {
            return cloudflare_says;
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
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_with(peer: &str, xff: &[&str], trusted: &[&str]) -> String {
        resolve_cf(peer, xff, &[], trusted)
    }

    fn resolve_cf(peer: &str, xff: &[&str], cf: &[&str], trusted: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for v in xff {
            headers.append(X_FORWARDED_FOR, v.parse().unwrap());
        }
        for v in cf {
            headers.append(CF_CONNECTING_IP, v.parse().unwrap());
        }
        let mut nets: Vec<IpNet> = Vec::new();
        for t in trusted {
            match *t {
                "cloudflare" => nets.extend(crate::cloudflare::ranges()),
                t => nets.push(t.parse().unwrap_or_else(|_| IpNet::from(t.parse::<IpAddr>().unwrap()))),
            }
        }
        resolve(peer.parse().unwrap(), &headers, &TrustedProxies::new(nets)).to_string()
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
            // v4-mapped addresses are IPv4, from the peer and from the header alike.
            ("::ffff:10.0.0.1", &["::ffff:149.154.160.1"], &["10.0.0.0/8"], "149.154.160.1"),
            ("::ffff:203.0.113.9", &[], &[], "203.0.113.9"),
            ("10.0.0.1", &["[::ffff:149.154.160.1]:443"], &["10.0.0.0/8"], "149.154.160.1"),
        ];
        for (peer, xff, trusted, want) in cases {
            assert_eq!(resolve_with(peer, xff, trusted), *want, "peer {peer} xff {xff:?}");
        }
    }

    /// A line with a byte past ASCII (a client's own value, on the line nginx
    /// adds the real address to) is read entry by entry: skipped whole, it
    /// made the trusted proxy the client (found by a hostile probe: past an
    /// `allow_from` naming loopback).
    #[test]
    fn a_line_with_bytes_past_ascii_is_read_entry_by_entry() {
        let trusted = TrustedProxies::new(vec!["127.0.0.1/32".parse().unwrap()]);
        let cases: &[(&[&[u8]], &str)] = &[
            (&[b"\x80, 203.0.113.7"], "203.0.113.7"),
            (&[b"a\xe9b, 203.0.113.7"], "203.0.113.7"),
            (&[b"203.0.113.7, \x80"], "127.0.0.1"),
            (&[b"149.154.167.1", b"\x80"], "127.0.0.1"),
        ];
        for (lines, want) in cases {
            let mut headers = HeaderMap::new();
            for line in *lines {
                headers.append(X_FORWARDED_FOR, http::HeaderValue::from_bytes(line).unwrap());
            }
            let client = resolve("127.0.0.1".parse().unwrap(), &headers, &trusted);
            assert_eq!(client.to_string(), *want, "{lines:?}");
        }
    }

    /// peer, `X-Forwarded-For` values, `CF-Connecting-IP` values, trusted, the client.
    type CfCase<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a [&'a str], &'a str);

    /// `CF-Connecting-IP`: believed from a trusted Cloudflare hop only.
    #[test]
    fn cf_connecting_ip_table() {
        const CF: &[&str] = &["cloudflare", "127.0.0.1"];
        let cases: &[CfCase] = &[
            // Cloudflare trusted, connecting directly: its header names the client.
            ("104.16.0.1", &[], &["149.154.167.1"], CF, "149.154.167.1"),
            ("104.16.0.1", &["6.6.6.6, 91.108.4.9"], &["149.154.167.1"], CF, "149.154.167.1"),
            ("2606:4700::1", &[], &["2001:db8::7"], CF, "2001:db8::7"),
            ("104.16.0.1", &[], &[" ::ffff:149.154.167.1 "], CF, "149.154.167.1"),
            // Through a trusted local proxy that names the Cloudflare hop in X-Forwarded-For.
            ("127.0.0.1", &["149.154.167.1, 104.16.0.1"], &["149.154.167.1"], CF, "149.154.167.1"),
            ("127.0.0.1", &["1.1.1.1, 104.16.0.1"], &["149.154.167.1"], CF, "149.154.167.1"),
            // ... but not when the hop before the trusted proxy is not Cloudflare: forged.
            ("127.0.0.1", &["104.16.0.1, 6.6.6.6"], &["149.154.167.1"], CF, "6.6.6.6"),
            ("127.0.0.1", &[], &["149.154.167.1"], CF, "127.0.0.1"),
            // Malformed, repeated or absent: X-Forwarded-For as without it.
            ("104.16.0.1", &["149.154.167.2"], &["not-an-ip"], CF, "149.154.167.2"),
            ("104.16.0.1", &["149.154.167.2"], &["149.154.167.1, 1.2.3.4"], CF, "149.154.167.2"),
            ("104.16.0.1", &["149.154.167.2"], &["149.154.167.1", "1.2.3.4"], CF, "149.154.167.2"),
            ("104.16.0.1", &["149.154.167.2"], &[], CF, "149.154.167.2"),
            ("104.16.0.1", &[], &["149.154.167.1:443"], CF, "104.16.0.1"),
            // Untrusted peer, Cloudflare's or not: the header is ignored.
            ("104.16.0.1", &[], &["149.154.167.1"], &["127.0.0.1"], "104.16.0.1"),
            ("203.0.113.9", &[], &["149.154.167.1"], CF, "203.0.113.9"),
            ("203.0.113.9", &[], &["149.154.167.1"], &[], "203.0.113.9"),
            // Trusted, but not as Cloudflare (a range outside its set): X-Forwarded-For only.
            ("10.0.0.1", &["149.154.167.2"], &["149.154.167.1"], &["10.0.0.0/8"], "149.154.167.2"),
            // Trusting part of Cloudflare's range is trusting that part as Cloudflare.
            ("104.16.0.1", &[], &["149.154.167.1"], &["104.16.0.0/24"], "149.154.167.1"),
            ("104.17.0.1", &[], &["149.154.167.1"], &["104.16.0.0/24"], "104.17.0.1"),
        ];
        for (peer, xff, cf, trusted, want) in cases {
            assert_eq!(
                resolve_cf(peer, xff, cf, trusted),
                *want,
                "peer {peer} xff {xff:?} cf {cf:?} trusted {trusted:?}"
            );
        }
    }
}

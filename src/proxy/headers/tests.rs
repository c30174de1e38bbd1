//! Hop-by-hop removal, forwarding headers and trailer rules, table by table.

use super::*;

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    h
}

#[test]
fn strips_hop_by_hop_and_connection_named_headers() {
    let mut h = map(&[
        ("connection", "keep-alive, X-Secret"),
        ("connection", "x-other"),
        ("keep-alive", "timeout=5"),
        ("x-secret", "1"),
        ("x-other", "2"),
        ("te", "trailers"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("proxy-connection", "keep-alive"),
        ("x-kept", "3"),
    ]);
    strip_hop_by_hop(&mut h);
    let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
    assert_eq!(left, ["x-kept"]);
}

/// A `Connection` header naming the framing or the host removes neither.
#[test]
fn connection_never_removes_framing_or_host() {
    let mut h = map(&[
        ("connection", "Content-Length, HOST, transfer-encoding, x-gone"),
        ("content-length", "48"),
        ("host", "a"),
        ("x-gone", "1"),
    ]);
    strip_hop_by_hop(&mut h);
    let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, ["content-length", "host"]);
}

/// The length filter in `is_hop_by_hop` must let every hop-by-hop name through.
#[test]
fn every_hop_by_hop_name_is_recognised_in_any_case() {
    let hop_by_hop = [
        header::CONNECTION,
        header::TE,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
    ];
    for name in hop_by_hop {
        assert!(is_hop_by_hop(name.as_str().as_bytes()), "{name}");
        assert!(is_hop_by_hop(name.as_str().to_ascii_uppercase().as_bytes()), "{name}");
    }
    for name in ["host", "content-length", "x-forwarded-for", "connections", "tee", "trailer", "keep_alive"] {
        assert!(!is_hop_by_hop(name.as_bytes()), "{name}");
    }
}

#[test]
fn untrusted_peer_cannot_forge_forwarding_headers() {
    let mut h = map(&[
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil"),
        ("forwarded", "for=1.2.3.4"),
    ]);
    let host = HeaderValue::from_static("www.example.com");
    let added = forwarded(&mut h, &HeaderValue::from_static("127.0.0.9"), false, "http", Some(&host), Version::HTTP_11);
    assert!(h.is_empty(), "every client claim is gone before anything is added: {h:?}");
    let pairs: Vec<(&str, &[u8])> = added.pairs().collect();
    assert_eq!(
        pairs,
        [
            ("x-forwarded-for", &b"127.0.0.9"[..]),
            ("x-forwarded-proto", b"http"),
            ("x-forwarded-host", b"www.example.com"),
            ("via", b"1.1 hookgate"),
        ]
    );
    added.insert_into(&mut h);
    assert_eq!(h["x-forwarded-for"], "127.0.0.9");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "www.example.com");
    assert!(!h.contains_key("forwarded"));
}

#[test]
fn trusted_peer_extends_the_chain() {
    let mut h = map(&[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "5.6.7.8"), ("x-forwarded-proto", "https")]);
    let added = forwarded(&mut h, &HeaderValue::from_static("10.0.0.1"), true, "http", None, Version::HTTP_2);
    let pairs: Vec<(&str, &[u8])> = added.pairs().collect();
    assert_eq!(pairs, [("x-forwarded-for", &b"1.2.3.4, 5.6.7.8, 10.0.0.1"[..]), ("via", b"2 hookgate")]);
    added.insert_into(&mut h);
    assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
    assert_eq!(h["x-forwarded-for"], "1.2.3.4, 5.6.7.8, 10.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["via"], "2 hookgate", "received as HTTP/2 (RFC 9110 §7.6.3)");
    // A line with a byte past ASCII is kept whole, the real address after it too.
    let mut h = HeaderMap::new();
    h.append("x-forwarded-for", HeaderValue::from_bytes(b"\x80, 203.0.113.7").unwrap());
    let added = forwarded(&mut h, &HeaderValue::from_static("10.0.0.1"), true, "http", None, Version::HTTP_11);
    let pairs: Vec<(&str, &[u8])> = added.pairs().collect();
    assert_eq!(pairs[0], ("x-forwarded-for", &b"\x80, 203.0.113.7, 10.0.0.1"[..]));
}

#[test]
fn via_names_the_protocol_the_request_came_in() {
    assert_eq!(request_via(Version::HTTP_10), "1.0 hookgate");
    assert_eq!(request_via(Version::HTTP_11), "1.1 hookgate");
    assert_eq!(request_via(Version::HTTP_2), "2 hookgate");
}

//! Header rewriting between client and upstream.
//!
//! Hop-by-hop headers belong to one connection and are removed in both
//! directions (RFC 9110 §7.6.1), together with every header the `Connection`
//! header names, except the fields that frame or address the message: those
//! are never hop-by-hop, whatever `Connection` says. A transfer coding other
//! than `chunked` cannot be passed on (the header is hop-by-hop) and is
//! refused. `X-Forwarded-*` are set from the socket; values a client sent are
//! kept only when its peer address is a configured trusted proxy. `Via` is
//! added as RFC 9110 §7.6.3 asks of a proxy.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Version};
use http_body::Body;

use crate::client_ip::X_FORWARDED_FOR;
use crate::error::ProxyError;

pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORWARDED: HeaderName = header::FORWARDED;
const VIA_VALUE: &str = "1.1 hookgate";

/// Fields a `Connection` header may name but never remove: a message's
/// framing (RFC 9112 §6.3) and its target host are not the connection's to
/// drop. Removing `Content-Length` while forwarding the body let the body be
/// read as a request of its own upstream (request smuggling). Nor are the
/// claims a trusted proxy makes about the client: hookgate believed them
/// when it chose the client, and a client naming `X-Forwarded-For` in the
/// `Connection` the proxy passed on would otherwise take the proxy's chain
/// away from the upstream, which would see the proxy as the client.
const NEVER_HOP_BY_HOP: [&str; 11] = [
    "content-length",
    "transfer-encoding",
    "host",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "forwarded",
    "x-real-ip",
    "cf-connecting-ip",
];

/// What a client may claim about its own hop, believed only from a trusted
/// proxy: from any other peer each is dropped before the request goes
/// upstream. Laravel's `TrustProxies` (XBoard's) reads the `X-Forwarded-*`
/// family and `Forwarded` from hookgate, which it trusts.
const HOP_CLAIMS: [HeaderName; 7] = [
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-forwarded-prefix"),
    FORWARDED,
    HeaderName::from_static("x-real-ip"),
];

/// Whether a `Connection` token names a header hookgate removes: any field
/// but those in `NEVER_HOP_BY_HOP` (RFC 9110 §7.6.1).
pub fn is_removable_token(token: &[u8]) -> bool {
    !NEVER_HOP_BY_HOP.iter().any(|kept| token.eq_ignore_ascii_case(kept.as_bytes()))
}

/// The comma-separated tokens of every `Connection` header, trimmed.
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers.get_all(header::CONNECTION).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).map(str::trim)
}

/// True when the `Connection` header contains `token`.
pub fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    connection_tokens(headers).any(|t| t.eq_ignore_ascii_case(token))
}

/// Whether `name`, a token in any case (a header name as httparse or
/// `HeaderName` checked it), is a hop-by-hop header that is always removed
/// (RFC 9110 §7.6.1, plus the non-standard `Keep-Alive` and
/// `Proxy-Connection` that clients still send). `Trailer` is not one (RFC
/// 9110 §6.6.2): it goes with the trailer fields, which pass, and hyper's
/// client sends only the trailers it declares.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    // The length picks the names it can be, so at most two are compared.
    match name.len() {
        2 => token_is(name, b"te"),
        7 => token_is(name, b"upgrade"),
        10 => token_is(name, b"connection") || token_is(name, b"keep-alive"),
        16 => token_is(name, b"proxy-connection"),
        17 => token_is(name, b"transfer-encoding"),
        18 => token_is(name, b"proxy-authenticate"),
        19 => token_is(name, b"proxy-authorization"),
        _ => false,
    }
}

/// Whether `name`, a token, is `lower` (lower-case letters, digits and `-`)
/// in any case. Setting bit 0x20 lowers a letter and keeps a digit or `-`,
/// and turns no other token byte into one of them (only CR, which is no
/// token byte, would become `-`).
pub fn token_is(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len() && name.iter().zip(lower).all(|(&byte, &want)| byte | 0x20 == want)
}

/// A response hyper accepted from `upstream` that must not be passed on
/// (see `unforwardable`) is the upstream's fault: logged, and answered 502.
/// Both paths through hyper's client check here.
pub fn check_forwardable(upstream: &str, status: http::StatusCode, headers: &HeaderMap) -> Result<(), ProxyError> {
    match unforwardable(status, headers) {
        None => Ok(()),
        Some(why) => {
            tracing::warn!(upstream = %upstream, "upstream sent an invalid response head: {why}");
            Err(ProxyError::UpstreamBroken)
        }
    }
}

/// Why a response hyper accepted from an upstream cannot be passed on, if it
/// cannot (then it is a 502), as the engine's own parser refuses the same:
/// a status outside 100-599 (RFC 9110 §15; hyper takes up to 999), or a
/// transfer coding other than `chunked`.
fn unforwardable(status: http::StatusCode, headers: &HeaderMap) -> Option<&'static str> {
    if status.as_u16() >= 600 {
        return Some("status code outside 100-599");
    }
    has_foreign_transfer_coding(headers).then_some("Transfer-Encoding other than chunked")
}

/// Whether a message carries a transfer coding other than `chunked` (after
/// hyper has taken its chunked framing off). `Transfer-Encoding` is
/// hop-by-hop, so forwarding the body without it would silently drop a coding
/// hookgate cannot undo (RFC 9112 §6.1): such a response is refused instead.
fn has_foreign_transfer_coding(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .any(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case(b"chunked"))
}

/// Removes hop-by-hop headers and every header named in `Connection`.
/// Returns whether there were any.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) -> bool {
    // One pass over the names finds what to remove: removing by name hashes
    // every time, and most requests have no hop-by-hop header at all.
    let mut doomed: Vec<HeaderName> = Vec::new();
    for name in headers.keys() {
        if is_hop_by_hop(name.as_str().as_bytes()) {
            doomed.push(name.clone());
        }
    }
    if doomed.is_empty() {
        return false;
    }
    doomed.extend(
        connection_tokens(headers)
            .filter(|t| is_removable_token(t.as_bytes()))
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok()),
    );
    for name in doomed {
        headers.remove(name);
    }
    true
}

/// Whether a field may travel in a trailer (RFC 9110 §6.5.1): not framing,
/// routing or authentication, nor a hop-by-hop field, nor one hookgate sets
/// itself (`X-Forwarded-*`, `Forwarded`, `Via`), nor a name with `_` (dropped
/// from request heads too): an upstream that merges trailers into its
/// headers would otherwise take them for the head's.
pub fn may_trail(name: &[u8]) -> bool {
    const FORBIDDEN: [&str; 15] = [
        "content-length",
        "transfer-encoding",
        "host",
        "trailer",
        "authorization",
        "cookie",
        "expect",
        "max-forwards",
        "content-encoding",
        "content-type",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "forwarded",
        "via",
    ];
    !FORBIDDEN.iter().any(|f| name.eq_ignore_ascii_case(f.as_bytes())) && !name.contains(&b'_') && !is_hop_by_hop(name)
}

/// One header line as HTTP/1.1 spells it.
pub fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The request line of a request sent upstream: always in origin form and HTTP/1.1.
pub fn write_request_line(out: &mut Vec<u8>, parts: &Parts) {
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
}

/// `Via` for a request received as `version`: RFC 9110 §7.6.3 names the
/// protocol the message was received with (`2` for HTTP/2, `1.0`), not the
/// one it is sent on.
fn request_via(version: Version) -> &'static str {
    match version {
        Version::HTTP_2 => "2 hookgate",
        Version::HTTP_10 => "1.0 hookgate",
        _ => VIA_VALUE,
    }
}

/// Frames a request for hyper's HTTP/1.1 client, which picks the framing
/// from the head it is given:
/// - a `GET`, `HEAD` or `CONNECT` body of unknown length (no
///   `content-length`, as an HTTP/2 client or a chunked HTTP/1.1 one may
///   send) goes out only when the head says `Transfer-Encoding: chunked`;
///   without, hyper assumes there is none and drops what comes (other
///   methods it chunks by itself);
/// - declared trailers (`Trailer`) need chunked framing too: an HTTP/2
///   request may carry both a `content-length` and trailers, and with the
///   length hyper would drop them. The length goes; the body is the same.
pub fn frame_for_hyper(parts: &mut Parts, body: &impl Body) {
    if body.is_end_stream() {
        return;
    }
    let has_length = parts.headers.contains_key(header::CONTENT_LENGTH);
    let unknown_length = body.size_hint().exact().is_none() && !has_length;
    let bodiless_method = matches!(parts.method, Method::GET | Method::HEAD | Method::CONNECT);
    let trailers_after_length = has_length && parts.headers.contains_key(header::TRAILER);
    if (unknown_length && bodiless_method) || trailers_after_length {
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    }
}

/// Appends this hop to a response's `Via`: every upstream answers in HTTP/1.1.
pub fn add_via(headers: &mut HeaderMap) {
    headers.append(header::VIA, HeaderValue::from_static(VIA_VALUE));
}

/// The request headers hookgate adds itself: `X-Forwarded-For`, `-Proto`,
/// `-Host` and `Via`. They are kept beside the head, not in its map: the
/// engine writes them straight after the client's headers (`pairs`), and the
/// hyper paths insert them (`insert_into`). Inserting into the map cost four
/// hash probes per request for headers that are only ever written out.
#[derive(Debug)]
pub struct Added {
    forwarded_for: HeaderValue,
    /// `None` when a trusted proxy's own value stays in the head.
    proto: Option<&'static str>,
    /// `None` when there is no host to name, or a trusted proxy's value stays.
    host: Option<HeaderValue>,
    via: &'static str,
}

impl Added {
    /// Name and value of each added header, in the order they go out.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &[u8])> {
        [
            Some(("x-forwarded-for", self.forwarded_for.as_bytes())),
            self.proto.map(|proto| ("x-forwarded-proto", proto.as_bytes())),
            self.host.as_ref().map(|host| ("x-forwarded-host", host.as_bytes())),
            Some(("via", self.via.as_bytes())),
        ]
        .into_iter()
        .flatten()
    }

    /// Puts the added headers into `headers`, for a head a library sends.
    pub fn insert_into(self, headers: &mut HeaderMap) {
        headers.insert(X_FORWARDED_FOR, self.forwarded_for);
        if let Some(proto) = self.proto {
            headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
        }
        if let Some(host) = self.host {
            headers.insert(X_FORWARDED_HOST, host);
        }
        headers.append(header::VIA, HeaderValue::from_static(self.via));
    }
}

/// Works out `X-Forwarded-For`, `-Proto`, `-Host` and `Via` for the upstream
/// of a request `received` as that version, and takes out of `headers` every
/// client value they replace.
///
/// From an untrusted peer every client-supplied value (and the rest of
/// `HOP_CLAIMS`) is dropped, so the upstream can believe what it reads. From a trusted proxy the
/// chain is extended with the peer, and its `-Proto`/`-Host` are kept.
pub fn forwarded(
    headers: &mut HeaderMap,
    peer: &HeaderValue,
    trusted: bool,
    proto: &'static str,
    host: Option<&HeaderValue>,
    received: Version,
) -> Added {
    let via = request_via(received);
    if !trusted {
        // Most requests carry none of them: one pass over the names instead of a probe each.
        if headers.keys().any(|name| HOP_CLAIMS.contains(name)) {
            for name in HOP_CLAIMS {
                headers.remove(name);
            }
        }
        return Added { forwarded_for: peer.clone(), proto: Some(proto), host: host.cloned(), via };
    }
    let mut earlier = headers.get_all(&X_FORWARDED_FOR).iter().peekable();
    let forwarded_for = if earlier.peek().is_none() {
        peer.clone()
    } else {
        // Every line whole, bytes past ASCII too (the chain must not lose the
        // address a proxy wrote after a client's own value): valid values
        // joined by ", " are a valid value.
        let mut chain = Vec::new();
        for line in earlier {
            chain.extend_from_slice(line.as_bytes());
            chain.extend_from_slice(b", ");
        }
        chain.extend_from_slice(peer.as_bytes());
        HeaderValue::from_bytes(&chain).unwrap_or_else(|_| peer.clone())
    };
    headers.remove(&X_FORWARDED_FOR);
    Added {
        forwarded_for,
        proto: (!headers.contains_key(&X_FORWARDED_PROTO)).then_some(proto),
        host: if headers.contains_key(&X_FORWARDED_HOST) { None } else { host.cloned() },
        via,
    }
}

#[cfg(test)]
mod tests;

//! The admit phase: what the head itself must get right before routing
//! (Host, framing headers, the declared body length, and for HTTP/2 clients
//! the field rules hyper leaves to its user).

use http::Version;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;

use crate::error::{BadRequest, ProxyError};

/// What a head's framing and `Host`/`Upgrade` fields say, found once: the
/// HTTP/1 engine's parser notes it line by line as it reads the head (so a
/// proxied request looks none of it up in the map again), and for HTTP/2
/// requests it is read from the map (`from_map`).
#[derive(Debug, PartialEq, Eq)]
pub struct HeadFacts {
    /// The `Host` field's value when there is exactly one.
    pub host: Option<HeaderValue>,
    /// How many `Host` fields there are (counted up to 2).
    pub hosts: u8,
    /// `Transfer-Encoding` is absent or one `chunked`.
    pub framing_ok: bool,
    /// The declared body length, when `Content-Length` is one number.
    pub content_length: Option<u64>,
    /// An HTTP/1.1 request has an `Upgrade` field (only HTTP/1.1 can upgrade).
    pub upgrade: bool,
}

impl HeadFacts {
    /// The facts of a head received as `version` with `headers`.
    pub fn from_map(headers: &HeaderMap, version: Version) -> HeadFacts {
        let mut hosts = headers.get_all(header::HOST).iter();
        let (host, second) = (hosts.next(), hosts.next());
        let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter();
        let framing_ok = match (codings.next(), codings.next()) {
            (None, _) => true,
            // One coding, `chunked`; empty list elements are ignored (RFC 9110 §5.6.1), as by the HTTP/1 parser.
            (Some(value), None) => {
                let mut listed =
                    value.as_bytes().split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|c| !c.is_empty());
                listed.next().is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")) && listed.next().is_none()
            }
            _ => false,
        };
        HeadFacts {
            host: host.filter(|_| second.is_none()).cloned(),
            hosts: u8::from(host.is_some()) + u8::from(second.is_some()),
            framing_ok,
            content_length: headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok()),
            upgrade: version == Version::HTTP_11 && headers.contains_key(header::UPGRADE),
        }
    }
}

/// The request's host: the absolute-form authority if there is one (RFC 9112
/// §3.2.2), else the single `Host` header. HTTP/1.1 without one is refused,
/// and any request with two, whatever the form of its target (RFC 9112 §3.2:
/// an absolute-form target does not excuse them).
pub fn request_host(req: &Parts, facts: &HeadFacts) -> Result<Option<HeaderValue>, ProxyError> {
    if facts.hosts > 1 {
        return Err(ProxyError::BadRequest(BadRequest::RepeatedHost));
    }
    if facts.hosts == 0 && req.version == Version::HTTP_11 {
        return Err(ProxyError::BadRequest(BadRequest::MissingHost));
    }
    if let Some(authority) = req.uri.authority() {
        // The target's authority wins, but a Host field still has to be a valid one (RFC 9112 §3.2).
        if let Some(host) = &facts.host
            && host.to_str().ok().and_then(crate::canonical::normalize_host).is_none()
        {
            return Err(ProxyError::BadRequest(BadRequest::InvalidHost));
        }
        if !matches!(req.uri.scheme_str(), Some("http" | "https")) {
            return Err(ProxyError::BadRequest(BadRequest::ForeignTarget));
        }
        let value = HeaderValue::from_str(authority.as_str());
        return value.map(Some).map_err(|_| ProxyError::BadRequest(BadRequest::InvalidHost));
    }
    match (&facts.host, facts.hosts) {
        (Some(host), 1) => Ok(Some(host.clone())),
        (_, 0) if req.version == Version::HTTP_10 => Ok(None),
        (_, 0) => Err(ProxyError::BadRequest(BadRequest::MissingHost)),
        _ => Err(ProxyError::BadRequest(BadRequest::RepeatedHost)),
    }
}

/// Refuses a method with a lower-case letter (see `BadRequest::MethodCase`).
#[inline]
pub fn check_method(method: &http::Method) -> Result<(), ProxyError> {
    match method.as_str().bytes().any(|b| b.is_ascii_lowercase()) {
        true => Err(ProxyError::BadRequest(BadRequest::MethodCase)),
        false => Ok(()),
    }
}

/// Refuses any `Transfer-Encoding` other than a single `chunked`: codings
/// hookgate does not decode would make the body's end ambiguous.
pub(super) fn check_framing(facts: &HeadFacts) -> Result<(), ProxyError> {
    match facts.framing_ok {
        true => Ok(()),
        false => Err(ProxyError::BadRequest(BadRequest::TransferEncoding)),
    }
}

/// Holds an HTTP/2 request's fields to the rules hyper does not check, before
/// anything matches on them, so a route sees what the upstream will see:
/// - a value with leading or trailing whitespace is malformed (RFC 9113
///   §8.2.1) and refused: an HTTP/1.1 upstream would trim it, so it could
///   slip past a route that matches the trimmed value;
/// - `content-length` more than once is refused, as over HTTP/1.1;
/// - several `cookie` fields become one, joined by "; " (RFC 9113 §8.2.3),
///   since an HTTP/1.1 upstream may keep only one `Cookie` line;
/// - `expect` is dropped: it is hookgate's to answer, and hyper's HTTP/2
///   server cannot send a `100 Continue` (its client sends the body after a
///   wait of its own: curl's is 1 s);
/// - more fields than `max_headers` (counted once the cookies are joined, as
///   an HTTP/1.1 head would carry them) are refused with 431, as over HTTP/1.1;
/// - fields whose names have `_` are dropped, as over HTTP/1.1;
/// - a `host` field naming another host than `:authority` is refused (RFC
///   9113 §8.3.1), so nothing downstream can route or log by the one while
///   the upstream is told the other. Only the names are compared (routes match
///   on names; the upstream gets `:authority` whole).
pub fn hold_to_http2_field_rules(parts: &mut Parts, max_headers: usize) -> Result<(), ProxyError> {
    if let (Some(authority), Some(host)) = (parts.uri.authority(), parts.headers.get(header::HOST))
        // A host that is no valid host at all is refused by `request_host` (400 invalid Host).
        && let Some(host_name) = host.to_str().ok().and_then(crate::canonical::normalize_host)
        && crate::canonical::normalize_host(authority.as_str()).is_none_or(|name| name != host_name)
    {
        return Err(ProxyError::BadRequest(BadRequest::HostNotAuthority));
    }
    let headers = &mut parts.headers;
    let padded = |v: &HeaderValue| {
        let bytes = v.as_bytes();
        [bytes.first(), bytes.last()].into_iter().flatten().any(|b| matches!(b, b' ' | b'\t'))
    };
    if headers.values().any(padded) || headers.get_all(header::CONTENT_LENGTH).iter().nth(1).is_some() {
        return Err(ProxyError::BadRequest(BadRequest::Malformed));
    }
    let mut cookies = headers.get_all(header::COOKIE).iter();
    if let (Some(first), Some(_)) = (cookies.next(), cookies.next()) {
        let mut joined = first.as_bytes().to_vec();
        for cookie in headers.get_all(header::COOKIE).iter().skip(1) {
            joined.extend_from_slice(b"; ");
            joined.extend_from_slice(cookie.as_bytes());
        }
        let joined = HeaderValue::from_bytes(&joined).map_err(|_| ProxyError::BadRequest(BadRequest::Malformed))?;
        headers.insert(header::COOKIE, joined);
    }
    headers.remove(header::EXPECT);
    let fields = headers.len();
    // Names with `_` are dropped, as over HTTP/1.1 (see `http1::head`); an empty list allocates nothing.
    let underscored: Vec<HeaderName> = headers.keys().filter(|n| n.as_str().contains('_')).cloned().collect();
    for name in underscored {
        headers.remove(name);
    }
    match fields > max_headers {
        true => Err(ProxyError::TooManyFields),
        false => Ok(()),
    }
}

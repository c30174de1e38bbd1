//! A request's context as the request path fills it in (`RequestContext`),
//! and the route it was counted under (`RouteRef`). The access line and the
//! route's metrics read it when the response ends.

use std::net::IpAddr;
use std::sync::Arc;

use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Method, Uri, Version};
use tokio::sync::OwnedSemaphorePermit;

use crate::client_ip::{self, TrustedProxies};
use crate::connection::ConnContext;
use crate::error::ProxyError;

/// Which route a request was counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteRef {
    /// Refused before a route was chosen (bad target, bad Host, ...).
    Unrouted,
    Default,
    Route(usize),
}

/// One request's context: who sent it and what, the route and upstream it
/// was given, the error hookgate answered, and the route's in-flight slot.
/// Planning fills it in; the response's `Delivery` holds it and writes the
/// access-log line from it.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The client as resolved through trusted proxies (see `client_ip`).
    pub client: IpAddr,
    /// `client` as text when it is the connection's peer (made once per
    /// connection), so the line does not format the address again.
    pub client_text: Option<HeaderValue>,
    /// The route's `max_in_flight` slot, held until the response ends.
    pub permit: Option<Arc<OwnedSemaphorePermit>>,
    pub method: Method,
    pub host: LineText,
    pub path: LineText,
    /// The protocol the request came in: `HTTP/1.0`, `HTTP/1.1`, `HTTP/2`, or `-` if unknown.
    pub proto: &'static str,
    pub route_ref: RouteRef,
    /// `None` before routing or for `[default]`.
    pub route: Option<Arc<str>>,
    /// `None` for requests answered by hookgate itself.
    pub upstream: Option<Arc<str>>,
    /// The error hookgate answered with, if it did.
    pub error: Option<ProxyError>,
}

impl RequestContext {
    /// The line as far as the head tells, before routing.
    pub fn new(
        trusted: &TrustedProxies,
        conn: &ConnContext,
        method: &Method,
        headers: &HeaderMap,
        path: LineText,
    ) -> Self {
        let client = client_ip::resolve(conn.peer.ip(), headers, trusted);
        RequestContext {
            client,
            client_text: (client == conn.peer.ip()).then(|| conn.peer_value.clone()),
            permit: None,
            method: method.clone(),
            host: LineText::default(),
            path,
            proto: "-",
            route_ref: RouteRef::Unrouted,
            route: None,
            upstream: None,
            error: None,
        }
    }

    pub fn route_name(&self) -> &str {
        match (&self.route, self.route_ref) {
            (Some(name), _) => name,
            (None, RouteRef::Default) => "default",
            (None, _) => "-",
        }
    }

    /// The access line's name for `version`.
    pub fn set_proto(&mut self, version: Version) {
        self.proto = match version {
            Version::HTTP_10 => "HTTP/1.0",
            Version::HTTP_11 => "HTTP/1.1",
            Version::HTTP_2 => "HTTP/2",
            _ => "-",
        };
    }

    /// `-` when the head named no host or could not be read, as other unknown fields.
    pub fn host_name(&self) -> &str {
        dash_if_empty(self.host.as_str())
    }

    /// `-` when the target has no path (an authority-form CONNECT target).
    pub fn path_name(&self) -> &str {
        dash_if_empty(self.path.as_str())
    }

    pub fn upstream_name(&self) -> &str {
        self.upstream.as_deref().unwrap_or("-")
    }
}

/// How the line shows a field it has no text for.
fn dash_if_empty(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

/// A request's host or path as its line shows it: most often the request's
/// own bytes, shared rather than copied, so a request allocates no text for
/// its line.
#[derive(Debug, Clone)]
pub enum LineText {
    Static(&'static str),
    /// The path of a request's target.
    Path(PathAndQuery),
    /// The first `len` bytes of a header value: a `Host` without its port.
    Prefix(HeaderValue, u16),
    Owned(Box<str>),
}

impl Default for LineText {
    fn default() -> Self {
        LineText::Static("")
    }
}

impl LineText {
    /// The path of `uri`, as received (`Uri::path`'s text).
    pub fn path_of(uri: &Uri) -> LineText {
        match uri.path_and_query() {
            Some(target) => LineText::Path(target.clone()),
            // An absolute target without a path means `/`; an authority-form one has none.
            None => LineText::Static(if uri.scheme().is_some() { "/" } else { "" }),
        }
    }

    /// `text`, shared with `value` when it is the start of it (as a host
    /// name normalised without change but for a port), else copied.
    pub fn within(value: &HeaderValue, text: &str) -> LineText {
        match u16::try_from(text.len()) {
            Ok(len) if value.as_bytes().starts_with(text.as_bytes()) => LineText::Prefix(value.clone(), len),
            _ => LineText::Owned(text.into()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            LineText::Static(text) => text,
            LineText::Path(target) => target.path(),
            // Made from a slice of the value's text (see `within`), so it is valid UTF-8.
            LineText::Prefix(value, len) => {
                value.as_bytes().get(..usize::from(*len)).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or("-")
            }
            LineText::Owned(text) => text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_text_reads_as_the_text_it_stands_for() {
        for target in ["/a/b?q=1", "http://h", "http://h/x?y", "h:443", "*"] {
            let uri: Uri = target.parse().unwrap();
            assert_eq!(LineText::path_of(&uri).as_str(), uri.path(), "{target}");
        }
        let value = HeaderValue::from_static("example.com:8080");
        let host = LineText::within(&value, "example.com");
        assert!(matches!(host, LineText::Prefix(..)) && host.as_str() == "example.com");
        let lowered = LineText::within(&HeaderValue::from_static("Example.com"), "example.com");
        assert!(matches!(lowered, LineText::Owned(_)) && lowered.as_str() == "example.com");
    }
}

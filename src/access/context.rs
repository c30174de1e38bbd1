//! A request's context as the request path fills it in (`RequestContext`),
//! and the route it was counted under (`RouteRef`). The access line and the
//! route's metrics read it when the response ends.

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method};
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
    pub host: String,
    pub path: String,
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
    pub fn new(trusted: &TrustedProxies, conn: &ConnContext, method: &Method, headers: &HeaderMap, path: &str) -> Self {
        let client = client_ip::resolve(conn.peer.ip(), headers, trusted);
        RequestContext {
            client,
            client_text: (client == conn.peer.ip()).then(|| conn.peer_value.clone()),
            permit: None,
            method: method.clone(),
            host: String::new(),
            path: path.to_string(),
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

    /// `-` when the head named no host or could not be read, as other unknown fields.
    pub fn host_name(&self) -> &str {
        if self.host.is_empty() { "-" } else { &self.host }
    }

    pub fn upstream_name(&self) -> &str {
        self.upstream.as_deref().unwrap_or("-")
    }
}

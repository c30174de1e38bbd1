//! The access log: one line per request, written when its response ends.
//!
//! A `Completion` rides inside the response body, so the line carries the real
//! byte count and duration even when the body streams for minutes or the client
//! goes away mid-way. The route's metrics are recorded at the same moment.
//! It also holds the connection's "request in progress" mark,
//! which keeps the keep-alive idle timer off while the response is being sent.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{Method, StatusCode};
use tokio::sync::OwnedSemaphorePermit;

use crate::proxy::{RouteRef, State};
use crate::server::ActiveRequest;

/// What is known about a request when its response starts.
#[derive(Debug, Clone)]
pub struct RequestLine {
    /// The client as resolved through trusted proxies (see `client_ip`).
    pub client: IpAddr,
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
}

impl RequestLine {
    pub fn route_name(&self) -> &str {
        match (&self.route, self.route_ref) {
            (Some(name), _) => name,
            (None, RouteRef::Default) => "default",
            (None, _) => "-",
        }
    }

    pub fn upstream_name(&self) -> &str {
        self.upstream.as_deref().unwrap_or("-")
    }
}

/// Finishes one access-log line, and the route's metrics, when dropped.
pub struct Completion {
    line: RequestLine,
    status: StatusCode,
    start: Instant,
    bytes: u64,
    failure: Option<String>,
    _active: ActiveRequest,
    state: Arc<State>,
}

impl Completion {
    pub fn new(
        line: RequestLine,
        status: StatusCode,
        start: Instant,
        active: ActiveRequest,
        state: Arc<State>,
    ) -> Self {
        Completion { line, status, start, bytes: 0, failure: None, _active: active, state }
    }

    pub fn add_bytes(&mut self, n: usize) {
        self.bytes += n as u64;
    }

    /// Records why the body stopped early; it is logged with the line.
    pub fn fail(&mut self, why: &dyn std::fmt::Display) {
        self.failure = Some(why.to_string());
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        let l = &self.line;
        let elapsed = self.start.elapsed();
        self.state.route_metrics(l.route_ref).record(self.status.as_u16(), elapsed);
        let micros = elapsed.as_micros() as u64;
        let (route, upstream) = (l.route_name(), l.upstream_name());
        match &self.failure {
            None => tracing::info!(
                target: "hookgate::access",
                client = %l.client, method = %l.method, host = %l.host, path = %l.path,
                route = %route, upstream = %upstream, status = self.status.as_u16(),
                duration_us = micros, bytes = self.bytes,
            ),
            Some(failure) => tracing::warn!(
                target: "hookgate::access",
                client = %l.client, method = %l.method, host = %l.host, path = %l.path,
                route = %route, upstream = %upstream, status = self.status.as_u16(),
                duration_us = micros, bytes = self.bytes, error = %failure,
            ),
        }
    }
}

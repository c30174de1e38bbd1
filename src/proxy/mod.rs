//! The request path: canonicalise, select a route, forward, map errors.
//!
//! `handle` is the hyper service for one request. It checks the head (target
//! length, Host, Transfer-Encoding), computes the one canonical path, asks the
//! route table, and then answers locally or forwards to the chosen upstream with
//! headers rewritten. Every failure becomes a `ProxyError` with a fixed status
//! and a one-line body, plus a log line naming the route and upstream.

pub mod body;
pub mod headers;
mod tunnel;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;

use crate::access::{Delivery, RequestLine};
use crate::canonical::{self, CanonicalPath};
use crate::client_ip;
use crate::config::Redirect;
use crate::config::{Config, HostHeader};
use crate::error::{BadRequest, ProxyError};
use crate::guards::GuardState;
use crate::metrics::{Metrics, RouteMetrics};
use crate::routes::{Action, LocalResponse, RequestFacts};
use crate::server::{ConnContext, ListenerKind};
use crate::upstream::UpstreamClient;
use body::{RequestBody, ResponseBody};

/// Everything a request needs that comes from one config load: routes,
/// limits, upstream clients and the metric handles that go with them.
pub struct State {
    pub config: Config,
    /// One client per `config.upstreams` entry, same order.
    pub upstreams: Vec<UpstreamClient>,
    /// One per route, same order as the route table.
    route_metrics: Vec<RouteMetrics>,
    default_metrics: RouteMetrics,
    unrouted_metrics: RouteMetrics,
    /// One per route: rate-limit buckets and in-flight counters.
    guard_states: Vec<GuardState>,
}

/// Which route a request was counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteRef {
    /// Refused before a route was chosen (bad target, bad Host, ...).
    Unrouted,
    Default,
    Route(usize),
}

impl State {
    pub fn new(config: Config, metrics: &Metrics) -> Self {
        let upstreams: Vec<UpstreamClient> =
            config.upstreams.iter().map(|u| UpstreamClient::new(u.clone(), metrics.upstream(&u.name))).collect();
        let upstream_of = |action: &Action| match action {
            Action::Upstream(i) => config.upstreams[*i].name.to_string(),
            Action::Respond(_) => NONE.to_string(),
        };
        let route_metrics =
            config.routes.routes().iter().map(|r| metrics.route(&r.name, &upstream_of(&r.action))).collect();
        let default_metrics = metrics.route("default", &upstream_of(config.routes.default_action()));
        let unrouted_metrics = metrics.route(NONE, NONE);
        let guard_states = config.routes.routes().iter().map(|r| GuardState::new(&r.guards)).collect();
        State { config, upstreams, route_metrics, default_metrics, unrouted_metrics, guard_states }
    }

    pub fn guard_state(&self, route: usize) -> &GuardState {
        &self.guard_states[route]
    }

    /// Forgets idle rate-limit buckets; returns how many are tracked, per route.
    pub fn sweep_guards(&self) -> Vec<(Arc<str>, usize)> {
        let routes = self.config.routes.routes();
        routes.iter().zip(&self.guard_states).map(|(r, g)| (r.name.clone(), g.sweep())).collect()
    }

    pub fn route_metrics(&self, route: RouteRef) -> &RouteMetrics {
        match route {
            RouteRef::Unrouted => &self.unrouted_metrics,
            RouteRef::Default => &self.default_metrics,
            RouteRef::Route(i) => &self.route_metrics[i],
        }
    }
}

const NONE: &str = "-";

/// The hyper service: one request in, one response out, never an `Err`.
pub async fn handle(
    state: Arc<State>,
    conn: Arc<ConnContext>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let start = Instant::now();
    let active = conn.clock.request_started();
    let client = client_ip::resolve(conn.peer.ip(), req.headers(), &state.config.listen.trusted_proxies);
    let mut line = RequestLine {
        client,
        permit: None,
        method: req.method().clone(),
        host: String::new(),
        path: req.uri().path().to_string(),
        route_ref: RouteRef::Unrouted,
        route: None,
        upstream: None,
    };
    let outcome = if conn.clock.take_framing_conflict() {
        Err(ProxyError::BadRequest(BadRequest::ContentLengthWithTransferEncoding))
    } else {
        route_request(&state, &conn, req, &mut line).await
    };
    let response = match outcome {
        Ok(Answer::Upstream(response, read_timeout)) => {
            let (parts, incoming) = response.into_parts();
            let delivery = Delivery::new(line, parts.status, start, active, state);
            Response::from_parts(parts, ResponseBody::upstream(incoming, read_timeout, delivery))
        }
        Ok(Answer::Local(local)) => local_response(&local, line, start, active, state),
        Err(error) => {
            tracing::warn!(
                route = %line.route_name(), upstream = %line.upstream_name(), client = %line.client,
                status = error.status().as_u16(), "{error}"
            );
            let mut local = LocalResponse::new(error.status(), error.body().to_string(), Default::default());
            local.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            if let ProxyError::RateLimited(seconds) = error {
                local.headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            if error.is_client_fault() {
                // Whatever is left of this request on the wire must not be read as the next one.
                local.headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            local_response(&local, line, start, active, state)
        }
    };
    Ok(response)
}

enum Answer {
    Upstream(Response<Incoming>, std::time::Duration),
    Local(LocalResponse),
}

fn local_response(
    local: &LocalResponse,
    line: RequestLine,
    start: Instant,
    active: crate::server::ActiveRequest,
    state: Arc<State>,
) -> Response<ResponseBody> {
    let delivery = Delivery::new(line, local.status, start, active, state);
    let mut response = Response::new(ResponseBody::local(local.body.clone(), delivery));
    *response.status_mut() = local.status;
    *response.headers_mut() = local.headers.clone();
    response
}

async fn route_request(
    state: &State,
    conn: &ConnContext,
    req: Request<Incoming>,
    line: &mut RequestLine,
) -> Result<Answer, ProxyError> {
    let limits = &state.config.limits;
    // A cheap clone (shared bytes) that the canonical path can borrow from.
    let uri = req.uri().clone();
    let target_len = uri.path_and_query().map_or(0, |p| p.as_str().len());
    if target_len > limits.max_uri_bytes {
        return Err(ProxyError::UriTooLong);
    }
    let host_value = request_host(&req)?;
    let host = match &host_value {
        Some(value) => {
            let text = value.to_str().map_err(|_| ProxyError::BadRequest(BadRequest::InvalidHost))?;
            canonical::normalize_host(text).ok_or(ProxyError::BadRequest(BadRequest::InvalidHost))?
        }
        None => "".into(),
    };
    line.host = host.to_string();
    check_framing(&req)?;
    let path = canonical::canonicalize(uri.path()).map_err(|e| ProxyError::BadRequest(BadRequest::Target(e)))?;
    if !path.is_unchanged() {
        // The line already holds the raw path; only a rewritten one needs copying.
        line.path = path.as_str().to_string();
    }
    if conn.kind == ListenerKind::Redirect
        && let Some(redirect) = &state.config.listen.redirect
        && !redirect.is_exempt(path.match_key())
    {
        return https_redirect(redirect, &host, &path, uri.query()).map(Answer::Local);
    }

    let facts = RequestFacts {
        method: req.method(),
        host: &host,
        path: path.match_key(),
        query: uri.query(),
        headers: req.headers(),
    };
    let selected = state.config.routes.select(&facts);
    (line.route_ref, line.route) = match selected.index {
        Some(i) => (RouteRef::Route(i), Some(state.config.routes.routes()[i].name.clone())),
        None => (RouteRef::Default, None),
    };
    let index = match selected.action {
        Action::Respond(local) => return Ok(Answer::Local(local.clone())),
        Action::Upstream(index) => *index,
    };
    let upstream = &state.upstreams[index];
    line.upstream = Some(upstream.config.name.clone());
    let mut max_body = limits.max_body;
    let mut strip = None;
    if let Some(i) = selected.index {
        let guards = &state.config.routes.routes()[i].guards;
        line.permit = state.guard_state(i).admit(guards, line.client, req.headers())?.map(Arc::new);
        max_body = guards.max_body.unwrap_or(max_body);
        strip = guards.secret_header.as_ref().filter(|s| s.strip).map(|s| &s.name);
    }
    if content_length(&req).is_some_and(|length| length > max_body) {
        return Err(ProxyError::BodyTooLarge);
    }
    let target = Target { uri: &uri, path: &path, host: host_value, strip, max_body };
    forward(state, conn, req, target, upstream, line).await
}

/// Sends the request upstream and prepares its response (or tunnel) for the client.
async fn forward(
    state: &State,
    conn: &ConnContext,
    mut req: Request<Incoming>,
    target: Target<'_>,
    upstream: &UpstreamClient,
    line: &RequestLine,
) -> Result<Answer, ProxyError> {
    let upgrade = tunnel::requested(&req).map(|protocol| (protocol, hyper::upgrade::on(&mut req)));
    let forwarded = prepare(req, target, conn, state, upstream, upgrade.as_ref().map(|u| &u.0))?;
    let mut response = upstream.send(forwarded).await?;

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some((protocol, client_side)) = upgrade else {
            return Err(ProxyError::UpstreamBroken);
        };
        tunnel::start(conn, client_side, &mut response, line.clone());
        tunnel::prepare_response(&mut response, protocol);
    } else {
        headers::strip_hop_by_hop(response.headers_mut());
    }
    headers::add_via(response.headers_mut());
    Ok(Answer::Upstream(response, upstream.config.response_timeout))
}

/// A 308 to the same host, path and query over HTTPS (308 keeps the method and body).
fn https_redirect(
    redirect: &Redirect,
    host: &str,
    path: &CanonicalPath<'_>,
    query: Option<&str>,
) -> Result<LocalResponse, ProxyError> {
    if host.is_empty() {
        return Err(ProxyError::BadRequest(BadRequest::MissingHost));
    }
    let port = redirect.https_port.map(|p| format!(":{p}")).unwrap_or_default();
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    let location = format!("https://{host}{port}{}{query}", path.as_str());
    let location = HeaderValue::from_str(&location).map_err(|_| ProxyError::BadRequest(BadRequest::InvalidHost))?;
    let mut headers = http::HeaderMap::new();
    headers.insert(header::LOCATION, location);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    Ok(LocalResponse::new(StatusCode::PERMANENT_REDIRECT, "use https\n".to_string(), headers))
}

/// The request's host: the absolute-form authority if there is one (RFC 9112
/// §3.2.2), else the single `Host` header. HTTP/1.1 without one is refused.
fn request_host(req: &Request<Incoming>) -> Result<Option<HeaderValue>, ProxyError> {
    let missing = ProxyError::BadRequest(BadRequest::MissingHost);
    if let Some(authority) = req.uri().authority() {
        if !matches!(req.uri().scheme_str(), Some("http" | "https")) {
            return Err(ProxyError::BadRequest(BadRequest::InvalidHost));
        }
        let value = HeaderValue::from_str(authority.as_str()).map_err(|_| missing)?;
        return Ok(Some(value));
    }
    let mut values = req.headers().get_all(header::HOST).iter();
    match (values.next(), values.next()) {
        (Some(host), None) => Ok(Some(host.clone())),
        (None, _) if req.version() == Version::HTTP_10 => Ok(None),
        _ => Err(missing),
    }
}

/// Refuses any `Transfer-Encoding` other than a single `chunked`: codings
/// hookgate does not decode would make the body's end ambiguous.
fn check_framing(req: &Request<Incoming>) -> Result<(), ProxyError> {
    let mut codings = req.headers().get_all(header::TRANSFER_ENCODING).iter();
    match (codings.next(), codings.next()) {
        (None, _) => Ok(()),
        (Some(value), None) if value.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked") => Ok(()),
        _ => Err(ProxyError::BadRequest(BadRequest::TransferEncoding)),
    }
}

fn content_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

/// Where the client aimed its request, in canonical form, and what the
/// route's guards ask of the forwarded copy.
struct Target<'a> {
    uri: &'a Uri,
    path: &'a CanonicalPath<'a>,
    /// The client's `Host` (or absolute-form authority), unchanged.
    host: Option<HeaderValue>,
    /// A secret header to remove before forwarding.
    strip: Option<&'a HeaderName>,
    max_body: u64,
}

/// Turns the client's request into the one sent upstream.
fn prepare(
    req: Request<Incoming>,
    Target { uri, path, host, strip, max_body }: Target<'_>,
    conn: &ConnContext,
    state: &State,
    upstream: &UpstreamClient,
    upgrade: Option<&HeaderValue>,
) -> Result<Request<RequestBody>, ProxyError> {
    let (mut parts, incoming) = req.into_parts();
    let target = forwarded_target(uri, path)?;
    let config = &upstream.config;
    parts.uri = Uri::builder()
        .scheme(config.scheme.clone())
        .authority(config.authority.clone())
        .path_and_query(target)
        .build()
        .map_err(|_| ProxyError::BadRequest(BadRequest::Target(canonical::TargetError::NotOriginForm)))?;
    parts.version = Version::HTTP_11;
    parts.extensions = http::Extensions::new();

    let headers = &mut parts.headers;
    headers::strip_hop_by_hop(headers);
    if let Some(secret) = strip {
        headers.remove(secret);
    }
    let upstream_host = || HeaderValue::from_str(config.authority.as_str()).ok();
    let forwarded_host = match (config.host_header, &host) {
        (HostHeader::Preserve, Some(host)) => Some(host.clone()),
        _ => upstream_host(),
    };
    if let Some(value) = forwarded_host {
        headers.insert(header::HOST, value);
    }
    let trusted = headers::is_trusted(conn.peer.ip(), &state.config.listen.trusted_proxies);
    let proto = if conn.kind == ListenerKind::Tls { "https" } else { "http" };
    headers::set_forwarded(headers, conn.peer.ip(), trusted, proto, host.as_ref());
    headers::add_via(headers);
    if let Some(protocol) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol.clone());
    }
    let body = RequestBody::new(incoming, max_body, state.config.limits.body_timeout);
    Ok(Request::from_parts(parts, body))
}

/// The canonical path plus the client's query string, byte for byte.
fn forwarded_target(uri: &Uri, path: &CanonicalPath<'_>) -> Result<PathAndQuery, ProxyError> {
    if path.is_unchanged()
        && let Some(pq) = uri.path_and_query()
    {
        return Ok(pq.clone());
    }
    let mut target = String::with_capacity(path.as_str().len() + uri.query().map_or(0, |q| q.len() + 1));
    target.push_str(path.as_str());
    if let Some(query) = uri.query() {
        target.push('?');
        target.push_str(query);
    }
    PathAndQuery::from_maybe_shared(Bytes::from(target))
        .map_err(|_| ProxyError::BadRequest(BadRequest::Target(canonical::TargetError::NotOriginForm)))
}

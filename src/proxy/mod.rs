//! The request path: canonicalise, select a route, forward, map errors.
//!
//! `handle` is the hyper service for one request. It checks the head (target
//! length, Host, Transfer-Encoding), computes the one canonical path, asks the
//! route table, and then answers locally or forwards to the chosen upstream with
//! headers rewritten. Every failure becomes a `ProxyError` with a fixed status
//! and a one-line body, plus a log line naming the route and upstream.

pub mod body;
pub mod headers;
mod state;
pub mod tunnel;

pub use crate::access::RouteRef;
pub use state::State;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::uri::{PathAndQuery, Uri};
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;

use crate::access::{Delivery, RequestLine};
use crate::canonical::{self, CanonicalPath};
use crate::config::HostHeader;
use crate::config::Redirect;
use crate::connection::{ActiveRequest, ConnContext, ListenerKind};
use crate::error::{BadRequest, ProxyError};
use crate::routes::{Action, LocalResponse, RequestFacts};
use crate::upstream::UpstreamClient;
use crate::upstream::body::RequestBody;
use body::ResponseBody;

/// The hyper service (HTTP/2 clients): one request in, one response out,
/// never an `Err`.
pub async fn handle(
    state: Arc<State>,
    conn: Arc<ConnContext>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let start = Instant::now();
    let active = conn.clock.request_started();
    let mut line =
        RequestLine::new(&state.config.listen.trusted_proxies, &conn, req.method(), req.headers(), req.uri().path());
    let outcome = forward_with_hyper(&state, &conn, req, &mut line).await;
    let response = match outcome {
        Ok(Answer::Upstream(response, read_timeout)) => {
            let (parts, incoming) = response.into_parts();
            let metrics = state.route_metrics(line.route_ref);
            let delivery = Delivery::new(line, parts.status, start, active, metrics);
            Response::from_parts(parts, ResponseBody::upstream(incoming, read_timeout, delivery))
        }
        Ok(Answer::Local(local)) => local_response(&local, line, start, active, state),
        Err(error) => {
            let local = error_response(&error, &line);
            local_response(&local, line, start, active, state)
        }
    };
    Ok(response)
}

/// The local answer for `error`, with its log line.
pub fn error_response(error: &ProxyError, line: &RequestLine) -> LocalResponse {
    tracing::warn!(
        route = %line.route_name(), upstream = %line.upstream_name(), client = %line.client,
        status = error.status().as_u16(), "{error}"
    );
    let mut local = LocalResponse::new(error.status(), error.body().to_string(), Default::default());
    local.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    if let ProxyError::RateLimited(seconds) = error {
        local.headers.insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
    }
    if error.is_client_fault() {
        // Whatever is left of this request on the wire must not be read as the next one.
        local.headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    local
}

enum Answer {
    Upstream(Response<Incoming>, std::time::Duration),
    Local(LocalResponse),
}

fn local_response(
    local: &LocalResponse,
    line: RequestLine,
    start: Instant,
    active: ActiveRequest,
    state: Arc<State>,
) -> Response<ResponseBody> {
    let metrics = state.route_metrics(line.route_ref);
    let delivery = Delivery::new(line, local.status, start, active, metrics);
    let mut response = Response::new(ResponseBody::local(local.body.clone(), delivery));
    *response.status_mut() = local.status;
    *response.headers_mut() = local.headers.clone();
    response
}

/// What to do with a request, decided from its head alone.
pub enum Plan {
    /// Answer it here (a `respond` route or the HTTPS redirect).
    Local(LocalResponse),
    /// Send it to `upstream` (an index into `State::upstreams`), whose head
    /// has been rewritten for it.
    Forward(Forward),
}

pub struct Forward {
    pub upstream: usize,
    /// The request body may not exceed this (the route's or the server's `max_body`).
    pub max_body: u64,
    /// The protocol the client asked to upgrade to, if it properly asked.
    pub upgrade: Option<HeaderValue>,
}

/// The admit, canonicalise, select and guard phases: checks the head, picks
/// the route, runs its guards, and rewrites `parts` into the head the upstream
/// gets (target, Host, hop-by-hop headers, `X-Forwarded-*`, `Via`). Fills in
/// `line` as it learns the host, route and upstream.
pub fn plan(state: &State, conn: &ConnContext, parts: &mut Parts, line: &mut RequestLine) -> Result<Plan, ProxyError> {
    let limits = &state.config.limits;
    // A cheap clone (shared bytes) that the canonical path can borrow from.
    let uri = parts.uri.clone();
    let target_len = uri.path_and_query().map_or(0, |p| p.as_str().len());
    if target_len > limits.max_uri_bytes {
        return Err(ProxyError::UriTooLong);
    }
    let host_value = request_host(parts)?;
    let host = match &host_value {
        Some(value) => {
            let text = value.to_str().map_err(|_| ProxyError::BadRequest(BadRequest::InvalidHost))?;
            canonical::normalize_host(text).ok_or(ProxyError::BadRequest(BadRequest::InvalidHost))?
        }
        None => "".into(),
    };
    line.host = host.to_string();
    check_framing(&parts.headers)?;
    let path = canonical::canonicalize(uri.path()).map_err(|e| ProxyError::BadRequest(BadRequest::Target(e)))?;
    if !path.is_unchanged() {
        // The line already holds the raw path; only a rewritten one needs copying.
        line.path = path.as_str().to_string();
    }
    if conn.kind == ListenerKind::Redirect
        && let Some(redirect) = &state.config.listen.redirect
        && !redirect.is_exempt(path.match_key())
    {
        return https_redirect(redirect, &host, &path, uri.query()).map(Plan::Local);
    }

    let facts = RequestFacts {
        method: &parts.method,
        host: &host,
        path: path.match_key(),
        query: uri.query(),
        headers: &parts.headers,
    };
    let selected = state.config.routes.select(&facts);
    (line.route_ref, line.route) = match selected.index {
        Some(i) => (RouteRef::Route(i), Some(state.config.routes.routes()[i].name.clone())),
        None => (RouteRef::Default, None),
    };
    let index = match selected.action {
        Action::Respond(local) => return Ok(Plan::Local(local.clone())),
        Action::Upstream(index) => *index,
    };
    let upstream = &state.upstreams[index];
    line.upstream = Some(upstream.config.name.clone());
    let mut max_body = limits.max_body;
    let mut strip = None;
    if let Some(i) = selected.index {
        let guards = &state.config.routes.routes()[i].guards;
        line.permit = state.guard_state(i).admit(guards, line.client, &parts.headers)?.map(Arc::new);
        max_body = guards.max_body.unwrap_or(max_body);
        strip = guards.secret_header.as_ref().filter(|s| s.strip).map(|s| &s.name);
    }
    if content_length(&parts.headers).is_some_and(|length| length > max_body) {
        return Err(ProxyError::BodyTooLarge);
    }
    let upgrade = tunnel::requested(parts.version, &parts.headers);
    let target = Target { uri: &uri, path: &path, host: host_value, strip };
    rewrite(parts, target, conn, state, upstream, upgrade.as_ref())?;
    Ok(Plan::Forward(Forward { upstream: index, max_body, upgrade }))
}

/// The hyper path: plans the request, then sends it with the upstream's
/// hyper client and prepares its response (or tunnel) for the client.
async fn forward_with_hyper(
    state: &State,
    conn: &ConnContext,
    mut req: Request<Incoming>,
    line: &mut RequestLine,
) -> Result<Answer, ProxyError> {
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (mut parts, incoming) = req.into_parts();
    let forward = match plan(state, conn, &mut parts, line)? {
        Plan::Local(local) => return Ok(Answer::Local(local)),
        Plan::Forward(forward) => forward,
    };
    let upstream = &state.upstreams[forward.upstream];
    let body = RequestBody::new(incoming, forward.max_body, state.config.limits.body_timeout);
    let mut response = upstream.send(Request::from_parts(parts, body)).await?;

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(protocol) = forward.upgrade else {
            return Err(ProxyError::UpstreamBroken);
        };
        tunnel::start(conn, on_upgrade, &mut response, line.clone());
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
fn request_host(req: &Parts) -> Result<Option<HeaderValue>, ProxyError> {
    let missing = ProxyError::BadRequest(BadRequest::MissingHost);
    if let Some(authority) = req.uri.authority() {
        if !matches!(req.uri.scheme_str(), Some("http" | "https")) {
            return Err(ProxyError::BadRequest(BadRequest::InvalidHost));
        }
        let value = HeaderValue::from_str(authority.as_str()).map_err(|_| missing)?;
        return Ok(Some(value));
    }
    let mut values = req.headers.get_all(header::HOST).iter();
    match (values.next(), values.next()) {
        (Some(host), None) => Ok(Some(host.clone())),
        (None, _) if req.version == Version::HTTP_10 => Ok(None),
        _ => Err(missing),
    }
}

/// Refuses any `Transfer-Encoding` other than a single `chunked`: codings
/// hookgate does not decode would make the body's end ambiguous.
fn check_framing(headers: &HeaderMap) -> Result<(), ProxyError> {
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter();
    match (codings.next(), codings.next()) {
        (None, _) => Ok(()),
        (Some(value), None) if value.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked") => Ok(()),
        _ => Err(ProxyError::BadRequest(BadRequest::TransferEncoding)),
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
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
}

/// Turns the client's request head into the one sent upstream.
fn rewrite(
    parts: &mut Parts,
    Target { uri, path, host, strip }: Target<'_>,
    conn: &ConnContext,
    state: &State,
    upstream: &UpstreamClient,
    upgrade: Option<&HeaderValue>,
) -> Result<(), ProxyError> {
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
    let trusted = crate::client_ip::is_trusted(conn.peer.ip(), &state.config.listen.trusted_proxies);
    let proto = if conn.kind == ListenerKind::Tls { "https" } else { "http" };
    headers::set_forwarded(headers, conn.peer.ip(), trusted, proto, host.as_ref());
    headers::add_via(headers);
    if let Some(protocol) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol.clone());
    }
    Ok(())
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

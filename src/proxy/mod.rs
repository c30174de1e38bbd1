//! One request, in phases: `plan` admits the head (target length, Host,
//! Transfer-Encoding; `admit`), computes the one canonical path, selects the
//! route, runs its guards, answers TRACE and OPTIONS whose `Max-Forwards` has
//! run out (`max_forwards`), and rewrites the head for the upstream (`rewrite`).
//! The front ends then forward and answer: the HTTP/1 engine (`http1`) and
//! the HTTP/2 one (`http2`). Every failure becomes a `ProxyError`
//! with a fixed status and a one-line body (`error_response`), plus a log line
//! naming the route and upstream.

mod admit;
pub mod headers;
pub mod keep;
mod max_forwards;
mod rewrite;
mod shared_challenge;
pub mod signed;
mod state;
pub mod tunnel;

use crate::access::RouteRef;
pub use shared_challenge::ChallengeLookup;
pub use state::State;

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::request::Parts;

use crate::access::{LineText, RequestContext};
use crate::canonical;
use crate::connection::{ConnContext, ListenerKind};
use crate::error::{BadRequest, ProxyError};
use crate::guards::SecretHeader;
use crate::guards::dedupe::{Answer, Dedupe, Key, KeySource};
use crate::routes::{Action, LocalResponse, RequestFacts};
use crate::verify::Verifier;
use admit::check_framing;
pub use admit::{HeadFacts, check_method, hold_to_http2_field_rules, request_host};
use rewrite::{Target, https_redirect, rewrite};

/// `Retry-After` (seconds) when a `store` route could not keep a request.
const NOT_KEPT_RETRY_AFTER: u64 = 30;

/// The local answer for `error`, with its log line. The line remembers the
/// error for the access log's route counters and the status page.
pub fn error_response(error: &ProxyError, ctx: &mut RequestContext) -> LocalResponse {
    ctx.error = Some(*error);
    tracing::warn!(
        route = %ctx.route_name(), upstream = %ctx.upstream_name(), client = %ctx.client,
        status = error.status().as_u16(), "{error}"
    );
    error_answer(error)
}

/// The answer for `error` itself: its status, its one-line body, and the
/// headers it needs. `error_response` is the usual way in; this is for an
/// answer whose line already exists (a response replaced before its head went out).
pub fn error_answer(error: &ProxyError) -> LocalResponse {
    let mut local = LocalResponse::new(error.status(), error.body().to_string(), Default::default());
    local.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    match error {
        ProxyError::RateLimited(seconds) => {
            local.headers.insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
        }
        ProxyError::NotKept => {
            local.headers.insert(header::RETRY_AFTER, HeaderValue::from(NOT_KEPT_RETRY_AFTER));
        }
        _ => {}
    }
    if error.is_client_fault() {
        // Whatever is left of this request on the wire must not be read as the next one.
        local.headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    local
}

/// The answer to a repeat on a `dedupe` route: the first answer's status,
/// `Content-Type` and body, counted and logged, with no upstream in the line.
pub fn repeated_answer(
    ctx: &mut RequestContext,
    state: &State,
    (source, key): (&KeySource, &Key),
    answer: Answer,
) -> LocalResponse {
    state.route_metrics(ctx.route_ref).dedupe_suppressed.increment(1);
    let route = ctx.route_name();
    let status = answer.status;
    if *source == KeySource::TelegramUpdateId {
        tracing::info!(route = %route, update_id = %key, status, "redelivered update answered without forwarding it again");
    } else {
        tracing::info!(route = %route, key = %key, status, "repeat answered with the first answer, not forwarded again");
    }
    ctx.upstream = None;
    let mut headers = http::HeaderMap::new();
    if let Some(content_type) = answer.content_type {
        headers.insert(header::CONTENT_TYPE, content_type);
    }
    let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    LocalResponse { status, body: answer.body, headers }
}

/// The rate limit of `route` in the cluster's bucket, which `plan` left to
/// the front end to await (`Forward::shared_rate`) before the body is read.
pub async fn shared_rate(state: &State, route: usize, client: std::net::IpAddr) -> Result<(), ProxyError> {
    state.guard_state(route).admit_shared(client).await
}

/// What to do with a request, decided from its head alone.
pub enum Plan {
    /// Answer it here (a `respond` route, the HTTPS redirect, an ACME
    /// challenge, or TRACE/OPTIONS at `Max-Forwards: 0`).
    Local(LocalResponse),
    /// Send it to `upstream` (an index into `State::upstreams`), whose head
    /// has been rewritten for it.
    Forward(Forward),
    /// An ACME http-01 challenge another host of the cluster is proving:
    /// answered from Redis (`shared_challenge`).
    Challenge(ChallengeLookup),
}

pub struct Forward {
    pub upstream: usize,
    /// The request body may not exceed this (the route's or the server's `max_body`).
    pub max_body: u64,
    /// The protocol the client asked to upgrade to, if it properly asked.
    pub upgrade: Option<HeaderValue>,
    /// The route's table of answered updates, when it has `dedupe`.
    pub dedupe: Option<Arc<Dedupe>>,
    /// The route's signature check, when it has `verify`.
    pub verify: Option<Arc<Verifier>>,
    /// The route (an index into the route table) whose rate limit is still
    /// to be checked in the cluster's bucket (`shared_rate`) before forwarding.
    pub shared_rate: Option<usize>,
    /// `X-Forwarded-*` and `Via`, which the head does not hold yet.
    pub added: headers::Added,
}

/// The answer to an open http-01 challenge (RFC 8555 §8.3), on any listener
/// and before the redirect. A token nobody is waiting for goes on to the routes.
#[inline(always)]
fn acme_http_answer(state: &State, method: &http::Method, path: &str) -> Option<LocalResponse> {
    let token = path.strip_prefix("/.well-known/acme-challenge/")?;
    if method != http::Method::GET && method != http::Method::HEAD {
        return None;
    }
    let answer = state.config.listen.tls.as_ref()?.acme.as_ref()?.http_answer(token)?;
    let mut headers = http::HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Some(LocalResponse::new(http::StatusCode::OK, answer, headers))
}

/// The admit, canonicalise, select and guard phases: checks the head, picks
/// the route, runs its guards, and rewrites `parts` into the head the upstream
/// gets (target, Host, hop-by-hop headers, `X-Forwarded-*`, `Via`). Fills in
/// `line` as it learns the host, route and upstream.
pub fn plan(
    state: &State,
    conn: &ConnContext,
    (parts, facts): (&mut Parts, &HeadFacts),
    ctx: &mut RequestContext,
) -> Result<Plan, ProxyError> {
    // A cheap clone (shared bytes) that the canonical path can borrow from.
    let uri = parts.uri.clone();
    let host_value = admit_head(state, parts, facts)?;
    let host = match &host_value {
        Some(value) => host_name(value)?,
        None => "".into(),
    };
    ctx.host = match &host_value {
        Some(value) => LineText::within(value, &host),
        None => LineText::default(),
    };
    check_framing(facts)?;
    let path = canonical::canonicalize(uri.path()).map_err(|e| ProxyError::BadRequest(BadRequest::Target(e)))?;
    if !path.is_unchanged() {
        // The context already holds the raw path; only a rewritten one needs copying.
        ctx.path = LineText::Owned(path.as_str().into());
    }
    if let Some(answer) = answer_before_routing(state, conn, &parts.method, &host, &path, uri.query(), ctx)? {
        return Ok(answer);
    }
    let request = RequestFacts {
        method: &parts.method,
        host: &host,
        path: path.match_key(),
        query: uri.query(),
        headers: &parts.headers,
    };
    let selected = state.config.routes.select(&request);
    (ctx.route_ref, ctx.route) = match selected.index {
        Some(i) => (RouteRef::Route(i), Some(state.config.routes.routes()[i].name.clone())),
        None => (RouteRef::Default, None),
    };
    let index = match selected.action {
        Action::Respond(local) => return Ok(Plan::Local(local.clone())),
        Action::Upstream(index) => *index,
    };
    let upstream = &state.upstreams[index];
    ctx.upstream = Some(upstream.config.name.clone());
    let guarded = guard(state, selected.index, (parts, facts), ctx);
    if guarded.as_ref().err() == Some(&ProxyError::Forbidden) {
        cloudflare_hint(state, conn, ctx);
    }
    let Guarded { max_body, secret, dedupe, verify, shared_rate } = guarded?;
    // Past the guards: only a client the route admits learns that hookgate is there.
    if let Some(answer) = max_forwards::count_down(parts, secret.map(|s| &s.name))? {
        ctx.upstream = None;
        return Ok(Plan::Local(answer));
    }
    let strip = secret.filter(|s| s.strip).map(|s| &s.name);
    let upgrade = facts.upgrade.then(|| tunnel::requested(parts.version, &parts.headers)).flatten();
    let target = Target { uri: &uri, path: &path, host: host_value, strip };
    let added = rewrite(parts, target, conn, state, upstream, upgrade.as_ref())?;
    Ok(Plan::Forward(Forward { upstream: index, max_body, upgrade, dedupe, verify, shared_rate, added }))
}

/// The first phase: a target within `max_uri_bytes` and one valid `Host`
/// (from the header or an absolute target), which is returned.
#[inline]
fn admit_head(state: &State, parts: &Parts, facts: &HeadFacts) -> Result<Option<HeaderValue>, ProxyError> {
    let target_len = parts.uri.path_and_query().map_or(0, |p| p.as_str().len());
    if target_len > state.config.limits.max_uri_bytes {
        return Err(ProxyError::UriTooLong);
    }
    check_method(&parts.method)?;
    request_host(parts, facts)
}

/// The host name routes match on: the `Host` value normalised (lower case, no default port).
#[inline]
pub fn host_name(value: &HeaderValue) -> Result<std::borrow::Cow<'_, str>, ProxyError> {
    let text = value.to_str().map_err(|_| ProxyError::BadRequest(BadRequest::InvalidHost))?;
    canonical::normalize_host(text).ok_or(ProxyError::BadRequest(BadRequest::InvalidHost))
}

/// Answers that come before any route: an ACME http-01 challenge (this
/// host's, or with `[cluster]` one the leader is proving), and the redirect
/// to HTTPS on a redirect listener (except for its exempt paths).
#[inline(always)]
fn answer_before_routing(
    state: &State,
    conn: &ConnContext,
    method: &http::Method,
    host: &str,
    path: &canonical::CanonicalPath<'_>,
    query: Option<&str>,
    ctx: &mut RequestContext,
) -> Result<Option<Plan>, ProxyError> {
    if let Some(lookup) = shared_challenge::shared_challenge(state, method, path.match_key()) {
        ctx.route = Some("acme-challenge".into());
        return Ok(Some(Plan::Challenge(lookup)));
    }
    if let Some(answer) = acme_http_answer(state, method, path.match_key()) {
        ctx.route = Some("acme-challenge".into());
        return Ok(Some(Plan::Local(answer)));
    }
    match &state.config.listen.redirect {
        Some(redirect) if conn.kind == ListenerKind::Redirect && !redirect.is_exempt(path.match_key()) => {
            https_redirect(redirect, host, path, query).map(|local| Some(Plan::Local(local)))
        }
        _ => Ok(None),
    }
}

/// `allow_from` refused the request: when its client is a Cloudflare address
/// that is not trusted, the operator is told to trust `cloudflare` (see `cloudflare::Hint`).
#[cold]
fn cloudflare_hint(state: &State, conn: &ConnContext, ctx: &RequestContext) {
    let trusted = &state.config.listen.trusted_proxies;
    let now = crate::metrics::unix_seconds();
    conn.metrics.cloudflare_hint.refused(ctx.route_name(), ctx.client, |ip| trusted.contains(ip), now);
}

/// What the route's guards decided besides admitting the request.
struct Guarded<'a> {
    max_body: u64,
    secret: Option<&'a SecretHeader>,
    dedupe: Option<Arc<Dedupe>>,
    verify: Option<Arc<Verifier>>,
    shared_rate: Option<usize>,
}

/// Runs the selected route's guards (the `[default]` route has none): the
/// in-flight slot they grant goes into the context, and a declared body over
/// the route's `max_body` is refused before any of it is read. A rate limit
/// shared through Redis is left to `shared_rate`, which the front ends await.
#[inline(always)]
fn guard<'a>(
    state: &'a State,
    route: Option<usize>,
    (parts, facts): (&Parts, &HeadFacts),
    ctx: &mut RequestContext,
) -> Result<Guarded<'a>, ProxyError> {
    let max_body = state.config.limits.max_body;
    let mut guarded = Guarded { max_body, secret: None, dedupe: None, verify: None, shared_rate: None };
    if let Some(i) = route {
        let guards = &state.config.routes.routes()[i].guards;
        let admitted = state.guard_state(i).admit(guards, ctx.client, &parts.headers)?;
        ctx.permit = admitted.permit.map(Arc::new);
        guarded.shared_rate = admitted.shared_rate_due.then_some(i);
        guarded.max_body = guards.max_body.unwrap_or(guarded.max_body);
        guarded.secret = guards.secret_header.as_ref();
        guarded.dedupe = state.guard_state(i).dedupe.clone();
        guarded.verify = guards.verify.clone();
    }
    if facts.content_length.is_some_and(|length| length > guarded.max_body) {
        return Err(ProxyError::BodyTooLarge);
    }
    Ok(guarded)
}

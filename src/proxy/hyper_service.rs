//! The hyper service for HTTP/2 clients: one request in, one response out,
//! never an `Err`. It plans the request like the HTTP/1 engine does, then
//! forwards it with the upstream's hyper client and streams the answer back
//! in a `ResponseBody`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::{Plan, State, admit, error_response, headers, keep, plan};
use crate::access::{Delivery, RequestContext};
use crate::connection::{AbortReason, ActiveRequest, ConnContext};
use crate::error::ProxyError;
use crate::guards::dedupe::{self, Settled};
use crate::hyper_glue::{RequestBody, ResponseBody};
use crate::routes::LocalResponse;
use crate::spool::depot::{Admitted, Keeping};

/// The hyper service (HTTP/2 clients): one request in, one response out,
/// never an `Err`.
pub async fn handle(
    state: Arc<State>,
    conn: Arc<ConnContext>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let start = Instant::now();
    let active = conn.clock.request_started();
    let mut ctx =
        RequestContext::new(&state.config.listen.trusted_proxies, &conn, req.method(), req.headers(), req.uri().path());
    let mut pending = Unanswered { ctx: &mut ctx, conn: &conn, start, state: &state, armed: true };
    let outcome = forward_with_hyper(&state, &conn, req, pending.ctx).await;
    pending.armed = false;
    drop(pending);
    let response = match outcome {
        Ok(Answer::Upstream(response, read_timeout)) => {
            let (parts, incoming) = response.into_parts();
            let delivery = deliver(ctx, parts.status, start, active, &state);
            Response::from_parts(parts, ResponseBody::upstream(incoming, read_timeout, delivery))
        }
        Ok(Answer::Local(local)) => local_response(&local, ctx, start, active, state),
        Err(error) => {
            let local = error_response(&error, &mut ctx);
            local_response(&local, ctx, start, active, state)
        }
    };
    Ok(response)
}

/// A request's line while its answer is being made. When hyper drops the
/// request first (the client reset the stream, or shutdown cut the
/// connection), the line is still written: 499 with `aborted=client_closed`,
/// or 503 with `aborted=shutdown`, as the HTTP/1 engine does.
struct Unanswered<'a> {
    ctx: &'a mut RequestContext,
    conn: &'a ConnContext,
    start: Instant,
    state: &'a Arc<State>,
    /// Cleared once the answer takes over the line.
    armed: bool,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let shutdown = self.conn.clock.abort_reason() == Some(AbortReason::Shutdown);
        let status = if shutdown { StatusCode::SERVICE_UNAVAILABLE } else { crate::access::client_closed_status() };
        let active = self.conn.clock.request_started();
        deliver(self.ctx.clone(), status, self.start, active, self.state).client_left();
    }
}

enum Answer {
    Upstream(Response<Incoming>, std::time::Duration),
    Local(LocalResponse),
}

fn local_response(
    local: &LocalResponse,
    ctx: RequestContext,
    start: Instant,
    active: ActiveRequest,
    state: Arc<State>,
) -> Response<ResponseBody> {
    let delivery = deliver(ctx, local.status, start, active, &state);
    let mut response = Response::new(ResponseBody::local(local.body.clone(), delivery));
    *response.status_mut() = local.status;
    *response.headers_mut() = local.headers.clone();
    response
}

/// Starts the response to `ctx`'s request: the one place this front end
/// makes a `Delivery`, whose drop writes the access line and records the
/// route's metrics (the engine's is `http1::exchange::Answering::deliver`).
fn deliver(
    ctx: RequestContext,
    status: StatusCode,
    start: Instant,
    active: ActiveRequest,
    state: &State,
) -> Arc<Delivery> {
    let metrics = state.route_metrics(ctx.route_ref);
    Delivery::new(ctx, status, start, active, metrics)
}

/// The hyper path: plans the request, then sends it with the upstream's
/// hyper client and prepares its response for the client. HTTP/2 has no
/// `Upgrade`, so a 101 here can only be an upstream out of step.
async fn forward_with_hyper(
    state: &State,
    conn: &ConnContext,
    req: Request<Incoming>,
    ctx: &mut RequestContext,
) -> Result<Answer, ProxyError> {
    let (mut parts, incoming) = req.into_parts();
    admit::hold_to_http2_field_rules(&mut parts.headers)?;
    let forward = match plan(state, conn, &mut parts, ctx)? {
        Plan::Local(local) => return Ok(Answer::Local(local)),
        Plan::Forward(forward) => forward,
    };
    forward.added.insert_into(&mut parts.headers);
    let upstream = &state.upstreams[forward.upstream];
    let mut body = RequestBody::new(incoming, forward.max_body, state.config.limits.body_timeout);
    let mut ticket = None;
    let mut keeping = None;
    if forward.dedupe.is_some() || state.keeps(ctx.route_ref) {
        let whole = body.collect().await.map_err(|e| e.proxy_error())?.to_bytes();
        if let Some(table) = &forward.dedupe
            && let Some(id) = dedupe::update_id(&whole)
        {
            match table.settle(id, upstream.config.response_timeout).await {
                Settled::Forward(claimed) => ticket = Some(claimed),
                Settled::Repeat(status) => return Ok(Answer::Local(super::repeated_answer(ctx, state, id, status))),
                Settled::TimedOut => return Err(ProxyError::UpstreamTimeout),
            }
        }
        if let Some(keep) = keep::keeping(state, ctx, forward.upstream, &parts, None, whole.to_vec()) {
            match keep.admit().await {
                Admitted::Live(keep) => keeping = Some(keep),
                admitted => return Ok(Answer::Local(kept(&admitted, ctx, ticket))),
            }
        }
        if !whole.is_empty() {
            parts.headers.insert(http::header::CONTENT_LENGTH, whole.len().into());
        }
        body = RequestBody::whole(whole);
    }
    let request = Request::from_parts(parts, body);
    let (sent, ticket) = match ticket {
        None => (upstream.send(request).await, None),
        // A claimed update waits for the backend's answer even if the client
        // resets the stream: its redelivery is waiting for that status. An
        // answer (or failure) a `fallback` route keeps the update for instead
        // is not the answer: the ticket comes back, for the acknowledgement.
        Some(ticket) => {
            let client = upstream.clone();
            let takes_over = keeping.as_ref().map(Keeping::takeover);
            let exchange = tokio::spawn(async move {
                let response = client.send(request).await;
                let status = response.as_ref().ok().map(|r| r.status().as_u16());
                match status {
                    Some(status) if !takes_over.is_some_and(|rule| rule(status)) => {
                        ticket.answered(status);
                        (response, None)
                    }
                    _ => (response, Some(ticket)),
                }
            });
            exchange.await.map_err(|_| ProxyError::UpstreamBroken)?
        }
    };
    let mut response = match keeping {
        None => sent?,
        Some(keep) => match sent {
            Ok(response) if !keep.takes_over(response.status().as_u16()) => {
                keep.answered(response.status().as_u16());
                response
            }
            Ok(response) => {
                let why = format!("{} answered {}", upstream.config.name, response.status().as_u16());
                return live_failed(keep, why, ProxyError::UpstreamBroken, ctx, ticket).await;
            }
            Err(error) if error.is_upstream_fault() => {
                return live_failed(keep, error.to_string(), error, ctx, ticket).await;
            }
            Err(error) => return Err(error),
        },
    };

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        return Err(ProxyError::UpstreamBroken);
    }
    headers::check_forwardable(&upstream.config.name, response.status(), response.headers())?;
    headers::strip_hop_by_hop(response.headers_mut());
    headers::add_via(response.headers_mut());
    Ok(Answer::Upstream(response, upstream.config.response_timeout))
}

/// A request kept (or not) instead of forwarded: `ack` or 503. A claimed
/// update's redelivery gets the same acknowledgement.
fn kept(admitted: &Admitted, ctx: &mut RequestContext, ticket: Option<dedupe::Ticket>) -> LocalResponse {
    let local = keep::kept_answer(admitted, ctx).unwrap_or_else(|| super::error_answer(&ProxyError::UpstreamBroken));
    if let Some(ticket) = ticket
        && local.status.is_success()
    {
        ticket.answered(local.status.as_u16());
    }
    local
}

/// A `store` route's live attempt failed (`why`): `fallback` answers what
/// keeping it gave (and a claimed update's redelivery gets the same);
/// `journal` answers `error` (its copy waits for redelivery).
async fn live_failed(
    keep: Keeping,
    why: String,
    error: ProxyError,
    ctx: &mut RequestContext,
    ticket: Option<dedupe::Ticket>,
) -> Result<Answer, ProxyError> {
    match keep.live_failed(&why).await {
        Some(admitted) => Ok(Answer::Local(kept(&admitted, ctx, ticket))),
        None => Err(error),
    }
}

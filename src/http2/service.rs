//! The hyper service for HTTP/2 clients: one request in, one response out,
//! never an `Err`. It plans the request like the HTTP/1 engine does, then
//! forwards it (`upstream`) and streams the answer back in a `ResponseBody`.

use std::convert::Infallible;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio_util::sync::CancellationToken;

use super::gate::{self, Gated};
use super::response_body::{ReadAhead, ResponseBody};
use super::upstream::UpstreamBody;
use crate::access::{Delivery, LineText, RequestContext};
use crate::connection::{AbortReason, ActiveRequest, ConnContext, Watch};
use crate::error::ProxyError;
use crate::hyper_glue::RequestBody;
use crate::proxy::{self, Plan, State, error_response, plan};
use crate::routes::LocalResponse;

/// The hyper service (HTTP/2 clients): one request in, one response out,
/// never an `Err`.
/// `cut` is shutdown's: a request still waiting for its answer when the
/// grace runs out gets `503`, as on the HTTP/1 engine.
pub async fn handle(
    state: Arc<State>,
    conn: Arc<ConnContext>,
    req: Request<Incoming>,
    cut: Arc<CancellationToken>,
) -> Result<Response<ResponseBody>, Infallible> {
    let start = crate::poll_clock::now().into_std();
    let active = conn.clock.request_started();
    let path = LineText::path_of(req.uri());
    let mut ctx = RequestContext::new(&state.config.listen.trusted_proxies, &conn, req.method(), req.headers(), path);
    ctx.set_proto(req.version());
    let mut pending = Unanswered { ctx: &mut ctx, conn: &conn, start, state: &state, armed: true };
    let outcome = {
        let wait = pin!(cut.cancelled());
        let mut cut = Watch::new(&cut, wait);
        tokio::select! {
            biased;
            outcome = forward(&state, &conn, req, pending.ctx) => outcome,
            () = &mut cut => Err(ProxyError::ShuttingDown),
        }
    };
    pending.armed = false;
    drop(pending);
    let response = match outcome {
        Ok(Answer::Upstream(response, read_timeout)) => {
            let (mut parts, incoming) = response.into_parts();
            let delivery = deliver(ctx, parts.status, start, active, &state);
            let ahead = parts.extensions.remove::<ReadAhead>();
            Response::from_parts(parts, ResponseBody::upstream(incoming, ahead, read_timeout, delivery))
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
        if !shutdown {
            // Counted against the connection's reset limit (`server::conn`'s `drive`).
            self.conn.clock.note_client_reset();
        }
        let status = if shutdown { StatusCode::SERVICE_UNAVAILABLE } else { crate::access::client_closed_status() };
        let active = self.conn.clock.request_started();
        deliver(self.ctx.clone(), status, self.start, active, self.state).client_left();
    }
}

enum Answer {
    Upstream(Response<UpstreamBody>, std::time::Duration),
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
    let metrics = state.route_metrics(ctx.route_ref).clone();
    Delivery::new(ctx, status, start, active, metrics)
}

/// Plans the request, then sends it upstream and prepares its response for
/// the client. HTTP/2 has no `Upgrade`, so a 101 here can only be an
/// upstream out of step.
async fn forward(
    state: &Arc<State>,
    conn: &ConnContext,
    req: Request<Incoming>,
    ctx: &mut RequestContext,
) -> Result<Answer, ProxyError> {
    let (mut parts, incoming) = req.into_parts();
    proxy::hold_to_http2_field_rules(&mut parts, state.config.limits.max_headers)?;
    let facts = proxy::HeadFacts::from_map(&parts.headers, parts.version);
    let forward = match plan(state, conn, (&mut parts, &facts), ctx)? {
        Plan::Local(local) => return Ok(Answer::Local(local)),
        Plan::Challenge(lookup) => return Ok(Answer::Local(lookup.answer().await)),
        Plan::Forward(forward) => forward,
    };
    if let Some(route) = forward.shared_rate {
        proxy::shared_rate(state, route, ctx.client).await?;
    }
    let upstream = &state.upstreams[forward.upstream];
    let body = RequestBody::new(incoming, forward.max_body, state.config.limits.body_timeout);
    let gated = forward.dedupe.is_some() || forward.verify.is_some() || state.keeps(ctx.route_ref);
    let (body, ticket, keeping) = if gated {
        let rules = (forward.verify.as_deref(), forward.dedupe.as_ref(), forward.upstream);
        match gate::gate(state, ctx, rules, (&mut parts, &forward.added), body).await? {
            Gated::Answered(local) => return Ok(Answer::Local(local)),
            Gated::Forward { body, ticket, keeping } => (body, ticket, keeping),
        }
    } else {
        (body, None, None)
    };
    let takes_over = keeping.as_ref().map(|keep| keep.takeover());
    let (sent, ticket) = gate::send(state, forward.upstream, (parts, body, forward.added), ticket, takes_over).await;
    let response = match keeping {
        None => sent?,
        Some(keep) => match gate::settle(keep, sent, &upstream.config.name, ctx, ticket).await? {
            Ok(response) => response,
            Err(local) => return Ok(Answer::Local(local)),
        },
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        return Err(ProxyError::UpstreamBroken);
    }
    Ok(Answer::Upstream(response, upstream.config.response_timeout))
}

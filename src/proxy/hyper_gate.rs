//! HTTP/2 requests on `verify`, `dedupe` and `store` routes (the engine's
//! are in `http1::gate`): the body is read whole, its signature checked, a
//! redelivered update is answered here, and a `store` route keeps the request
//! now or forwards it live with a `Keeping` that keeps it if the upstream fails.

use http::Response;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use std::sync::Arc;

use super::{State, keep, signed};
use crate::access::RequestContext;
use crate::error::ProxyError;
use crate::guards::dedupe::{self, Dedupe, Settled, Ticket};
use crate::hyper_glue::RequestBody;
use crate::routes::LocalResponse;
use crate::spool::depot::{Admitted, Keeping};
use crate::upstream::UpstreamClient;
use crate::verify::Verifier;

/// What the gate decided.
pub enum Gated {
    /// Answer this instead of forwarding (a redelivery, a kept request, or 503).
    Answered(LocalResponse),
    /// Forward `body` (now whole), reporting to the claim and the keeping.
    Forward { body: RequestBody, ticket: Option<Ticket>, keeping: Option<Box<Keeping>> },
}

/// Reads the body whole, checks its signature (`verify`), claims its update
/// id (`dedupe`) and decides whether it is kept (`store`). `parts` gets the
/// body's `Content-Length`.
pub async fn gate(
    state: &State,
    ctx: &mut RequestContext,
    (verify, dedupe, upstream): (Option<&Verifier>, Option<&Arc<Dedupe>>, usize),
    parts: &mut http::request::Parts,
    body: RequestBody,
) -> Result<Gated, ProxyError> {
    let whole = body.collect().await.map_err(|e| e.proxy_error())?.to_bytes();
    if let Some(verifier) = verify {
        signed::check(state, ctx, verifier, parts, &whole)?;
    }
    let mut ticket = None;
    if let Some(table) = dedupe
        && let Some(id) = dedupe::update_id(&whole)
    {
        let wait_limit = state.upstreams[upstream].config.response_timeout;
        match table.settle(id, wait_limit).await {
            Settled::Forward(claimed) => ticket = Some(claimed),
            Settled::Repeat(status) => return Ok(Gated::Answered(super::repeated_answer(ctx, state, id, status))),
            Settled::TimedOut => return Err(ProxyError::UpstreamTimeout),
        }
    }
    let mut keeping = None;
    if let Some(keep) = keep::keeping(state, ctx, upstream, parts, None, whole.to_vec()) {
        match keep.admit().await {
            Admitted::Live(keep) => keeping = Some(Box::new(keep)),
            admitted => return Ok(Gated::Answered(kept(&admitted, ctx, ticket))),
        }
    }
    if !whole.is_empty() {
        parts.headers.insert(http::header::CONTENT_LENGTH, whole.len().into());
    }
    Ok(Gated::Forward { body: RequestBody::whole(whole), ticket, keeping })
}

/// Sends the request. A claimed update waits for the backend's answer even
/// if the client resets the stream: its redelivery is waiting for that
/// status. An answer (or failure) a `fallback` route keeps the update for
/// instead (`takes_over`) is not the answer: the ticket comes back, for the
/// acknowledgement.
pub async fn send(
    upstream: &UpstreamClient,
    request: http::Request<RequestBody>,
    ticket: Option<Ticket>,
    takes_over: Option<impl Fn(u16) -> bool + Send + 'static>,
) -> (Result<Response<Incoming>, ProxyError>, Option<Ticket>) {
    let Some(ticket) = ticket else { return (upstream.send(request).await, None) };
    let client = upstream.clone();
    let exchange = tokio::spawn(async move {
        let response = client.send(request).await;
        match response.as_ref().ok().map(|r| r.status().as_u16()) {
            Some(status) if !takes_over.is_some_and(|rule| rule(status)) => {
                ticket.answered(status);
                (response, None)
            }
            _ => (response, Some(ticket)),
        }
    });
    exchange.await.unwrap_or((Err(ProxyError::UpstreamBroken), None))
}

/// A `store` route's live outcome: the upstream's response to pass on
/// (`Ok(Ok)`), the answer when `fallback` kept the request instead
/// (`Ok(Err)`), or the error to answer (`journal`: its copy waits for redelivery).
/// `ticket` is a claimed update's, when the answer was not given to it.
pub async fn settle(
    keep: Box<Keeping>,
    sent: Result<Response<Incoming>, ProxyError>,
    upstream: &str,
    ctx: &mut RequestContext,
    ticket: Option<Ticket>,
) -> Result<Result<Response<Incoming>, LocalResponse>, ProxyError> {
    let (why, error) = match sent {
        Ok(response) if !keep.takes_over(response.status().as_u16()) => {
            keep.answered(response.status().as_u16());
            return Ok(Ok(response));
        }
        Ok(response) => (format!("{upstream} answered {}", response.status()), ProxyError::UpstreamBroken),
        Err(error) if error.is_upstream_fault() => (error.to_string(), error),
        Err(error) => return Err(error),
    };
    match keep.live_failed(&why).await {
        // A claimed update's redelivery gets the same acknowledgement.
        Some(admitted) => Ok(Err(kept(&admitted, ctx, ticket))),
        None => Err(error),
    }
}

/// A request kept (or not) instead of forwarded: `ack` or 503. A claimed
/// update's redelivery gets the same acknowledgement.
fn kept(admitted: &Admitted, ctx: &mut RequestContext, ticket: Option<Ticket>) -> LocalResponse {
    let local = keep::kept_answer(admitted, ctx).unwrap_or_else(|| super::error_answer(&ProxyError::UpstreamBroken));
    if let Some(ticket) = ticket
        && local.status.is_success()
    {
        ticket.answered(local.status.as_u16());
    }
    local
}

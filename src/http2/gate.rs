//! HTTP/2 requests on `verify`, `dedupe` and `store` routes (the engine's
//! are in `http1::gate`): the body is read whole, its signature checked, a
//! repeat is answered here with the first answer, and a `store` route keeps
//! the request now or forwards it live with a `Keeping` that keeps it if the
//! upstream fails.

use http::Response;
use http::header::{self, HeaderValue};
use http_body::Body;
use http_body_util::BodyExt;

use std::sync::Arc;
use std::time::Duration;

use super::response_body::ReadAhead;
use super::upstream::{self, UpstreamBody};
use crate::access::RequestContext;
use crate::error::ProxyError;
use crate::guards::dedupe::{Dedupe, Settled, Ticket};
use crate::hyper_glue::RequestBody;
use crate::proxy::headers::Added;
use crate::proxy::{self, State, keep, signed};
use crate::routes::LocalResponse;
use crate::spool::depot::{Admitted, Keeping};
use crate::verify::Verifier;

/// What the gate decided.
pub enum Gated {
    /// Answer this instead of forwarding (a redelivery, a kept request, or 503).
    Answered(LocalResponse),
    /// Forward `body` (now whole), reporting to the claim and the keeping.
    Forward { body: RequestBody, ticket: Option<Ticket>, keeping: Option<Box<Keeping>> },
}

/// Reads the body whole, checks its signature (`verify`), claims its key
/// (`dedupe`) and decides whether it is kept (`store`). `parts` gets the
/// body's `Content-Length`.
pub async fn gate(
    state: &State,
    ctx: &mut RequestContext,
    (verify, dedupe, upstream): (Option<&Verifier>, Option<&Arc<Dedupe>>, usize),
    (parts, added): (&mut http::request::Parts, &Added),
    body: RequestBody,
) -> Result<Gated, ProxyError> {
    let whole = body.collect().await.map_err(|e| e.proxy_error())?.to_bytes();
    // A failed signature that `mode = "log"` lets through claims no key.
    let trusted = signed::check(state, ctx, verify, parts, &whole)? == signed::Checked::Trusted;
    let mut ticket = None;
    if let Some(table) = dedupe.filter(|_| trusted)
        && let Some(key) = table.spec().key.of(parts, &whole)
    {
        let settled = match table.settle_now(&key) {
            Some(settled) => settled,
            None => table.settle(key.clone(), state.upstreams[upstream].config.response_timeout).await,
        };
        match settled {
            Settled::Forward(claimed) => ticket = Some(claimed),
            Settled::Repeat(answer) => {
                let local = proxy::repeated_answer(ctx, state, (&table.spec().key, &key), answer);
                return Ok(Gated::Answered(local));
            }
            Settled::TimedOut => return Err(ProxyError::UpstreamTimeout),
        }
    }
    let mut keeping = None;
    if let Some(keep) = keep::keeping(state, ctx, upstream, parts, added, whole.to_vec()) {
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

/// Sends the request. A claimed request waits for the backend's answer even
/// if the client resets the stream: its repeats are waiting for that answer.
/// An answer (or failure) a `fallback` route keeps the request for instead
/// (`takes_over`) is not the answer: the ticket comes back, for the
/// acknowledgement.
pub async fn send(
    state: &Arc<State>,
    index: usize,
    (parts, body, added): (http::request::Parts, RequestBody, Added),
    ticket: Option<Ticket>,
    takes_over: Option<impl Fn(u16) -> bool + Send + 'static>,
) -> (Result<Response<UpstreamBody>, ProxyError>, Option<Ticket>) {
    let Some(ticket) = ticket else { return (upstream::send(state, index, parts, body, added).await, None) };
    let state = state.clone();
    let read_timeout = state.upstreams[index].config.response_timeout;
    let exchange = tokio::spawn(async move {
        match upstream::send(&state, index, parts, body, added).await {
            Ok(response) if !takes_over.is_some_and(|rule| rule(response.status().as_u16())) => {
                (read_ahead(response, ticket, read_timeout).await, None)
            }
            response => (response, Some(ticket)),
        }
    });
    exchange.await.unwrap_or((Err(ProxyError::UpstreamBroken), None))
}

/// A claimed request's answer. A 2xx whose body may be short enough to
/// remember (`dedupe::MAX_BODY`) is read here, before its head goes on, so
/// that its repeats get it even if this client resets the stream; what was
/// read rides in the response's extensions (`ReadAhead`) to be sent first. A
/// body that grows past the limit, or ends with trailers, is not remembered
/// and the rest of it streams as usual; one that fails or stalls here is
/// answered 502 or 504, since none of it went out yet.
async fn read_ahead(
    mut response: Response<UpstreamBody>,
    ticket: Ticket,
    read_timeout: Duration,
) -> Result<Response<UpstreamBody>, ProxyError> {
    let content_type = response.headers().get(header::CONTENT_TYPE).map(HeaderValue::as_bytes);
    let length = response.body().size_hint().exact();
    let Some(mut capture) = ticket.head(response.status().as_u16(), content_type, length) else { return Ok(response) };
    let mut ahead = ReadAhead::default();
    loop {
        let frame = match tokio::time::timeout(read_timeout, response.body_mut().frame()).await {
            Err(_) => return Err(ProxyError::UpstreamTimeout),
            Ok(Some(Err(_))) => return Err(ProxyError::UpstreamBroken),
            Ok(None) => {
                capture.finish();
                ahead.ended = true;
                break;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        match frame.into_data() {
            Ok(data) => {
                let fits = capture.push(&data);
                ahead.data.push_back(data);
                if !fits {
                    break; // The capture is dropped: forgotten.
                }
            }
            Err(frame) => {
                ahead.trailers = frame.into_trailers().ok();
                ahead.ended = true;
                break;
            }
        }
    }
    response.extensions_mut().insert(ahead);
    Ok(response)
}

/// A `store` route's live outcome: the upstream's response to pass on
/// (`Ok(Ok)`), the answer when `fallback` kept the request instead
/// (`Ok(Err)`), or the error to answer (`journal`: its copy waits for redelivery).
/// `ticket` is a claimed request's, when the answer was not given to it.
pub async fn settle(
    keep: Box<Keeping>,
    sent: Result<Response<UpstreamBody>, ProxyError>,
    upstream: &str,
    ctx: &mut RequestContext,
    ticket: Option<Ticket>,
) -> Result<Result<Response<UpstreamBody>, LocalResponse>, ProxyError> {
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
        // A claimed request's repeats get the same acknowledgement.
        Some(admitted) => Ok(Err(kept(&admitted, ctx, ticket))),
        None => Err(error),
    }
}

/// A request kept (or not) instead of forwarded: `ack` or 503. A claimed
/// request's repeats get the same acknowledgement.
fn kept(admitted: &Admitted, ctx: &mut RequestContext, ticket: Option<Ticket>) -> LocalResponse {
    let local = keep::kept_answer(admitted, ctx).unwrap_or_else(|| proxy::error_answer(&ProxyError::UpstreamBroken));
    if let Some(ticket) = ticket {
        ticket.remember(local.status.as_u16(), local.headers.get(header::CONTENT_TYPE), &local.body);
    }
    local
}

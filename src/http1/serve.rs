//! One HTTP/1.1 client connection, driven by one task from the first byte to
//! the close: read a head, plan it, answer or forward it, and do it again.
//!
//! Timers: `header_timeout` from a head's first byte to its end (the
//! connection is then closed, logged as 408); `idle_timeout` while waiting for
//! the next request, which starts only once the last response has been
//! written; `send_timeout` on every write to the client (see `io::send_all`).
//! A draining connection finishes its exchange and closes; a cut one closes
//! at once and records why, so unfinished responses are logged as cut.
//! Pipelined requests stay in the read buffer and are answered in order.

use std::sync::Arc;

use arc_swap::ArcSwap;
use http::Method;
use http::header::HeaderMap;

use super::buffers;
use super::client::{Client, HeadRead};
use super::exchange::{self, Answering, Exchange, Exchanging, answer_local};
use super::forward;
use super::gate::{self, AtOnce, Gate};
use super::head::{self, Framing, HeadError, RequestHead};
use super::io::Io;
use crate::access::{LineText, RequestContext};
use crate::config::Limits;
use crate::connection::timer::Deadline;
use crate::connection::{AbortReason, ConnClock, ConnContext, LAST_ANSWER, Shutdown};
use crate::error::{BadRequest, ProxyError};
use crate::poll_clock;
use crate::proxy::{self, Plan, State};

/// Serves `io` until the client leaves, a timer fires or shutdown says so.
///
/// Not an async fn: one would keep each argument twice (as given and as
/// moved in), in every idle connection's task. The block below uses what it
/// captured in place.
pub fn serve<'a, S: Io + 'a>(
    io: S,
    conn: Arc<ConnContext>,
    states: &'a ArcSwap<State>,
    limits: Arc<Limits>,
    stop: &'a Shutdown,
) -> impl Future<Output = ()> + Send + 'a {
    let clock = conn.clock.clone();
    let mut client = Client::new(io, conn, limits);
    async move {
        // Registered once per connection rather than once per request. Every
        // poll of one takes two locks, so the selects below are `biased`: the
        // connection's own work is polled first, and when it is ready (the usual
        // case on a busy connection) the shutdown futures are not polled at all.
        // (A `connection::Watch` saved 280 instructions a GET but cost 0.12 KiB per idle connection.)
        let mut drained = Box::pin(stop.drain.clone().cancelled_owned());
        let mut cut = Box::pin(stop.cut.clone().cancelled_owned());
        loop {
            if client.rbuf.is_empty() {
                buffers::release(&mut client.rbuf);
                // Shutdown always drains before it cuts, so waiting on the drain covers both.
                let next = tokio::select! {
                    biased;
                    ready = client.watchdog.run(
                        Deadline::In(client.limits.idle_timeout),
                        client.io.wait_for_request(&mut client.rbuf),
                    ) => ready,
                    () = &mut drained => return,
                };
                if !matches!(next, Some(Ok(()))) {
                    return;
                }
            }
            // Boxed (by `serve_request`): an idle connection's task then holds
            // only this loop's small state, not the largest an exchange reaches.
            // The head's scope ends here, so no later wait keeps room for it.
            // A head still arriving is no request in flight: drain does not wait for it.
            let mut exchange = match tokio::select! {
                biased;
                read = client.read_head() => read,
                () = &mut drained => return,
            } {
                Ok(head) => serve_request(&mut client, head, states.load_full(), stop.drain.is_cancelled()),
                Err(HeadRead::Closed) => return,
                Err(HeadRead::Timeout) => return head_timed_out(&client.conn),
                Err(HeadRead::Refused(error)) => refuse(&mut client, error, states.load_full()),
            };
            let keep_alive = tokio::select! {
                biased;
                keep_alive = &mut exchange => keep_alive,
                () = &mut cut => return last_answer(&clock, exchange).await,
            };
            drop(exchange);
            if !keep_alive {
                return client.close().await;
            }
        }
    }
}

/// A head that did not end within `header_timeout`: the connection closes
/// without an answer (nginx's 408 is a close too), and the log says so.
fn head_timed_out(conn: &ConnContext) {
    tracing::warn!(client = %conn.peer, status = 408, "request head not complete within header_timeout; closing");
}

/// Shutdown's cut reached a connection mid-exchange. Recorded before the
/// exchange is dropped, so its access line says why; then the exchange is
/// polled once more (see `io::cut`): one still waiting for its upstream
/// answers 503. Anything else is dropped at `LAST_ANSWER`.
async fn last_answer(clock: &ConnClock, mut exchange: Exchanging<'_>) {
    clock.set_abort(AbortReason::Shutdown);
    let _ = tokio::time::timeout(LAST_ANSWER, &mut exchange).await;
}

/// Answers a head that could not be parsed; the connection then closes.
/// Boxed, like every exchange: an error path should not make every
/// connection's future larger.
fn refuse<S: Io>(client: &mut Client<S>, error: HeadError, state: Arc<State>) -> Exchanging<'_> {
    Box::pin(async move {
        let start = poll_clock::now().into_std();
        let active = client.conn.clock.request_started();
        let proxy_error = match error {
            HeadError::UriTooLong => ProxyError::UriTooLong,
            HeadError::FramingConflict => ProxyError::BadRequest(BadRequest::ContentLengthWithTransferEncoding),
            HeadError::TooLarge => ProxyError::HeadTooLarge,
            HeadError::TooManyFields => ProxyError::TooManyFields,
            HeadError::Malformed(_) => ProxyError::BadRequest(BadRequest::Malformed),
            HeadError::CleartextHttp2 => ProxyError::BadRequest(BadRequest::CleartextHttp2),
        };
        // The line says what could be read of the refused head: its method and path, if its request line was whole.
        let line = head::request_line(&client.rbuf, client.limits.max_uri_bytes);
        let path = line.as_ref().map_or(LineText::Static("-"), |line| LineText::Owned(line.path.as_str().into()));
        let trusted = &state.config.listen.trusted_proxies;
        let mut ctx = RequestContext::new(trusted, &client.conn, &Method::GET, &HeaderMap::new(), path);
        ctx.method = Method::from_bytes(b"-").unwrap_or(Method::GET);
        if let Some(line) = line {
            ctx.method = line.method;
            if let Some(version) = line.version {
                ctx.set_proto(version);
            }
        }
        let local = proxy::error_response(&proxy_error, &mut ctx);
        tracing::debug!(client = %client.conn.peer, "refused request head: {error}");
        let answering = Answering { start, active, state, head: false, keep_alive: false, http10: false };
        answer_local(client, &local, ctx, answering).await;
        false
    })
}

/// One request: plans it here and now, then returns the answer to run (made
/// here or forwarded). The box holds only what that answer needs: a future
/// spanning planning and every path would be kilobytes, too large for the
/// allocator's cache of small blocks, and copied whole into each request's box.
fn serve_request<S: Io>(
    client: &mut Client<S>,
    head: RequestHead,
    state: Arc<State>,
    draining: bool,
) -> Exchanging<'_> {
    let start = poll_clock::now().into_std();
    let active = client.conn.clock.request_started();
    let RequestHead { mut parts, framing, keep_alive, expects_continue, facts } = head;
    let mut ctx = RequestContext::new(
        &state.config.listen.trusted_proxies,
        &client.conn,
        &parts.method,
        &parts.headers,
        LineText::path_of(&parts.uri),
    );
    ctx.set_proto(parts.version);
    let is_head = parts.method == Method::HEAD;
    let keep_alive = keep_alive && !draining;
    let version = parts.version;
    let http10 = version == http::Version::HTTP_10;
    let answering = |keep_alive| Answering { start, active, state: state.clone(), head: is_head, keep_alive, http10 };
    let plan = proxy::plan(&state, &client.conn, (&mut parts, &facts), &mut ctx);
    // Answered here, a request's body is not read: the connection closes after the answer, lingering.
    client.linger = framing != Framing::Empty && !matches!(plan, Ok(Plan::Forward(_)));
    match plan {
        Err(error) => {
            let local = proxy::error_response(&error, &mut ctx);
            // An unread body would be taken for the next request: close instead.
            let keep = keep_alive && framing == Framing::Empty && !error.is_client_fault();
            let answering = answering(keep);
            Box::pin(async move { answer_local(client, &local, ctx, answering).await })
        }
        Ok(Plan::Local(local)) => {
            let answering = answering(keep_alive && framing == Framing::Empty);
            Box::pin(async move { answer_local(client, &local, ctx, answering).await })
        }
        Ok(Plan::Challenge(lookup)) => {
            let answering = answering(keep_alive && framing == Framing::Empty);
            Box::pin(async move { answer_local(client, &lookup.answer().await, ctx, answering).await })
        }
        Ok(Plan::Forward(plan)) => {
            let exchange =
                Box::new(Exchange { parts, framing, expects_continue, version, plan, ctx, ticket: None, keep: None });
            forward_exchange(client, exchange, answering(keep_alive))
        }
    }
}

/// The way out for a planned request: a rate limit shared through Redis
/// first (`[cluster]`), then on a `verify`, `dedupe` or `store` route the gate
/// (which may refuse a signature or answer a redelivery itself), then the
/// forwarding. What the gate can decide at once needs no future of its own.
#[inline]
fn forward_exchange<S: Io>(
    client: &mut Client<S>,
    mut exchange: Box<Exchange>,
    answering: Answering,
) -> Exchanging<'_> {
    if let Some(route) = exchange.plan.shared_rate.take() {
        return shared_rate_first(client, exchange, answering, route);
    }
    let table = exchange.plan.dedupe.take();
    let gated = table.is_some() || exchange.plan.verify.is_some() || answering.state.keeps(exchange.ctx.route_ref);
    if !gated {
        return forward::start(client, exchange, answering);
    }
    match gate::at_once(client, exchange, answering, table) {
        AtOnce::Forward(exchange, answering) => forward::start(client, exchange, answering),
        AtOnce::Later(exchange, answering, rest) => Box::pin(async move {
            match gate::finish(client, exchange, answering, rest).await {
                Gate::Forward(exchange, answering) => forward::start(client, exchange, answering).await,
                Gate::Answered(keep_alive) => keep_alive,
            }
        }),
    }
}

/// Awaits the route's rate limit in the cluster's bucket, then goes on as
/// `forward_exchange`; over the limit, 429 before any of the body is read.
#[cold]
fn shared_rate_first<S: Io>(
    client: &mut Client<S>,
    exchange: Box<Exchange>,
    answering: Answering,
    route: usize,
) -> Exchanging<'_> {
    Box::pin(async move {
        if let Err(error) = proxy::shared_rate(&answering.state, route, exchange.ctx.client).await {
            let Exchange { ctx, framing, .. } = *exchange;
            return exchange::fail(client, ctx, answering, error, framing).await;
        }
        forward_exchange(client, exchange, answering).await
    })
}

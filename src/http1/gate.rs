//! Routes whose request body is read whole before it is forwarded (within
//! the route's `max_body`): `verify` (the signature is checked first, see
//! `proxy::signed`), `dedupe` (the request's key is claimed, and a repeat
//! answered here with the first answer, see `guards::dedupe`) and `store`
//! (the request is kept in the spool now, or forwarded live with a `Keeping`
//! that keeps it if the upstream fails, see `spool::depot`). A body that goes
//! on is put back in front of the read buffer and forwarded unchanged like
//! any body that arrived with its head; one that came whole with its head is
//! checked and claimed where it lies.

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use http::header::{self, HeaderValue};

use super::client::Client;
use super::exchange::{Answering, Exchange, answer_local, fail};
use super::head::Framing;
use super::io::Io;
use super::request_body::{self, BodySink, PumpError, SinkClosed};
use crate::access::RequestContext;
use crate::error::ProxyError;
use crate::guards::dedupe::{Answer, Dedupe, Key, Settled, Ticket};
use crate::proxy::signed::{self, Checked};
use crate::proxy::{self, keep};
use crate::spool::depot::{Admitted, Keeping};
use crate::verify::Verifier;

/// The most room a body read whole gets before its first byte: a larger
/// declared length grows the buffer as bytes arrive.
const COLLECT_UP_FRONT: u64 = 1 << 20;

/// Collects a request body in memory.
struct Collect(Vec<u8>);

impl BodySink for Collect {
    async fn data(&mut self, bytes: &[u8]) -> Result<(), SinkClosed> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    async fn end_chunked(&mut self, _trailers: &[u8]) -> Result<(), SinkClosed> {
        Ok(())
    }
}

/// Either the exchange goes on (with the claim's ticket and the keeping in
/// it), or the client has been answered here and this says whether to keep
/// the connection.
pub enum Gate {
    Forward(Box<Exchange>, Answering),
    Answered(bool),
}

/// What the gate decides before anything is awaited. Most webhooks arrive
/// whole with their head, pass their check and claim a new key: they go on
/// at once, without a future of the gate's own (a box and a copy of it per
/// request, measured: a fifth of what `verify` cost besides its HMAC).
pub enum AtOnce {
    Forward(Box<Exchange>, Answering),
    /// `finish` does the rest.
    Later(Box<Exchange>, Answering, Rest),
}

/// What is left for `finish`, which may wait or answer.
pub enum Rest {
    /// Every step: the body is still to be read whole (or a `100 Continue`
    /// sent first), or the request may be kept.
    Whole(Option<Arc<Verifier>>, Option<Arc<Dedupe>>),
    /// The signature was refused; the body lies unread at the front of the
    /// read buffer, this many bytes.
    Refused(ProxyError, usize),
    /// The key's claim, settled as a repeat or waiting for the first request
    /// with it (`None`), and the body's unread bytes.
    Claim(Arc<Dedupe>, Key, Option<Settled>, usize),
}

/// Checks the signature (`verify`) and claims the key (`dedupe`) of a body
/// that came whole with its head, on a route that keeps nothing, where the
/// body lies: it is then forwarded from there, framed as the client framed
/// it. No copy in and out: with the copies (and the two buffers they took)
/// a dedupe route cost about a fifth more than the same route without.
pub fn at_once<S: Io>(
    client: &Client<S>,
    mut ex: Box<Exchange>,
    answering: Answering,
    table: Option<Arc<Dedupe>>,
) -> AtOnce {
    let verify = ex.plan.verify.take();
    let length = match ex.framing {
        _ if answering.state.keeps(ex.ctx.route_ref) => None,
        Framing::Empty => Some(0),
        Framing::Length(length) if !ex.expects_continue && client.rbuf.len() as u64 >= length => Some(length as usize),
        _ => None,
    };
    let Some(length) = length else { return AtOnce::Later(ex, answering, Rest::Whole(verify, table)) };
    let body = &client.rbuf[..length];
    let table = match signed::check(&answering.state, &mut ex.ctx, verify.as_deref(), &ex.parts, body) {
        Ok(checked) => table.filter(|_| checked == Checked::Trusted),
        Err(refused) => return AtOnce::Later(ex, answering, Rest::Refused(refused, length)),
    };
    let Some(table) = table else { return AtOnce::Forward(ex, answering) };
    let Some(key) = table.spec().key.of(&ex.parts, body) else { return AtOnce::Forward(ex, answering) };
    match table.settle_now(&key) {
        Some(Settled::Forward(ticket)) => {
            ex.ticket = Some(ticket);
            AtOnce::Forward(ex, answering)
        }
        settled => AtOnce::Later(ex, answering, Rest::Claim(table, key, settled, length)),
    }
}

/// The rest of what `at_once` left.
pub async fn finish<S: Io>(client: &mut Client<S>, ex: Box<Exchange>, answering: Answering, rest: Rest) -> Gate {
    match rest {
        Rest::Whole(verify, table) => whole(client, ex, answering, verify, table).await,
        Rest::Refused(refused, unread) => {
            // Not forwarded: the body must not be read as the next request.
            client.rbuf.advance(unread);
            Gate::Answered(fail(client, ex.ctx, answering, refused, Framing::Empty).await)
        }
        Rest::Claim(table, key, settled, unread) => {
            match claim(client, ex, answering, (&table, key, settled), unread).await {
                Ok((ex, answering)) => Gate::Forward(ex, answering),
                Err(answered) => answered,
            }
        }
    }
}

/// Reads the body whole, checks its signature (`verify`), claims its key
/// (`dedupe`) and decides whether it is kept (`store`).
async fn whole<S: Io>(
    client: &mut Client<S>,
    mut ex: Box<Exchange>,
    mut answering: Answering,
    verify: Option<Arc<Verifier>>,
    table: Option<Arc<Dedupe>>,
) -> Gate {
    if ex.expects_continue && ex.framing != Framing::Empty {
        if !client.send_continue().await {
            return Gate::Answered(false);
        }
        ex.expects_continue = false;
    }
    let body = match collect(client, &ex).await {
        Ok(body) => body,
        Err(error) => return Gate::Answered(fail(client, ex.ctx, answering, error, Framing::UntilClose).await),
    };
    let table = match signed::check(&answering.state, &mut ex.ctx, verify.as_deref(), &ex.parts, &body) {
        Ok(checked) => table.filter(|_| checked == Checked::Trusted),
        // The body has been read: nothing of this request is left on the wire.
        Err(refused) => return Gate::Answered(fail(client, ex.ctx, answering, refused, Framing::Empty).await),
    };
    if let Some(table) = table
        && let Some(key) = table.spec().key.of(&ex.parts, &body)
    {
        let settled = table.settle_now(&key);
        (ex, answering) = match claim(client, ex, answering, (&table, key, settled), 0).await {
            Ok(going_on) => going_on,
            Err(answered) => return answered,
        };
    }
    let length = body.len();
    put_back(client, &mut ex, &body);
    if answering.state.keeps(ex.ctx.route_ref) {
        let state = answering.state.clone();
        let kept = keep::keeping(&state, &ex.ctx, ex.plan.upstream, &ex.parts, &ex.plan.added, body);
        if let Some(keeping) = kept {
            match keeping.admit().await {
                Admitted::Live(keeping) => ex.keep = Some(Box::new(keeping)),
                admitted => {
                    // Not forwarded: the body put back must not be read as the next request.
                    client.rbuf.advance(length);
                    let (ctx, ticket) = (ex.ctx, ex.ticket);
                    return Gate::Answered(answer_kept(client, ctx, ticket, answering, &admitted).await);
                }
            }
        }
    }
    Gate::Forward(ex, answering)
}

/// Reads the body of `ex` whole (within its `max_body`); an error is the client's fault.
async fn collect<S: Io>(client: &mut Client<S>, ex: &Exchange) -> Result<Vec<u8>, ProxyError> {
    // Sized for a declared length up front (within reason): no regrowing while it arrives.
    let declared = match ex.framing {
        Framing::Length(n) => n.min(ex.plan.max_body).min(COLLECT_UP_FRONT) as usize,
        _ => 0,
    };
    let mut collected = Collect(Vec::with_capacity(declared));
    match request_body::pump(client, &mut collected, ex.framing, ex.plan.max_body).await {
        Ok(()) => Ok(collected.0),
        Err(PumpError::Client(error)) => Err(error),
        // `Collect` never refuses data: this cannot happen.
        Err(PumpError::Upstream(_)) => Err(ProxyError::UpstreamBroken),
    }
}

/// Claims the request's `key` (`dedupe`), settled already unless the first
/// request with it is in flight (`None`): `Ok` to go on (with the ticket in
/// the exchange), or the repeat answered here. `unread`: body bytes still at
/// the front of the read buffer, dropped when the request is answered here.
async fn claim<S: Io>(
    client: &mut Client<S>,
    mut ex: Box<Exchange>,
    answering: Answering,
    (table, key, settled): (&Arc<Dedupe>, Key, Option<Settled>),
    unread: usize,
) -> Result<(Box<Exchange>, Answering), Gate> {
    let settled = match settled {
        Some(settled) => settled,
        None => table.settle(key.clone(), answering.state.upstreams[ex.plan.upstream].config.response_timeout).await,
    };
    if !matches!(settled, Settled::Forward(_)) {
        // Not forwarded: the body must not be read as the next request.
        client.rbuf.advance(unread);
    }
    match settled {
        Settled::Forward(ticket) => {
            ex.ticket = Some(ticket);
            Ok((ex, answering))
        }
        // The body has been read: the connection can carry the next request.
        Settled::Repeat(answer) => Err(Gate::Answered(suppress(client, ex, answering, (table, &key), answer).await)),
        Settled::TimedOut => {
            Err(Gate::Answered(fail(client, ex.ctx, answering, ProxyError::UpstreamTimeout, Framing::Empty).await))
        }
    }
}

/// Answers a request hookgate kept (or could not keep) instead of forwarding it.
async fn answer_kept<S: Io>(
    client: &mut Client<S>,
    mut ctx: RequestContext,
    ticket: Option<Ticket>,
    answering: Answering,
    admitted: &Admitted,
) -> bool {
    let Some(local) = keep::kept_answer(admitted, &mut ctx) else { return false };
    if let Some(ticket) = ticket {
        // A repeat of a kept request gets the same acknowledgement, and is not kept twice.
        ticket.remember(local.status.as_u16(), local.headers.get(header::CONTENT_TYPE), &local.body);
    }
    answer_local(client, &local, ctx, answering).await
}

/// The live attempt of a request on a `store` route failed (`why`): in
/// `fallback` it is kept and acknowledged (or 503), in `journal` its copy
/// waits for redelivery and `error` is answered as it would be without `store`.
/// The whole body went out with the head, so nothing of it is left unread.
pub async fn live_failed<S: Io>(
    client: &mut Client<S>,
    ctx: RequestContext,
    answering: Answering,
    keeping: Box<Keeping>,
    ticket: Option<Ticket>,
    error: ProxyError,
    why: String,
) -> bool {
    match keeping.live_failed(&why).await {
        Some(admitted) => answer_kept(client, ctx, ticket, answering, &admitted).await,
        None => fail(client, ctx, answering, error, Framing::Empty).await,
    }
}

/// Puts `body` back in front of whatever the client pipelined after it, so it
/// is forwarded like a body that arrived with its head, with a Content-Length.
/// The connection's own buffer is reused when nothing was pipelined after
/// the body (the usual case): a new one would be allocated again at the
/// next read (measured: most of what `fallback` cost over live forwarding).
fn put_back<S: Io>(client: &mut Client<S>, ex: &mut Exchange, body: &[u8]) {
    if client.rbuf.is_empty() {
        client.rbuf.extend_from_slice(body);
    } else {
        let mut rbuf = BytesMut::with_capacity(body.len() + client.rbuf.len());
        rbuf.extend_from_slice(body);
        rbuf.extend_from_slice(&client.rbuf);
        client.rbuf = rbuf;
    }
    let length = Framing::Length(body.len() as u64);
    if ex.framing != Framing::Empty && ex.framing != length {
        ex.parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    ex.framing = if body.is_empty() { Framing::Empty } else { length };
}

/// Answers a repeat with the first request's answer.
async fn suppress<S: Io>(
    client: &mut Client<S>,
    mut ex: Box<Exchange>,
    answering: Answering,
    (table, key): (&Dedupe, &Key),
    answer: Answer,
) -> bool {
    let local = proxy::repeated_answer(&mut ex.ctx, &answering.state, (&table.spec().key, key), answer);
    answer_local(client, &local, ex.ctx, answering).await
}

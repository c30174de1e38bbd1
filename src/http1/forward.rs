//! Forwarding one planned request from the engine.
//!
//! To a plain-HTTP upstream the engine speaks HTTP/1.1 itself, on a
//! connection borrowed from this worker's pool and driven from this task: the
//! rewritten head (and a body that is already here) goes out in one write,
//! a streamed body is copied through a bounded buffer, the response head is
//! parsed and written to the client with hop-by-hop headers removed, and the
//! body is copied back with framing hookgate writes itself. The connection
//! goes back to the pool only after a complete, well-framed exchange.
//! https upstreams (and HTTP/2 to them) go through hyper's client instead,
//! see `hyper_path`.

use bytes::{Buf, BytesMut};
use http::{StatusCode, Version};

use super::buffers;
use super::client::Client;
use super::exchange::{Answering, Exchange, Exchanging, client_left, fail};
use super::gate;
use super::head::{Framing, ResponseHead};
use super::hyper_path;
use super::io::{self, Io};
use super::request_body::{self, PumpError, SinkClosed, SocketSink};
use super::response_body::{self, BodyCopy};
use super::upstream_side::{HeadFailure, Retry, connect_failed, early_answer, read_response_head, write_upstream};
use super::wire::{client_framing, write_request_head, write_response_head};
use crate::connection::AbortReason;
use crate::error::ProxyError;
use crate::guards::dedupe::{Capture, Ticket};
use crate::upstream::UpstreamClient;
use crate::upstream::pool::{self, UpstreamConn};

/// The forwarding of `exchange` (after the dedupe gate, on `dedupe` routes):
/// hyper's client for an https upstream, the engine's own for a plain one.
/// Its output says whether the client connection may carry another request.
#[inline(always)]
pub fn start<S: Io>(client: &mut Client<S>, exchange: Box<Exchange>, answering: Answering) -> Exchanging<'_> {
    if answering.state.upstreams[exchange.plan.upstream].config.tls.is_some() {
        Box::pin(hyper_path::forward(client, exchange, answering))
    } else {
        Box::pin(forward(client, exchange, answering))
    }
}

/// Forwards `exchange` to a plain-HTTP upstream and answers the client.
///
/// The exchange is boxed, and so are the futures of the paths most requests
/// never take: async functions keep their arguments twice, and every byte of
/// this future is copied into the per-request box `serve` makes. The send
/// and the relay stay in this one future: split into two (returning the
/// connection and the response head between them) it cost 3.9% more
/// instructions per proxied GET under `bench/instructions.sh`.
async fn forward<S: Io>(client: &mut Client<S>, mut ex: Box<Exchange>, answering: Answering) -> bool {
    let state = answering.state.clone();
    let upstream = &state.upstreams[ex.plan.upstream];
    let (out, body_left) = request_bytes(client, &ex);
    let mut retry = Retry::new(&ex.parts.method, body_left);
    let mut ubuf = buffers::take();
    let sent = loop {
        let mut conn = match pool::checkout(&upstream.config, &upstream.metrics.open, &upstream.metrics.idle).await {
            Ok(conn) => conn,
            Err(e) => break Err(Ended::Failed(connect_failed(upstream, &e), ex.framing)),
        };
        match write_upstream(&mut conn.stream, &out, &mut client.watchdog, upstream).await {
            Ok(()) => {}
            Err(_) if retry.again(&conn) => continue,
            Err(_) => break Err(Ended::Failed(ProxyError::UpstreamBroken, ex.framing)),
        }
        let request_complete = match body_left {
            Framing::Empty => true,
            _ => match Box::pin(send_body(client, &mut conn, &ex, body_left, upstream, &mut ubuf)).await {
                Ok(complete) => complete,
                Err(ended) => break Err(ended),
            },
        };
        // Biased, the head first: once it is in, the other two are not polled again. A client that
        // left cancels the exchange (the connection is closed, not pooled), except for a claimed
        // request: its repeats are waiting for the backend's answer (see `dedupe`).
        let head = tokio::select! {
            biased;
            head = read_response_head(&mut conn, &mut ubuf, answering.head, &mut client.watchdog, upstream) => head,
            () = client.io.gone(&mut client.rbuf), if ex.ticket.is_none() => break Err(Ended::ClientLeft),
            () = io::cut(&client.conn.clock) => break Err(Ended::Failed(ProxyError::ShuttingDown, Framing::UntilClose)),
        };
        match head {
            Ok(head) if kept_instead(&ex, &head) => break Err(Ended::KeptInstead(head.status)),
            Ok(head) => break Ok((conn, head, request_complete)),
            Err(HeadFailure::Closed) if ubuf.is_empty() && retry.again(&conn) => continue,
            Err(failure) => {
                let unread = if request_complete { Framing::Empty } else { Framing::UntilClose };
                break Err(Ended::Failed(failure.into_error(upstream), unread));
            }
        }
    };
    buffers::give_vec(out);
    let (mut conn, head, request_complete) = match sent {
        Ok(sent) => sent,
        Err(ended) => return ended.answer(client, ex, answering, ubuf).await,
    };
    let capture = answered(&mut ex, &head, &ubuf, upstream);
    if head.status == 101 {
        return Box::pin(super::tunnel::run(client, conn, ubuf, head, ex, answering)).await;
    }
    let (copy, keep_alive) = response_copy(&ubuf, &head, &ex, answering.keep_alive && request_complete, upstream);
    ex.ctx.upstream = Some(upstream.config.name.clone());
    let delivery = answering.deliver(ex.ctx, StatusCode::from_u16(head.status).unwrap_or(StatusCode::BAD_GATEWAY));
    ubuf.advance(head.len);
    let outcome = response_body::copy(client, &mut conn.stream, &mut ubuf, (copy, capture), &delivery).await;
    release(conn, ubuf, head, outcome.upstream_clean && request_complete, upstream);
    buffers::give_map(std::mem::take(&mut ex.parts.headers));
    outcome.client_ok && keep_alive
}

/// The upstream answered: counted for the status page, and told to a
/// `store` route's keeping and to the dedupe claim, whose waiting repeats
/// get this answer if it is a 2xx with a body short enough to remember: the
/// capture that copies the body as it passes (see `response_body`).
#[inline]
fn answered(ex: &mut Exchange, head: &ResponseHead, ubuf: &[u8], upstream: &UpstreamClient) -> Option<Box<Capture>> {
    upstream.metrics.recent.answered();
    if let Some(keep) = ex.keep.take() {
        keep.answered(head.status);
    }
    capture(ex.ticket.take()?, head, ubuf)
}

/// A claimed request's answer: the capture of its body, when it is one to remember.
#[inline(never)]
fn capture(ticket: Ticket, head: &ResponseHead, ubuf: &[u8]) -> Option<Box<Capture>> {
    let length = match head.framing {
        Framing::Length(n) => Some(n),
        Framing::Empty => Some(0),
        Framing::Chunked | Framing::UntilClose => None,
    };
    let content_type = head.headers.iter().find(|(name, _)| ubuf[name.clone()].eq_ignore_ascii_case(b"content-type"));
    ticket.head(head.status, content_type.map(|(_, value)| &ubuf[value.clone()]), length)
}

/// Whether a `fallback` route keeps the request instead of passing on this
/// answer (502, 503, 504). The connection is then dropped: the answer's body is unread.
#[inline]
fn kept_instead(ex: &Exchange, head: &ResponseHead) -> bool {
    ex.keep.as_ref().is_some_and(|keep| keep.takes_over(head.status))
}

/// Gives the buffer and the head's header ranges back, and the connection
/// back to the pool when the exchange on it ended cleanly and nothing more
/// arrived after it.
#[inline]
fn release(conn: UpstreamConn, ubuf: BytesMut, head: ResponseHead, clean: bool, upstream: &UpstreamClient) {
    let reusable = clean && !head.close && ubuf.is_empty();
    buffers::give(ubuf);
    if reusable {
        pool::checkin(&upstream.config, conn, head.idle_hint(), &upstream.metrics.idle);
    }
    buffers::give_ranges(head.headers);
}

/// How an exchange ended before the upstream's response head came (or with
/// one that is not passed on).
enum Ended {
    /// Answer the error; `Framing` says how much request body is still unread.
    Failed(ProxyError, Framing),
    /// The client left: its request is logged as 499 (see `client_left`).
    ClientLeft,
    /// A `fallback` route's upstream answered this (502, 503, 504): the
    /// request is kept instead (see `gate::live_failed`).
    KeptInstead(u16),
}

impl Ended {
    /// Answers (or logs) the request; `ubuf`, read into for nothing, goes
    /// back. On a `store` route an upstream's failure keeps the request.
    async fn answer<S: Io>(
        self,
        client: &mut Client<S>,
        mut ex: Box<Exchange>,
        answering: Answering,
        ubuf: BytesMut,
    ) -> bool {
        buffers::give(ubuf);
        match (self, ex.keep.take()) {
            (Ended::KeptInstead(status), Some(keeping)) => {
                let why = format!("{} answered {status}", ex.ctx.upstream_name());
                Box::pin(gate::live_failed(
                    client,
                    ex.ctx,
                    answering,
                    keeping,
                    ex.ticket,
                    ProxyError::UpstreamBroken,
                    why,
                ))
                .await
            }
            (Ended::Failed(error, _), Some(keeping)) if error.is_upstream_fault() => {
                let why = error.to_string();
                Box::pin(gate::live_failed(client, ex.ctx, answering, keeping, ex.ticket, error, why)).await
            }
            (Ended::Failed(error, unread), _) => fail(client, ex.ctx, answering, error, unread).await,
            (Ended::KeptInstead(_), None) => {
                fail(client, ex.ctx, answering, ProxyError::UpstreamBroken, Framing::Empty).await
            }
            (Ended::ClientLeft, _) => {
                client.conn.clock.set_abort(AbortReason::ClientClosed);
                client_left(ex.ctx, answering);
                false
            }
        }
    }
}

/// The rewritten head, and the body with it when all of it is already here
/// (one write carries both). Returns how the body still to come is framed.
#[inline]
fn request_bytes<S: Io>(client: &mut Client<S>, ex: &Exchange) -> (Vec<u8>, Framing) {
    let mut out = buffers::take_vec();
    write_request_head(&mut out, &ex.parts, &ex.plan.added, ex.framing);
    let body_left = match ex.framing {
        Framing::Length(n) if client.rbuf.len() as u64 >= n => {
            out.extend_from_slice(&client.rbuf[..n as usize]);
            client.rbuf.advance(n as usize);
            Framing::Empty
        }
        other => other,
    };
    (out, body_left)
}

/// Streams the request body that did not come with the head upstream, after
/// answering the client's `Expect: 100-continue`. `Ok(false)`: the request is
/// incomplete, because the upstream stopped taking the body or answered
/// before its end (an early `401`, say: its head is then in `ubuf`, and the
/// rest of the body is not waited for). The client connection then closes.
/// `forward` boxes this future: the largest of its awaits, which a GET never takes.
async fn send_body<S: Io>(
    client: &mut Client<S>,
    conn: &mut UpstreamConn,
    ex: &Exchange,
    body_left: Framing,
    upstream: &UpstreamClient,
    ubuf: &mut BytesMut,
) -> Result<bool, Ended> {
    if ex.expects_continue && !client.send_continue().await {
        return Err(Ended::ClientLeft); // The head went upstream: the request still gets its line.
    }
    let chunked = body_left == Framing::Chunked;
    let write_timeout = upstream.config.response_timeout;
    let (from_upstream, to_upstream) = conn.stream.split();
    let mut sink = SocketSink { stream: to_upstream, chunked, write_timeout, scratch: Vec::new() };
    let pumped = tokio::select! {
        biased;
        pumped = request_body::pump(client, &mut sink, body_left, ex.plan.max_body) => pumped,
        () = early_answer(&from_upstream, ubuf) => Err(PumpError::Upstream(SinkClosed)),
    };
    match pumped {
        Ok(()) => Ok(true),
        Err(PumpError::Client(error)) => Err(Ended::Failed(error, Framing::UntilClose)),
        Err(PumpError::Upstream(_)) => {
            client.linger = true;
            Ok(false)
        }
    }
}

/// How the response body is copied, its head written for the client, and
/// whether the client connection stays open after it.
#[inline]
fn response_copy(
    ubuf: &[u8],
    head: &ResponseHead,
    ex: &Exchange,
    keep_alive: bool,
    upstream: &UpstreamClient,
) -> (BodyCopy, bool) {
    let http10 = ex.version == Version::HTTP_10;
    let to = client_framing(head.framing, http10);
    let keep_alive = keep_alive && to != Framing::UntilClose;
    let mut head_out = buffers::take_vec();
    write_response_head(&mut head_out, ubuf, head, to, keep_alive, http10);
    let read_timeout = upstream.config.response_timeout;
    (BodyCopy { from: head.framing, to, read_timeout, head: head_out }, keep_alive)
}

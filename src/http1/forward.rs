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
//! see `via_hyper`.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::Version;
use http::request::Parts;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::body::{self, BodyCopy, PumpError, SocketSink};
use super::buffers;
use super::date;
use super::dedupe::Gate;
use super::head::{self, Framing, ResponseHead};
use super::hyper_path;
use super::io::{self, Deadline, Io, Watchdog, send_all};
use super::serve::{Answering, Client, Exchanging, answer_local, note_send_error, write_header, write_status};
use crate::access::{Delivery, RequestLine};
use crate::error::ProxyError;
use crate::guards::dedupe::Ticket;
use crate::proxy::{self, Forward, headers};
use crate::upstream::pool::{self, UpstreamConn};

/// Longest response head accepted from an upstream.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// One planned request on its way out.
pub struct Exchange {
    /// The head as rewritten for the upstream.
    pub parts: Parts,
    /// How the client frames the request body.
    pub framing: Framing,
    pub expects_continue: bool,
    /// The client's HTTP version.
    pub version: Version,
    pub plan: Forward,
    pub line: RequestLine,
    /// On a `dedupe` route: where the backend's status is reported.
    pub ticket: Option<Ticket>,
}

/// Forwards `exchange` and answers the client. Returns whether the client
/// connection may carry another request.
///
/// The exchange is boxed, and so are the futures of the paths most requests
/// never take: async functions keep their arguments twice, and every byte of
/// this future is copied into the per-request box `serve` makes.
///
/// One function on purpose, though long: split into a send half and a relay
/// half (returning the connection and the response head between them) it cost
/// 3.9% more instructions per proxied GET under `bench/instructions.sh`
/// (21.7k → 22.5k), from the extra future layer and the moves between them.
pub async fn forward<S: Io>(client: &mut Client<S>, mut ex: Box<Exchange>, mut answering: Answering) -> bool {
    if let Some(table) = ex.plan.dedupe.clone() {
        match Box::pin(super::dedupe::gate(client, ex, answering, &table)).await {
            Gate::Forward(forwarded, kept) => (ex, answering) = (forwarded, kept),
            Gate::Answered(keep_alive) => return keep_alive,
        }
    }
    let state = answering.state.clone();
    let upstream = &state.upstreams[ex.plan.upstream];
    if upstream.config.tls.is_some() {
        return Box::pin(hyper_path::forward(client, ex, answering, upstream)).await;
    }
    let config = &upstream.config;
    let metrics = &upstream.metrics;
    let is_head = answering.head;

    let mut out = buffers::take_vec();
    write_request_head(&mut out, &ex.parts, &ex.plan.added, ex.framing);
    // A body that is already here goes out with the head, in one write.
    let mut body_left = match ex.framing {
        Framing::Length(n) if client.rbuf.len() as u64 >= n => {
            out.extend_from_slice(&client.rbuf[..n as usize]);
            client.rbuf.advance(n as usize);
            Framing::Empty
        }
        other => other,
    };
    let retryable = body_left == Framing::Empty && is_idempotent(&ex.parts.method);

    let mut ubuf = buffers::take();
    let mut retried = false;
    let (mut conn, response) = loop {
        let mut conn = match pool::checkout(config, &metrics.open, &metrics.idle).await {
            Ok(conn) => conn,
            Err(e) => {
                metrics.connect_failed(&e.to_string());
                tracing::debug!(upstream = %config.name, "connect failed: {e}");
                buffers::give(ubuf);
                return fail(client, ex.line, answering, ProxyError::UpstreamUnreachable, ex.framing).await;
            }
        };
        if write_upstream(&mut conn, &out, &mut client.watchdog, config.response_timeout).await.is_err() {
            if conn.reused && !retried && retryable {
                retried = true;
                continue;
            }
            buffers::give(ubuf);
            return fail(client, ex.line, answering, ProxyError::UpstreamBroken, ex.framing).await;
        }
        if ex.expects_continue && body_left != Framing::Empty && !continue_client(client).await {
            // The head went upstream: the request still gets its line.
            log_client_left(ex.line, answering);
            return false;
        }
        let mut request_complete = true;
        if body_left != Framing::Empty {
            let chunked = body_left == Framing::Chunked;
            let mut sink = SocketSink {
                stream: &mut conn.stream,
                chunked,
                write_timeout: config.response_timeout,
                scratch: Vec::new(),
            };
            match body::pump(client, &mut sink, body_left, ex.plan.max_body).await {
                Ok(()) => body_left = Framing::Empty,
                Err(PumpError::Client(error)) => {
                    buffers::give(ubuf);
                    return fail(client, ex.line, answering, error, Framing::UntilClose).await;
                }
                // The upstream stopped taking the body; it may have answered already.
                Err(PumpError::Upstream) => request_complete = false,
            }
        }
        // response_timeout counts from the end of the request, however long its body took.
        let deadline = Instant::now() + config.response_timeout;
        // A claimed update waits for the backend's answer even if Telegram
        // gave up: its redelivery is waiting for that status (see `dedupe`).
        let cancellable = ex.ticket.is_none();
        // Biased, the head first: once it is in, the other two are not polled again.
        let head = tokio::select! {
            biased;
            head = read_response_head(&mut conn, &mut ubuf, is_head, &mut client.watchdog, deadline) => head,
            () = client.io.gone(&mut client.rbuf), if cancellable => {
                // Nobody is waiting for the answer: cancel the exchange (the
                // upstream connection is closed, not pooled), log it as 499.
                client.conn.clock.set_abort(crate::connection::AbortReason::ClientClosed);
                log_client_left(ex.line, answering);
                return false;
            }
            () = io::cut(&client.conn.clock) => {
                buffers::give(ubuf);
                return fail(client, ex.line, answering, ProxyError::ShuttingDown, Framing::UntilClose).await;
            }
        };
        match head {
            Ok(head) => break (conn, (head, request_complete)),
            Err(HeadFailure::Closed) if conn.reused && !retried && retryable && ubuf.is_empty() => {
                retried = true;
                continue;
            }
            Err(failure) => {
                let error = match failure {
                    HeadFailure::Timeout => {
                        metrics.timed_out(config.response_timeout);
                        ProxyError::UpstreamTimeout
                    }
                    HeadFailure::Closed | HeadFailure::Invalid(_) => ProxyError::UpstreamBroken,
                };
                if let HeadFailure::Invalid(why) = failure {
                    tracing::warn!(upstream = %config.name, "upstream sent an invalid response head: {why}");
                }
                buffers::give(ubuf);
                let framing = if request_complete { Framing::Empty } else { Framing::UntilClose };
                return fail(client, ex.line, answering, error, framing).await;
            }
        }
    };
    buffers::give_vec(out);
    let (head, request_complete) = response;
    metrics.recent.answered();
    if let Some(ticket) = ex.ticket.take() {
        ticket.answered(head.status);
    }

    if head.status == 101 {
        return Box::pin(super::tunnel::run(client, conn, ubuf, head, ex, answering)).await;
    }
    let http10 = ex.version == Version::HTTP_10;
    let client_framing = client_framing(head.framing, http10);
    let keep_alive = answering.keep_alive && request_complete && client_framing != Framing::UntilClose;
    let mut head_out = buffers::take_vec();
    write_response_head(&mut head_out, &ubuf, &head, client_framing, keep_alive, http10);
    let status = http::StatusCode::from_u16(head.status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    ex.line.upstream = Some(config.name.clone());
    let Answering { start, active, state, .. } = answering;
    let route_metrics = state.route_metrics(ex.line.route_ref);
    let delivery = Delivery::new(ex.line, status, start, active, route_metrics);
    ubuf.advance(head.len);
    let copy =
        BodyCopy { from: head.framing, to: client_framing, read_timeout: config.response_timeout, head: head_out };
    // Boxed on its own, so neither box is too large for the allocator's small-block cache.
    let outcome = Box::pin(body::copy_response(client, &mut conn.stream, &mut ubuf, copy, &delivery)).await;
    let upstream_reusable = outcome.upstream_clean && !head.close && request_complete && ubuf.is_empty();
    buffers::give(ubuf);
    if upstream_reusable {
        pool::checkin(config, conn, head.idle_hint(), &metrics.idle);
    }
    outcome.client_ok && keep_alive
}

/// Answers `error` to the client. `unread` is how the request body still on
/// the connection is framed (`Empty` when none is left); with any left, or a
/// client fault, the connection closes after the answer.
/// Boxed: an error path should not make every exchange's future larger.
pub(super) fn fail<'a, S: Io>(
    client: &'a mut Client<S>,
    mut line: RequestLine,
    mut answering: Answering,
    error: ProxyError,
    unread: Framing,
) -> Exchanging<'a> {
    Box::pin(async move {
        let local = proxy::error_response(&error, &mut line);
        answering.keep_alive &= unread == Framing::Empty && !error.is_client_fault();
        answer_local(client, &local, line, answering).await
    })
}

/// Logs a request whose client left before its answer began: 499, as nginx
/// does, with the reason the connection's clock holds.
pub(super) fn log_client_left(line: RequestLine, answering: Answering) {
    let Answering { start, active, state, .. } = answering;
    let metrics = state.route_metrics(line.route_ref);
    Delivery::new(line, crate::access::client_closed_status(), start, active, metrics).client_left();
}

/// hookgate answers the client's `Expect: 100-continue` itself, once the
/// request is routed and admitted (the upstream never sees the header).
pub async fn continue_client<S: Io>(client: &mut Client<S>) -> bool {
    match send_all(&mut client.io, b"HTTP/1.1 100 Continue\r\n\r\n", client.limits.send_timeout, |_| {}).await {
        Ok(()) => true,
        Err(e) => {
            note_send_error(&client.conn, e);
            false
        }
    }
}

fn is_idempotent(method: &http::Method) -> bool {
    use http::Method;
    [Method::GET, Method::HEAD, Method::OPTIONS, Method::PUT, Method::DELETE, Method::TRACE].contains(method)
}

/// How a response framed as `upstream` is framed for the client: lengths
/// stay, and a body of unknown length is chunked again (HTTP/1.0 clients,
/// which cannot read chunks, get it until the connection closes).
pub fn client_framing(upstream: Framing, http10: bool) -> Framing {
    match upstream {
        Framing::Empty => Framing::Empty,
        Framing::Length(n) => Framing::Length(n),
        Framing::Chunked | Framing::UntilClose if http10 => Framing::UntilClose,
        Framing::Chunked | Framing::UntilClose => Framing::Chunked,
    }
}

/// The request line and headers for the upstream, in one buffer.
pub fn write_request_head(out: &mut Vec<u8>, parts: &Parts, added: &headers::Added, framing: Framing) {
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut length_written = false;
    for (name, value) in &parts.headers {
        // hookgate answers `Expect` itself; the framing header is its own.
        if name == http::header::EXPECT {
            continue;
        }
        if name == http::header::CONTENT_LENGTH {
            if framing == Framing::Chunked {
                continue;
            }
            length_written = true;
        }
        write_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    // A body is never sent without its framing, whatever took the header out.
    if let (Framing::Length(n), false) = (framing, length_written) {
        write_header(out, b"content-length", itoa::Buffer::new().format(n).as_bytes());
    }
    for (name, value) in added.pairs() {
        write_header(out, name.as_bytes(), value);
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes the head (and a body already here) within `limit` of the first wait.
async fn write_upstream(
    conn: &mut UpstreamConn,
    bytes: &[u8],
    watchdog: &mut Watchdog,
    limit: Duration,
) -> std::io::Result<()> {
    let written = watchdog.run(Deadline::In(limit), conn.stream.write_all(bytes)).await;
    written.unwrap_or(Err(std::io::ErrorKind::TimedOut.into()))
}

enum HeadFailure {
    Timeout,
    /// Closed or reset before a whole head.
    Closed,
    Invalid(&'static str),
}

/// Reads the final response head (interim 1xx heads other than 101 are
/// skipped) by `deadline`. The head stays at the start of `buf`.
async fn read_response_head(
    conn: &mut UpstreamConn,
    buf: &mut BytesMut,
    is_head: bool,
    watchdog: &mut Watchdog,
    deadline: Instant,
) -> Result<ResponseHead, HeadFailure> {
    loop {
        if !buf.is_empty() {
            match head::parse_response(buf, is_head, MAX_RESPONSE_HEAD) {
                Err(why) => return Err(HeadFailure::Invalid(why)),
                Ok(Some(head)) if (100..200).contains(&head.status) && head.status != 101 => {
                    buf.advance(head.len);
                    continue;
                }
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
            }
        }
        buffers::ensure(buf);
        match watchdog.run(Deadline::At(deadline), conn.stream.read_buf(buf)).await {
            None => return Err(HeadFailure::Timeout),
            Some(Ok(0) | Err(_)) => return Err(HeadFailure::Closed),
            Some(Ok(_)) => {}
        }
    }
}

/// Writes the upstream's response head for the client: hop-by-hop headers
/// and those named in `Connection` removed, `Via` added, framing and
/// connection headers of hookgate's own.
pub fn write_response_head(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &ResponseHead,
    framing: Framing,
    keep_alive: bool,
    http10: bool,
) {
    let reason = std::str::from_utf8(&buf[head.reason.clone()]).unwrap_or("");
    write_status(out, head.status, reason);
    if !write_end_to_end_headers(out, buf, head, matches!(framing, Framing::Chunked | Framing::UntilClose)) {
        date::write(out);
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The upstream's headers minus hop-by-hop ones and those its `Connection`
/// names (and `Content-Length` when hookgate frames the body otherwise),
/// plus `Via`. Returns whether the upstream sent a `Date`.
pub fn write_end_to_end_headers(out: &mut Vec<u8>, buf: &[u8], head: &ResponseHead, drop_length: bool) -> bool {
    // `keep-alive` names a header that is dropped anyway, so the usual
    // `Connection: keep-alive` needs no list (parsing noted whether it does).
    let named: Vec<&[u8]> = if head.names_headers {
        head.headers
            .iter()
            .filter(|(n, _)| buf[n.clone()].eq_ignore_ascii_case(b"connection"))
            .flat_map(|(_, v)| buf[v.clone()].split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|token| !token.eq_ignore_ascii_case(b"keep-alive") && headers::is_removable_token(token))
            .collect()
    } else {
        Vec::new()
    };
    let mut dated = false;
    for (name, value) in &head.headers {
        let name = &buf[name.clone()];
        // Hop-by-hop headers (RFC 9110 §7.6.1) and those `Connection` names.
        let dropped = headers::is_hop_by_hop(name)
            || named.iter().any(|h| name.eq_ignore_ascii_case(h))
            || (drop_length && name.eq_ignore_ascii_case(b"content-length"));
        if !dropped {
            dated |= name.eq_ignore_ascii_case(b"date");
            write_header(out, name, &buf[value.clone()]);
        }
    }
    out.extend_from_slice(b"via: 1.1 hookgate\r\n");
    dated
}

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

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::BytesMut;
use http::header::{self, HeaderMap};
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::buffers;
use super::date;
use super::forward::{self, Exchange};
use super::head::{self, Framing, HeadError, HeadLimits, RequestHead};
use super::io::{Deadline, Io, SendError, Watchdog, send_all};
use crate::access::{Delivery, RequestLine};
use crate::config::Limits;
use crate::connection::{AbortReason, ActiveRequest, ConnContext};
use crate::error::{BadRequest, ProxyError};
use crate::proxy::{self, Plan, State};
use crate::routes::LocalResponse;

/// The client side of a connection and what it is held to.
pub struct Client<S> {
    pub io: S,
    /// Bytes read from the client and not yet used; unallocated while idle.
    pub rbuf: BytesMut,
    pub limits: Arc<Limits>,
    pub conn: Arc<ConnContext>,
    /// Times the waits for the next request, its head, the upstream write and the response head.
    pub watchdog: Watchdog,
}

/// How long a cut exchange may take to write its 503 before it is dropped.
const LAST_ANSWER: std::time::Duration = std::time::Duration::from_millis(200);

/// The two ways shutdown reaches a connection.
pub struct Shutdown<'a> {
    /// Finish the exchange in progress, then close.
    pub drain: &'a CancellationToken,
    /// `shutdown_grace` ran out: close now.
    pub cut: &'a CancellationToken,
}

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
    stop: Shutdown<'a>,
) -> impl Future<Output = ()> + Send + 'a {
    let clock = conn.clock.clone();
    let mut client = Client { io, rbuf: BytesMut::new(), limits, conn, watchdog: Watchdog::default() };
    async move {
        // Registered once per connection rather than once per request. Every
        // poll of one takes two locks, so the selects below are `biased`: the
        // connection's own work is polled first, and when it is ready (the usual
        // case on a busy connection) the shutdown futures are not polled at all.
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
                read = read_head(&mut client) => read,
                () = &mut drained => return,
            } {
                Ok(head) => serve_request(&mut client, head, states.load_full(), stop.drain.is_cancelled()),
                Err(HeadRead::Closed) => return,
                Err(HeadRead::Timeout) => {
                    tracing::warn!(client = %client.conn.peer, status = 408, "request head not complete within header_timeout; closing");
                    return;
                }
                Err(HeadRead::Refused(error)) => refuse(&mut client, error, states.load_full()),
            };
            let keep_alive = tokio::select! {
                biased;
                keep_alive = &mut exchange => keep_alive,
                () = &mut cut => {
                    // Recorded before the exchange is dropped, so its access line says why;
                    // polled once more (see `io::cut`): one still waiting for its upstream
                    // answers 503. Anything else is dropped at the bound.
                    clock.set_abort(AbortReason::Shutdown);
                    let _ = tokio::time::timeout(LAST_ANSWER, &mut exchange).await;
                    return;
                }
            };
            drop(exchange);
            if !keep_alive {
                let _ = tokio::time::timeout(client.limits.send_timeout, client.io.shutdown()).await;
                return;
            }
        }
    }
}

enum HeadRead {
    /// The client closed (or reset) before sending a whole head.
    Closed,
    Timeout,
    Refused(HeadError),
}

/// Reads until a whole head is buffered, within `header_timeout` of its first byte.
async fn read_head<S: Io>(client: &mut Client<S>) -> Result<RequestHead, HeadRead> {
    let limits = HeadLimits {
        max_header_bytes: client.limits.max_header_bytes,
        max_uri_bytes: client.limits.max_uri_bytes,
        max_headers: client.limits.max_headers,
    };
    let deadline = tokio::time::Instant::now() + client.limits.header_timeout;
    buffers::ensure(&mut client.rbuf);
    loop {
        if !client.rbuf.is_empty() {
            match head::parse_request(&mut client.rbuf, limits) {
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(e) => return Err(HeadRead::Refused(e)),
            }
        }
        if client.rbuf.capacity() - client.rbuf.len() < 1024 {
            client.rbuf.reserve(buffers::BUF_SIZE);
        }
        match client.watchdog.run(Deadline::At(deadline), client.io.read_buf(&mut client.rbuf)).await {
            None => return Err(HeadRead::Timeout),
            Some(Ok(0) | Err(_)) => return Err(HeadRead::Closed),
            Some(Ok(_)) => {}
        }
    }
}

/// Answers a head that could not be parsed; the connection then closes.
/// Boxed, like every exchange: an error path should not make every
/// connection's future larger.
fn refuse<S: Io>(client: &mut Client<S>, error: HeadError, state: Arc<State>) -> Exchanging<'_> {
    Box::pin(async move {
        let start = Instant::now();
        let active = client.conn.clock.request_started();
        let proxy_error = match error {
            HeadError::UriTooLong => ProxyError::UriTooLong,
            HeadError::FramingConflict => ProxyError::BadRequest(BadRequest::ContentLengthWithTransferEncoding),
            HeadError::TooLarge => ProxyError::HeadTooLarge,
            HeadError::Malformed(_) => ProxyError::BadRequest(BadRequest::Malformed),
        };
        let mut line =
            RequestLine::new(&state.config.listen.trusted_proxies, &client.conn, &Method::GET, &HeaderMap::new(), "-");
        line.method = Method::from_bytes(b"-").unwrap_or(Method::GET);
        let local = proxy::error_response(&proxy_error, &mut line);
        tracing::debug!(client = %client.conn.peer, "refused request head: {error}");
        let answering = Answering { start, active, state, head: false, keep_alive: false, http10: false };
        answer_local(client, &local, line, answering).await;
        false
    })
}

/// What every answer needs besides the response itself.
pub struct Answering {
    pub start: Instant,
    pub active: ActiveRequest,
    pub state: Arc<State>,
    /// The request was HEAD: headers only.
    pub head: bool,
    pub keep_alive: bool,
    /// The client speaks HTTP/1.0: a kept connection is announced (`Connection: keep-alive`).
    pub http10: bool,
}

/// The answer to one request, whose output says whether the connection may
/// carry another request.
pub(super) type Exchanging<'a> = Pin<Box<dyn Future<Output = bool> + Send + 'a>>;

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
    let start = Instant::now();
    let active = client.conn.clock.request_started();
    let RequestHead { mut parts, framing, keep_alive, expects_continue } = head;
    let mut line = RequestLine::new(
        &state.config.listen.trusted_proxies,
        &client.conn,
        &parts.method,
        &parts.headers,
        parts.uri.path(),
    );
    let is_head = parts.method == Method::HEAD;
    let keep_alive = keep_alive && !draining;
    let version = parts.version;
    let http10 = version == http::Version::HTTP_10;
    let answering = |keep_alive| Answering { start, active, state: state.clone(), head: is_head, keep_alive, http10 };
    match proxy::plan(&state, &client.conn, &mut parts, &mut line) {
        Err(error) => {
            let local = proxy::error_response(&error, &mut line);
            // An unread body would be taken for the next request: close instead.
            let keep = keep_alive && framing == Framing::Empty && !error.is_client_fault();
            let answering = answering(keep);
            Box::pin(async move { answer_local(client, &local, line, answering).await })
        }
        Ok(Plan::Local(local)) => {
            let answering = answering(keep_alive && framing == Framing::Empty);
            Box::pin(async move { answer_local(client, &local, line, answering).await })
        }
        Ok(Plan::Forward(plan)) => {
            let exchange = Box::new(Exchange { parts, framing, expects_continue, version, plan, line, ticket: None });
            Box::pin(forward::forward(client, exchange, answering(keep_alive)))
        }
    }
}

/// Writes a response hookgate makes itself. Returns whether to keep the connection.
pub async fn answer_local<S: Io>(
    client: &mut Client<S>,
    local: &LocalResponse,
    line: RequestLine,
    answering: Answering,
) -> bool {
    let Answering { start, active, state, head, keep_alive, http10 } = answering;
    let keep_alive = keep_alive && local.headers.get(header::CONNECTION).is_none_or(|v| v != "close");
    let mut out = Vec::with_capacity(256 + local.body.len());
    // 1xx, 204 and 304 have no body and no Content-Length (RFC 9110 §8.6).
    let status = local.status;
    let bodiless = status.is_informational() || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let framing = if bodiless { Framing::Empty } else { Framing::Length(local.body.len() as u64) };
    write_map_head(&mut out, status, &local.headers, framing, Connection { keep_alive, http10 });
    let body_at = out.len();
    let metrics = state.route_metrics(line.route_ref);
    let delivery = Delivery::new(line, status, start, active, metrics);
    if !head && !bodiless {
        out.extend_from_slice(&local.body);
        delivery.produced(local.body.len());
    }
    let sent = send_all(&mut client.io, &out, client.limits.send_timeout, |at| {
        delivery.set_written(at.saturating_sub(body_at) as u64);
    })
    .await;
    match sent {
        Ok(()) => {
            delivery.ended();
            keep_alive && client.io.flush().await.is_ok()
        }
        Err(e) => {
            note_failed_write(&client.conn, e, &delivery);
            false
        }
    }
}

/// Records why writing `delivery`'s response failed: its line says so, even
/// for a response with no body bytes to fall short of.
pub fn note_failed_write(conn: &ConnContext, error: SendError, delivery: &Delivery) {
    note_send_error(conn, error);
    delivery.write_failed();
}

/// Records why a write to the client failed, for the access log.
pub fn note_send_error(conn: &ConnContext, error: SendError) {
    match error {
        SendError::Timeout => {
            conn.clock.set_abort(AbortReason::ClientTimeout);
            tracing::warn!(client = %conn.peer, "client read nothing for send_timeout; closing");
        }
        SendError::Closed => conn.clock.set_abort(AbortReason::ClientClosed),
    }
}

/// How the client connection goes on after a response.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    pub keep_alive: bool,
    /// The client speaks HTTP/1.0, which keeps a connection only when told.
    pub http10: bool,
}

/// A response head from a header map, with framing and connection headers of
/// hookgate's own: the map's are replaced, except a `Content-Length` on a
/// bodiless answer (HEAD, 204, 304), which describes the resource.
pub fn write_map_head(out: &mut Vec<u8>, status: StatusCode, headers: &HeaderMap, framing: Framing, conn: Connection) {
    write_status(out, status.as_u16(), status.canonical_reason().unwrap_or(""));
    for (name, value) in headers {
        let own = name == header::CONNECTION
            || name == header::TRANSFER_ENCODING
            || (name == header::CONTENT_LENGTH && framing != Framing::Empty);
        if !own {
            write_header(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if !headers.contains_key(header::DATE) {
        date::write(out);
    }
    match framing {
        Framing::Length(n) => write_header(out, b"content-length", itoa::Buffer::new().format(n).as_bytes()),
        Framing::Chunked => write_header(out, b"transfer-encoding", b"chunked"),
        Framing::Empty | Framing::UntilClose => {}
    }
    if !conn.keep_alive {
        write_header(out, b"connection", b"close");
    } else if conn.http10 {
        write_header(out, b"connection", b"keep-alive");
    }
    out.extend_from_slice(b"\r\n");
}

pub fn write_status(out: &mut Vec<u8>, status: u16, reason: &str) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

pub fn write_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

//! An HTTP/2 client's request to a plain-HTTP upstream, in HTTP/1.1 on a
//! connection from the engine's per-worker pool (`upstream::pool`), driven
//! from the stream's own task on the client connection's worker: no second
//! task, channel or shared pool between the stream and the upstream.
//!
//! The pool's rules and the forwarding rules are the engine's, through the
//! same code (`http1::upstream_side`, `wire`, `unframing`): `max_idle`,
//! `idle_timeout` and the upstream's `Keep-Alive: timeout=N`, one retry of an
//! idempotent request whose whole body went out with its head on a reused
//! connection the upstream closed unanswered, `Expect` answered here, a body
//! of unknown length (a GET's too) chunked, and declared trailers after it.
//! The response body (`PooledBody`) is read as hyper's server asks for it;
//! the connection goes back to the pool only after a complete, well-framed
//! exchange, and is closed when the stream ends early (a reset).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::AsyncWrite;

use crate::connection::timer::Watchdog;
use crate::error::ProxyError;
use crate::http1::buffers;
use crate::http1::head::{Framing, ResponseHead};
use crate::http1::unframing::Unframing;
use crate::http1::upstream_side::{
    HeadFailure, Retry, connect_failed, early_answer, read_response_head, write_upstream,
};
use crate::http1::wire;
use crate::hyper_glue::{BodyError, RequestBody};
use crate::proxy::State;
use crate::proxy::headers::{self, Added};
use crate::upstream::pool::{self, UpstreamConn};

/// Room to read a response body into, when less than a page is left.
const BODY_READ: usize = 16 * 1024;

/// Sends the request, with hookgate's own headers (`added`, written after the
/// client's as the engine writes them), to upstream `index` and returns its
/// response head, with the body still to be read.
pub async fn send(
    state: Arc<State>,
    index: usize,
    parts: Parts,
    body: RequestBody,
    added: &Added,
) -> Result<Response<PooledBody>, ProxyError> {
    // From the worker's free list, as the engine's heads are.
    let mut out = buffers::take_vec();
    let sent = exchange(state, index, (parts, added), body, &mut out).await;
    buffers::give_vec(out);
    sent
}

/// `send`'s exchange, writing the head (and then the streamed body) through `out`.
async fn exchange(
    state: Arc<State>,
    index: usize,
    (parts, added): (Parts, &Added),
    mut body: RequestBody,
    out: &mut Vec<u8>,
) -> Result<Response<PooledBody>, ProxyError> {
    let upstream = &state.upstreams[index];
    let framing = request_framing(&parts, &body);
    wire::write_request_head(out, &parts, added, framing);
    // What of the body is here already goes out with the head, in one write.
    let mut ended = framing == Framing::Empty;
    if !ended && let Poll::Ready(next) = Pin::new(&mut body).poll_frame(&mut Context::from_waker(Waker::noop())) {
        ended = encode(out, next, framing)? || (body.is_end_stream() && encode(out, None, framing)?);
    }
    let mut retry = Retry::new(&parts.method, if ended { Framing::Empty } else { framing });
    let mut watchdog = Watchdog::default();
    let is_head = parts.method == Method::HEAD;
    loop {
        let metrics = &upstream.metrics;
        let checkout = pool::checkout(&upstream.config, &metrics.open, &metrics.idle).await;
        let mut conn = checkout.map_err(|e| connect_failed(upstream, &e))?;
        match write_upstream(&mut conn.stream, out, &mut watchdog, upstream).await {
            Ok(()) => {}
            Err(_) if retry.again(&conn) => continue,
            Err(_) => return Err(ProxyError::UpstreamBroken),
        }
        let mut buf = BytesMut::new();
        // Streamed through `out` once the head is out: no retry is made then, which would need it.
        // An upstream that answers before the end of it (an early `401`) is answered at once.
        let complete = ended
            || {
                let (from_upstream, mut to_upstream) = conn.stream.split();
                tokio::select! {
                    biased;
                    complete = stream_body(&mut to_upstream, &mut body, (framing, out), &mut watchdog, upstream) => complete?,
                    () = early_answer(&from_upstream, &mut buf) => false,
                }
            };
        match read_response_head(&mut conn, &mut buf, is_head, &mut watchdog, upstream).await {
            Ok(head) => {
                metrics.recent.answered();
                return response(&state, index, (conn, buf), head, complete);
            }
            Err(HeadFailure::Closed) if buf.is_empty() && retry.again(&conn) => continue,
            Err(failure) => return Err(failure.into_error(upstream)),
        }
    }
}

/// How the body goes upstream: none, its length when the client declared
/// one (or hookgate read it whole) and declared no trailers, else chunked.
fn request_framing(parts: &Parts, body: &RequestBody) -> Framing {
    if body.is_end_stream() {
        return Framing::Empty;
    }
    let declared_trailers = parts.headers.contains_key(http::header::TRAILER);
    match body.size_hint().exact() {
        Some(0) if !declared_trailers => Framing::Empty,
        Some(n) if !declared_trailers && parts.headers.contains_key(http::header::CONTENT_LENGTH) => Framing::Length(n),
        _ => Framing::Chunked,
    }
}

/// Appends the body's `next` frame to `out`, framed as `framing`; `None` is
/// the body's end. Returns whether the body ended; a client's failure (too
/// large, too slow, reset) is its error.
fn encode(
    out: &mut Vec<u8>,
    next: Option<Result<Frame<Bytes>, BodyError>>,
    framing: Framing,
) -> Result<bool, ProxyError> {
    let frame = match next {
        None => {
            wire::frame(out, &[], framing, true, &[]);
            return Ok(true);
        }
        Some(Err(e)) => return Err(e.proxy_error()),
        Some(Ok(frame)) => frame,
    };
    match frame.into_data() {
        Ok(data) => {
            wire::frame(out, &data, framing, false, &[]);
            Ok(false)
        }
        Err(frame) => {
            let mut lines = Vec::new();
            if let Ok(fields) = frame.into_trailers() {
                wire::write_trailers(&mut lines, &fields);
            }
            wire::frame(out, &[], framing, true, &lines);
            Ok(true)
        }
    }
}

/// Streams the rest of the body. `Ok(false)`: the upstream stopped taking
/// it (it may have answered already), so the request is incomplete.
async fn stream_body(
    to_upstream: &mut (impl AsyncWrite + Unpin),
    body: &mut RequestBody,
    (framing, out): (Framing, &mut Vec<u8>),
    watchdog: &mut Watchdog,
    upstream: &crate::upstream::UpstreamClient,
) -> Result<bool, ProxyError> {
    loop {
        out.clear();
        let ended = encode(out, body.frame().await, framing)?;
        if !out.is_empty() && write_upstream(to_upstream, out, watchdog, upstream).await.is_err() {
            return Ok(false);
        }
        if ended {
            return Ok(true);
        }
    }
}

/// The response for hyper's server: the upstream's status and the headers
/// that go on, and its body still on `conn`, after the head in `buf`.
fn response(
    state: &Arc<State>,
    index: usize,
    (conn, mut buf): (UpstreamConn, BytesMut),
    head: ResponseHead,
    complete: bool,
) -> Result<Response<PooledBody>, ProxyError> {
    let status = StatusCode::from_u16(head.status).map_err(|_| ProxyError::UpstreamBroken)?;
    // The values are slices of the head's bytes, not copies of them.
    let head_bytes = buf.split_to(head.len).freeze();
    // Only what goes on to the client, as the engine writes it: no hop-by-hop
    // header is put in the map to be taken out again, and `Via` is added.
    let passing = wire::EndToEnd::new(&head_bytes, &head, false);
    let mut headers = HeaderMap::with_capacity(head.headers.len() + 1);
    for (name, value) in head.headers.iter().filter(|(name, _)| passing.keeps(&head_bytes[name.clone()])) {
        let name = HeaderName::from_bytes(&head_bytes[name.clone()]).map_err(|_| ProxyError::UpstreamBroken)?;
        let value = HeaderValue::from_maybe_shared(head_bytes.slice(value.clone()));
        headers.append(name, value.map_err(|_| ProxyError::UpstreamBroken)?);
    }
    crate::proxy::headers::add_via(&mut headers);
    let mut body = PooledBody {
        conn: Some(conn),
        buf,
        unframing: Unframing::new(head.framing, state.config.limits.max_header_bytes),
        ahead: None,
        trailers: None,
        done: false,
        reusable: complete && !head.close,
        idle_hint: head.idle_hint(),
        state: state.clone(),
        index,
    };
    match head.framing {
        Framing::Empty => body.finish(), // Nothing to read: the connection goes back now.
        // A chunked body is decoded as far as it came with the head, now: broken
        // there, nothing has gone out yet, so the answer is a 502, as the engine's.
        Framing::Chunked => match body.take_data() {
            Ok((data, _)) => body.ahead = (!data.is_empty()).then_some(data),
            Err(broken) => {
                tracing::warn!(upstream = %state.upstreams[index].config.name, "its chunked body is broken before its head went out: {broken}");
                return Err(ProxyError::UpstreamBroken);
            }
        },
        Framing::Length(_) | Framing::UntilClose => {}
    }
    buffers::give_ranges(head.headers);
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// An upstream's response body, read from its pooled connection as hyper's
/// server asks for it. The pause limit between reads is the `ResponseBody`'s.
pub struct PooledBody {
    /// `None` once the body ended (the connection went back or was closed).
    conn: Option<UpstreamConn>,
    /// Read but not yet passed on.
    buf: BytesMut,
    unframing: Unframing,
    /// What a chunked body decoded to as far as it came with the head: sent first.
    ahead: Option<Bytes>,
    /// A chunked body's trailers, sent after its last data.
    trailers: Option<HeaderMap>,
    done: bool,
    /// The request went out whole and the upstream did not say it closes.
    reusable: bool,
    idle_hint: Option<Duration>,
    state: Arc<State>,
    index: usize,
}

impl PooledBody {
    /// The body ended where its framing said: the connection goes back to
    /// the pool when nothing else arrived after it and it may be reused.
    fn finish(&mut self) {
        self.done = true;
        let Some(conn) = self.conn.take() else { return };
        let until_close = matches!(self.unframing, Unframing::UntilClose(_));
        if self.reusable && !until_close && self.buf.is_empty() {
            let upstream = &self.state.upstreams[self.index];
            pool::checkin(&upstream.config, conn, self.idle_hint, &upstream.metrics.idle);
        }
    }

    /// Reads more of the body into `buf`; the upstream's close ends a body
    /// framed by it and breaks any other.
    fn poll_read_more(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BodyError>> {
        let Some(conn) = &self.conn else { return Poll::Ready(Err(BodyError::Upstream("was read past its end"))) };
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(BODY_READ);
        }
        loop {
            ready!(conn.stream.poll_read_ready(cx)).map_err(|_| BodyError::Upstream("could not be read"))?;
            match conn.stream.try_read_buf(&mut self.buf) {
                Ok(0) if matches!(self.unframing, Unframing::UntilClose(_)) => {
                    self.unframing.upstream_closed();
                    return Poll::Ready(Ok(()));
                }
                Ok(0) => return Poll::Ready(Err(BodyError::Upstream("ended before its framing said"))),
                Ok(_) => return Poll::Ready(Ok(())),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return Poll::Ready(Err(BodyError::Upstream("could not be read"))),
            }
        }
    }

    /// The next piece of body in `buf`, and whether the body ended with it.
    fn take_data(&mut self) -> Result<(Bytes, bool), BodyError> {
        let (raw, done) = self.unframing.next(&mut self.buf).map_err(|e| BodyError::Upstream(e.0))?;
        let data = match &mut self.unframing {
            Unframing::Chunked(_, decoded) => Bytes::from(std::mem::take(decoded)),
            _ => self.buf.split_to(raw).freeze(),
        };
        if done {
            self.trailers = trailer_map(self.unframing.trailers());
            self.finish();
        }
        Ok((data, done))
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if let Some(data) = this.ahead.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        loop {
            if this.done {
                return Poll::Ready(this.trailers.take().map(|trailers| Ok(Frame::trailers(trailers))));
            }
            let (data, _) = this.take_data()?;
            if !data.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            if !this.done {
                ready!(this.poll_read_more(cx))?;
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.ahead.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.unframing {
            Unframing::Length(left) => SizeHint::with_exact(left),
            _ if self.done => SizeHint::with_exact(self.ahead.as_ref().map_or(0, |data| data.len() as u64)),
            _ => SizeHint::default(),
        }
    }
}

/// A chunked body's trailer lines as a map, less the fields that may not trail.
fn trailer_map(lines: &[u8]) -> Option<HeaderMap> {
    let map: HeaderMap =
        wire::trailer_fields(lines).filter(|(name, _)| headers::may_trail(name.as_str().as_bytes())).collect();
    (!map.is_empty()).then_some(map)
}

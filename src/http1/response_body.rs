//! Response bodies, from an upstream socket to the client: `copy_response`
//! reads with `response_timeout` between reads, writes with `send_timeout` on
//! every write, and tells the response's `Delivery` what was produced and
//! what was written. Chunked bodies are decoded and written again in
//! hookgate's own framing; long bodies that pass through unchanged between
//! two plain TCP sockets are handed to `splice`. A `dedupe` route's answer is
//! copied as it passes (a `Tee`, at most `dedupe::MAX_BODY`, so never a body
//! long enough to splice). A body found broken before
//! its head went out is answered with hookgate's 502 instead.

use std::pin::Pin;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::buffers;
use super::chunked::ChunkError;
use super::client::Client;
use super::exchange::{note_failed_write, send_local};
use super::head::Framing;
use super::io::{Io, SendError, send_all, timed};
use super::splice::{self, Relay, Timeouts};
use super::unframing::Unframing;
use super::wire::{Connection, frame};
use crate::access::Delivery;
use crate::error::ProxyError;
use crate::guards::dedupe::Capture;
use crate::proxy;

/// How a response body is read and how it is written.
pub struct BodyCopy {
    pub from: Framing,
    pub to: Framing,
    /// Longest pause between reads from the upstream.
    pub read_timeout: Duration,
    /// The response head, written with the first body bytes.
    pub head: Vec<u8>,
}

/// What a response body is copied into as it passes: nothing (`NoTee`, on
/// every route but a `dedupe` one, whose copy loop is then the same as
/// without this), or a dedupe route's 2xx answer (`Capture`), finished once
/// the whole body reached the client.
pub trait Tee {
    /// Whether bytes are being copied (a body is not spliced while they are).
    fn on(&self) -> bool;
    fn push(&mut self, data: &[u8]);
    fn finish(self);
}

pub struct NoTee;

impl Tee for NoTee {
    #[inline(always)]
    fn on(&self) -> bool {
        false
    }

    #[inline(always)]
    fn push(&mut self, _: &[u8]) {}

    #[inline(always)]
    fn finish(self) {}
}

impl Tee for Option<Box<Capture>> {
    fn on(&self) -> bool {
        self.is_some()
    }

    fn push(&mut self, data: &[u8]) {
        if self.as_mut().is_some_and(|capture| !capture.push(data)) {
            *self = None; // Too long to remember: forgotten.
        }
    }

    fn finish(self) {
        if let Some(capture) = self {
            capture.finish();
        }
    }
}

pub struct CopyOutcome {
    /// The upstream's body ended where its framing said: its connection can be reused.
    pub upstream_clean: bool,
    /// Everything reached the client's socket.
    pub client_ok: bool,
}

/// Room to read a streamed response body into.
const STREAM_READ: usize = 64 * 1024;

const FAILED: CopyOutcome = CopyOutcome { upstream_clean: false, client_ok: false };

/// The answer when the upstream's body is found broken before its head went
/// out: a 502 like any other, then the connection closes. It is logged as
/// the 502 it is (hookgate's own complete answer), not as a cut response.
async fn bad_gateway<S: Io>(client: &mut Client<S>, delivery: &Delivery, broken: ChunkError) -> CopyOutcome {
    let error = ProxyError::UpstreamBroken;
    delivery.replace_with(error, &format_args!("its chunked body is broken before its head went out: {broken}"));
    let local = proxy::error_answer(&error);
    send_local(client, &local, delivery, false, Connection { keep_alive: false, http10: false }).await;
    FAILED
}

/// A write to the client failed: the response is cut, and its line says why.
fn client_failed<S: Io>(client: &Client<S>, error: SendError, delivery: &Delivery) -> CopyOutcome {
    note_failed_write(client, error, delivery);
    FAILED
}

/// The upstream's body failed after its head went out: the response is cut,
/// and its line says why.
fn upstream_failed(delivery: &Delivery, why: &dyn std::fmt::Display) -> CopyOutcome {
    delivery.fail(why);
    FAILED
}

/// `copy_response`, boxed on its own (so neither box is too large for the
/// allocator's small-block cache). Without a capture, the copy is the loop
/// without one, as on a route without `dedupe`.
pub fn copy<'a, S: Io>(
    client: &'a mut Client<S>,
    upstream: &'a mut TcpStream,
    ubuf: &'a mut BytesMut,
    (copy, capture): (BodyCopy, Option<Box<Capture>>),
    delivery: &'a Delivery,
) -> Pin<Box<dyn Future<Output = CopyOutcome> + Send + 'a>> {
    match capture {
        None => Box::pin(copy_response(client, upstream, ubuf, (copy, NoTee), delivery)),
        tee => Box::pin(copy_response(client, upstream, ubuf, (copy, tee), delivery)),
    }
}

/// Copies an upstream's response body (after its head, which `ubuf` starts
/// past) to the client, framed as `copy.to`, and into `tee` as it passes.
pub async fn copy_response<S: Io, T: Tee>(
    client: &mut Client<S>,
    upstream: &mut TcpStream,
    ubuf: &mut BytesMut,
    (copy, mut tee): (BodyCopy, T),
    delivery: &Delivery,
) -> CopyOutcome {
    let BodyCopy { from, to, read_timeout, head: mut out } = copy;
    let mut body = Unframing::new(from, client.limits.max_header_bytes);
    let mut written = 0u64;
    // The head waits in `out` for the first body bytes, so one write carries
    // both; the first pass writes it, and `out` is empty from then on.
    loop {
        let (raw, done) = match body.next(ubuf) {
            Ok(next) => next,
            Err(e) if out.is_empty() => return upstream_failed(delivery, &e),
            Err(e) => return bad_gateway(client, delivery, e).await,
        };
        let data = body.data(ubuf, raw);
        delivery.produced(data.len());
        tee.push(data);
        let (bytes, range) = stage(&mut out, data, to, done, body.trailers());
        if !bytes.is_empty() {
            let before = written;
            let sent = send_all(&mut client.io, bytes, client.limits.send_timeout, |at| {
                delivery.set_written(before + written_of(&range, at));
            })
            .await;
            written = before + range.len() as u64;
            if let Err(e) = sent {
                return client_failed(client, e, delivery);
            }
        }
        ubuf.advance(raw);
        out.clear();
        if done {
            ended(out, delivery, tee);
            let flushed = timed(client.limits.send_timeout, client.io.flush()).await;
            let client_ok = matches!(flushed, Some(Ok(())));
            return CopyOutcome { upstream_clean: from != Framing::UntilClose, client_ok };
        }
        // Boxed, and only for a long body: inline, its future would make every
        // response's copy future too large for the allocator's thread cache.
        if ubuf.is_empty()
            && !tee.on()
            && long_enough((from, to), body.left(), written)
            && let Some(outcome) =
                Box::pin(splice_rest(client, upstream, from, body.left(), read_timeout, delivery, written)).await
        {
            buffers::give_vec(out);
            return outcome;
        }
        match read_upstream(upstream, ubuf, read_timeout, from).await {
            Ok(true) => body.upstream_closed(),
            Ok(false) => {}
            Err(why) => return upstream_failed(delivery, &why),
        }
    }
}

/// All of a body reached the client's socket: its buffer goes back, its
/// delivery record ends, and its capture (if any) is finished.
#[inline(always)]
fn ended(out: Vec<u8>, delivery: &Delivery, tee: impl Tee) {
    buffers::give_vec(out);
    delivery.ended();
    tee.finish();
}

/// What to write for `data`, and where the body bytes sit in it. Plain bytes
/// after the head has gone out are written straight from where they are;
/// anything else is framed in `out` (after the head, while it waits there).
#[inline]
fn stage<'a>(
    out: &'a mut Vec<u8>,
    data: &'a [u8],
    to: Framing,
    done: bool,
    trailers: &[u8],
) -> (&'a [u8], std::ops::Range<usize>) {
    if out.is_empty() && to != Framing::Chunked {
        return (data, 0..data.len());
    }
    let range = frame(out, data, to, done, trailers);
    (out, range)
}

/// How many body bytes are written once `at` bytes of a write whose body
/// bytes sit at `range` have reached the socket.
pub fn written_of(range: &std::ops::Range<usize>, at: usize) -> u64 {
    (at.clamp(range.start, range.end) - range.start) as u64
}

/// Why an upstream's response body stopped before its end.
#[derive(Debug, thiserror::Error)]
enum BodyReadError {
    #[error("no response body bytes for {0:?}")]
    Timeout(Duration),
    #[error("the upstream closed before its body ended")]
    Closed,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads more of a response body within `read_timeout`. `Ok(true)`: the
/// upstream closed, which ends a body framed by the close.
async fn read_upstream(
    upstream: &mut TcpStream,
    ubuf: &mut BytesMut,
    read_timeout: Duration,
    from: Framing,
) -> Result<bool, BodyReadError> {
    buffers::ensure(ubuf);
    if ubuf.capacity() - ubuf.len() < 4096 {
        // A body larger than a head: read it in bigger pieces.
        ubuf.reserve(STREAM_READ);
    }
    match timed(read_timeout, upstream.read_buf(ubuf)).await {
        None => Err(BodyReadError::Timeout(read_timeout)),
        Some(Ok(0)) if from == Framing::UntilClose => Ok(true),
        Some(Ok(0)) => Err(BodyReadError::Closed),
        Some(Err(e)) => Err(e.into()),
        Some(Ok(_)) => Ok(false),
    }
}

/// Whether the rest of a body is worth splicing: it passes through unchanged
/// (framed `to` as it came, `from`), and `splice::MIN_BODY` or more is still
/// to come, or it is close-delimited and that long already.
fn long_enough((from, to): (Framing, Framing), left: u64, written: u64) -> bool {
    if to != from {
        return false;
    }
    match from {
        Framing::Length(_) => left >= splice::MIN_BODY,
        Framing::UntilClose => written >= splice::MIN_BODY,
        Framing::Empty | Framing::Chunked => false,
    }
}

/// The rest of a long body (see `long_enough`), spliced when both sockets are
/// plain TCP; `None` when they are not (the copy loop goes on).
async fn splice_rest<S: Io>(
    client: &mut Client<S>,
    upstream: &TcpStream,
    from: Framing,
    left: u64,
    read_timeout: Duration,
    delivery: &Delivery,
    written: u64,
) -> Option<CopyOutcome> {
    // How much is left, or `None`: up to the close.
    let left = matches!(from, Framing::Length(_)).then_some(left);
    let timeouts = Timeouts { read: read_timeout, send: client.limits.send_timeout };
    match splice::relay(upstream, client.io.plain_tcp()?, left, timeouts, delivery, written).await {
        Relay::Unavailable => None,
        Relay::Ended => {
            delivery.ended();
            Some(CopyOutcome { upstream_clean: from != Framing::UntilClose, client_ok: true })
        }
        Relay::UpstreamFailed => Some(FAILED),
        Relay::Client(error) => Some(client_failed(client, error, delivery)),
    }
}

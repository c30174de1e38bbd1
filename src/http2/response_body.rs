//! The body hyper's server sends to an HTTP/2 client, streamed without
//! buffering: `ResponseBody` carries the upstream's (or hookgate's own) body,
//! after what was read of it ahead (`ReadAhead`, a `dedupe` route's short
//! answer), and enforces the upstream's read timeout; each of its `Chunk`s reports to
//! the response's `access::Delivery` as its bytes are taken.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use super::upstream::UpstreamBody;
use crate::access::Delivery;
use crate::connection::HeldChunk;
use crate::connection::timer::IdleTimer;
use crate::hyper_glue::{BodyError, poll_timed_frame};

enum Source {
    Upstream { inner: UpstreamBody, timer: IdleTimer, ahead: Option<Box<ReadAhead>> },
    Local(Option<Bytes>),
}

/// The start of an upstream's body, read before its head was passed on
/// (a `dedupe` route's answer, see `gate`): sent before the
/// rest, in the response's extensions until the body is made.
#[derive(Debug, Clone, Default)]
pub struct ReadAhead {
    pub data: VecDeque<Bytes>,
    /// The trailers that ended the body, if they came while it was read ahead.
    pub trailers: Option<HeaderMap>,
    /// The body ended within what was read ahead: `inner` has nothing more.
    pub ended: bool,
}

impl ReadAhead {
    fn next(&mut self) -> Option<Frame<Bytes>> {
        match self.data.pop_front() {
            Some(data) => Some(Frame::data(data)),
            None => self.trailers.take().map(Frame::trailers),
        }
    }

    fn is_drained(&self) -> bool {
        self.data.is_empty() && self.trailers.is_none()
    }

    fn len(&self) -> u64 {
        self.data.iter().map(|data| data.len() as u64).sum()
    }
}

/// The body sent to the client.
pub struct ResponseBody {
    source: Source,
    delivery: Arc<Delivery>,
}

/// A piece of a response body that tells its `Delivery` as its bytes are
/// written: hyper queues it and advances it as the socket takes bytes. While
/// it waits (a stream whose window the client keeps shut holds it without
/// any socket write blocking), the connection's send timer runs.
pub struct Chunk {
    bytes: Bytes,
    delivery: Arc<Delivery>,
    held: HeldChunk,
}

impl Chunk {
    fn new(bytes: Bytes, delivery: Arc<Delivery>) -> Chunk {
        let held = delivery.clock().chunk_queued();
        Chunk { bytes, delivery, held }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        self.delivery.clock().chunk_done(self.held);
    }
}

impl Buf for Chunk {
    fn remaining(&self) -> usize {
        self.bytes.len()
    }

    fn chunk(&self) -> &[u8] {
        &self.bytes
    }

    fn advance(&mut self, n: usize) {
        self.bytes.advance(n);
        self.delivery.written(n);
        // Taken whole, the chunk is dropped next, which tells the clock.
        if n > 0 && self.bytes.has_remaining() {
            self.delivery.clock().chunk_taken(self.held);
        }
    }
}

impl ResponseBody {
    /// The upstream's body, after what was read of it ahead (if anything);
    /// `read_timeout` bounds each pause between its chunks.
    pub fn upstream(
        inner: UpstreamBody,
        ahead: Option<ReadAhead>,
        read_timeout: Duration,
        delivery: Arc<Delivery>,
    ) -> Self {
        let (timer, ahead) = (IdleTimer::new(read_timeout), ahead.map(Box::new));
        ResponseBody { source: Source::Upstream { inner, timer, ahead }, delivery }
    }

    /// A body hookgate writes itself.
    pub fn local(bytes: Bytes, delivery: Arc<Delivery>) -> Self {
        let bytes = (!bytes.is_empty()).then_some(bytes);
        ResponseBody { source: Source::Local(bytes), delivery }
    }
}

impl Body for ResponseBody {
    type Data = Chunk;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Chunk>, BodyError>>> {
        let this = &mut *self;
        let polled = match &mut this.source {
            Source::Local(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Source::Upstream { inner, timer, ahead } => match ahead.as_deref_mut().and_then(ReadAhead::next) {
                Some(frame) => Poll::Ready(Some(Ok(frame))),
                None if ahead.as_ref().is_some_and(|ahead| ahead.ended) => Poll::Ready(None),
                None => poll_timed_frame(timer, inner, cx),
            },
        };
        let delivery = &this.delivery;
        let polled = match polled {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame.map_data(|bytes| {
                delivery.produced(bytes.len());
                Chunk::new(bytes, delivery.clone())
            })))),
            Poll::Ready(Some(Err(e))) => {
                delivery.fail(&e);
                Poll::Ready(Some(Err(e)))
            }
            other => other.map(|_| None),
        };
        if matches!(polled, Poll::Ready(None)) || self.is_end_stream() {
            self.delivery.ended();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Upstream { ahead: Some(ahead), .. } if !ahead.is_drained() => false,
            Source::Upstream { ahead: Some(ahead), .. } if ahead.ended => true,
            Source::Upstream { inner, .. } => inner.is_end_stream(),
            Source::Local(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Upstream { ahead: Some(ahead), .. } if ahead.ended => SizeHint::with_exact(ahead.len()),
            Source::Upstream { inner, ahead: Some(ahead), .. } => {
                let (rest, read) = (inner.size_hint(), ahead.len());
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower().saturating_add(read));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(read));
                }
                hint
            }
            Source::Upstream { inner, .. } => inner.size_hint(),
            Source::Local(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

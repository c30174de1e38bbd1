//! Body wrappers that stream in both directions without buffering.
//!
//! `RequestBody` carries the client's body to the upstream and enforces
//! `max_body` and `body_timeout` while it streams. `ResponseBody` carries the
//! upstream's (or hookgate's own) body to the client and enforces the
//! upstream's read timeout; each of its `Chunk`s reports to the response's
//! `access::Delivery` as its bytes reach the socket.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::access::Delivery;

/// Why a streamed body stopped.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body exceeds the limit of {0} bytes")]
    TooLarge(u64),
    #[error("no body bytes for {0:?}")]
    Timeout(Duration),
    #[error("body read failed: {0}")]
    Read(#[from] hyper::Error),
    #[error("the client closed before its body ended")]
    ClientGone,
}

/// A timer that fires when a body has been silent for `limit`.
struct IdleTimer {
    limit: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    /// A frame arrived since the timer was last armed.
    stale: bool,
}

impl IdleTimer {
    fn new(limit: Duration) -> Self {
        IdleTimer { limit, sleep: None, stale: true }
    }

    fn saw_frame(&mut self) {
        self.stale = true;
    }

    /// Called when the inner body is pending: `Ready` means the limit passed.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = Instant::now() + self.limit;
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if self.stale {
            sleep.as_mut().reset(deadline);
            self.stale = false;
        }
        sleep.as_mut().poll(cx)
    }
}

/// The client's request body on its way to the upstream through hyper's
/// client: from hyper's server (HTTP/2 clients), or handed over by the
/// HTTP/1 engine through a channel (for https upstreams).
pub struct RequestBody {
    inner: RequestSource,
    read: u64,
    limit: u64,
    timer: IdleTimer,
}

enum RequestSource {
    Incoming(Incoming),
    /// The engine has already enforced `max_body` and `body_timeout`; `None`
    /// at the end of the channel is the end of the body.
    Engine {
        chunks: tokio::sync::mpsc::Receiver<Result<Bytes, BodyError>>,
        length: Option<u64>,
    },
}

impl RequestBody {
    pub fn new(inner: Incoming, limit: u64, idle: Duration) -> Self {
        RequestBody { inner: RequestSource::Incoming(inner), read: 0, limit, timer: IdleTimer::new(idle) }
    }

    /// A body the HTTP/1 engine feeds, chunk by chunk.
    /// `length` is the body's length when the client declared one.
    pub fn from_engine(chunks: tokio::sync::mpsc::Receiver<Result<Bytes, BodyError>>, length: Option<u64>) -> Self {
        let inner = RequestSource::Engine { chunks, length };
        RequestBody { inner, read: 0, limit: u64::MAX, timer: IdleTimer::new(Duration::ZERO) }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let inner = match &mut this.inner {
            RequestSource::Engine { chunks, .. } => return chunks.poll_recv(cx).map(|c| c.map(|c| c.map(Frame::data))),
            RequestSource::Incoming(inner) => inner,
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.timer.saw_frame();
                if let Some(data) = frame.data_ref() {
                    this.read += data.len() as u64;
                    if this.read > this.limit {
                        return Poll::Ready(Some(Err(BodyError::TooLarge(this.limit))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Read(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(this.timer.poll_expired(cx));
                Poll::Ready(Some(Err(BodyError::Timeout(this.timer.limit))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            RequestSource::Incoming(inner) => inner.is_end_stream(),
            RequestSource::Engine { length, .. } => *length == Some(0),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            RequestSource::Incoming(inner) => inner.size_hint(),
            RequestSource::Engine { length: Some(n), .. } => SizeHint::with_exact(*n),
            RequestSource::Engine { length: None, .. } => SizeHint::default(),
        }
    }
}

enum Source {
    Upstream { inner: Incoming, timer: IdleTimer },
    Local(Option<Bytes>),
}

/// The body sent to the client.
pub struct ResponseBody {
    source: Source,
    delivery: Arc<Delivery>,
}

/// A piece of a response body that tells its `Delivery` as its bytes are
/// written: hyper queues it and advances it as the socket takes bytes.
pub struct Chunk {
    bytes: Bytes,
    delivery: Arc<Delivery>,
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
    }
}

impl ResponseBody {
    /// The upstream's body; `read_timeout` bounds each pause between its chunks.
    pub fn upstream(inner: Incoming, read_timeout: Duration, delivery: Arc<Delivery>) -> Self {
        ResponseBody { source: Source::Upstream { inner, timer: IdleTimer::new(read_timeout) }, delivery }
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
            Source::Upstream { inner, timer } => match Pin::new(inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    timer.saw_frame();
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Read(e)))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => {
                    ready!(timer.poll_expired(cx));
                    Poll::Ready(Some(Err(BodyError::Timeout(timer.limit))))
                }
            },
        };
        let delivery = &this.delivery;
        let polled = match polled {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame.map_data(|bytes| {
                delivery.produced(bytes.len());
                Chunk { bytes, delivery: delivery.clone() }
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
            Source::Upstream { inner, .. } => inner.is_end_stream(),
            Source::Local(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Upstream { inner, .. } => inner.size_hint(),
            Source::Local(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

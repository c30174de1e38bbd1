//! Body wrappers that stream in both directions without buffering.
//!
//! `RequestBody` carries the client's body to the upstream and enforces
//! `max_body` and `body_timeout` while it streams. `ResponseBody` carries the
//! upstream's (or hookgate's own) body to the client, counts its bytes, enforces
//! the upstream's read timeout, and writes the access-log line when it ends.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::access::Completion;

/// Why a streamed body stopped.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body exceeds the limit of {0} bytes")]
    TooLarge(u64),
    #[error("no body bytes for {0:?}")]
    Timeout(Duration),
    #[error("body read failed: {0}")]
    Read(#[from] hyper::Error),
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

/// The client's request body on its way to the upstream.
pub struct RequestBody {
    inner: Incoming,
    read: u64,
    limit: u64,
    timer: IdleTimer,
}

impl RequestBody {
    pub fn new(inner: Incoming, limit: u64, idle: Duration) -> Self {
        RequestBody { inner, read: 0, limit, timer: IdleTimer::new(idle) }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
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
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

enum Source {
    Upstream { inner: Incoming, timer: IdleTimer },
    Local(Option<Bytes>),
}

/// The body sent to the client.
pub struct ResponseBody {
    source: Source,
    completion: Completion,
}

impl ResponseBody {
    /// The upstream's body; `read_timeout` bounds each pause between its chunks.
    pub fn upstream(inner: Incoming, read_timeout: Duration, completion: Completion) -> Self {
        ResponseBody { source: Source::Upstream { inner, timer: IdleTimer::new(read_timeout) }, completion }
    }

    /// A body hookgate writes itself.
    pub fn local(bytes: Bytes, completion: Completion) -> Self {
        let bytes = (!bytes.is_empty()).then_some(bytes);
        ResponseBody { source: Source::Local(bytes), completion }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
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
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.completion.add_bytes(data.len());
                }
            }
            Poll::Ready(Some(Err(e))) => this.completion.fail(e),
            _ => {}
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

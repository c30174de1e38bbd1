//! The body sent to an upstream through hyper's client, and `poll_timed_frame`,
//! which both body directions use to bound pauses (with `connection::timer::IdleTimer`).
//!
//! `RequestBody` carries the client's body to the upstream and enforces
//! `max_body` and `body_timeout` while it streams (for HTTP/2 clients; the
//! HTTP/1 engine enforces them itself and feeds the body through a channel).

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::connection::timer::IdleTimer;

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
    /// An upstream's response body read by hookgate itself (`http2::pooled`) broke.
    #[error("the upstream's body {0}")]
    Upstream(&'static str),
}

impl BodyError {
    /// Who is at fault, as the answer to the client says it.
    pub fn proxy_error(&self) -> crate::error::ProxyError {
        use crate::error::ProxyError;
        match self {
            BodyError::TooLarge(_) => ProxyError::BodyTooLarge,
            BodyError::Timeout(_) => ProxyError::BodyTimeout,
            BodyError::Read(_) | BodyError::ClientGone => ProxyError::ClientAborted,
            BodyError::Upstream(_) => ProxyError::UpstreamBroken,
        }
    }
}

/// Polls `inner` for its next frame; a pause longer than `timer`'s limit is
/// a `Timeout` error. Both body directions through hyper go through here.
pub fn poll_timed_frame<B>(
    timer: &mut IdleTimer,
    inner: &mut B,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, BodyError>>>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BodyError>,
{
    match Pin::new(inner).poll_frame(cx) {
        Poll::Ready(Some(Ok(frame))) => {
            timer.saw_frame();
            Poll::Ready(Some(Ok(frame)))
        }
        Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
        Poll::Ready(None) => Poll::Ready(None),
        Poll::Pending => {
            ready!(timer.poll_expired(cx));
            Poll::Ready(Some(Err(BodyError::Timeout(timer.limit))))
        }
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
        chunks: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, BodyError>>,
        length: Option<u64>,
    },
}

impl RequestBody {
    pub fn new(inner: Incoming, limit: u64, idle: Duration) -> Self {
        RequestBody { inner: RequestSource::Incoming(inner), read: 0, limit, timer: IdleTimer::new(idle) }
    }

    /// A body the HTTP/1 engine feeds, chunk by chunk.
    /// `length` is the body's length when the client declared one.
    pub fn from_engine(
        chunks: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, BodyError>>,
        length: Option<u64>,
    ) -> Self {
        let inner = RequestSource::Engine { chunks, length };
        RequestBody { inner, read: 0, limit: u64::MAX, timer: IdleTimer::new(Duration::ZERO) }
    }

    /// A body that has already been read whole.
    pub fn whole(bytes: Bytes) -> Self {
        let (sender, chunks) = tokio::sync::mpsc::channel(1);
        let length = bytes.len() as u64;
        if !bytes.is_empty() {
            // A fresh channel with room for one: this cannot fail.
            let _ = sender.try_send(Ok(Frame::data(bytes)));
        }
        RequestBody::from_engine(chunks, Some(length))
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let inner = match &mut this.inner {
            RequestSource::Engine { chunks, .. } => return chunks.poll_recv(cx),
            RequestSource::Incoming(inner) => inner,
        };
        let polled = poll_timed_frame(&mut this.timer, inner, cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.read += data.len() as u64;
            if this.read > this.limit {
                return Poll::Ready(Some(Err(BodyError::TooLarge(this.limit))));
            }
        }
        polled
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

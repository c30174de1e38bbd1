//! `ClockedIo`: a client stream that tells its connection's `ConnClock` when
//! bytes arrive and whether writes make progress (HTTP/2 connections, whose
//! timers the server's `conn::drive` enforces from the clock), and that
//! lingers when hyper shuts it down (see `poll_shutdown`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::connection::ConnClock;

/// The longest pause in what the client sends while a closing connection
/// lingers (nginx's `lingering_timeout`).
const LINGER_PAUSE: Duration = Duration::from_secs(5);

/// A client stream that reports incoming bytes to its `ConnClock`.
pub struct ClockedIo<T> {
    inner: T,
    clock: Arc<ConnClock>,
    /// Set once the write side is shut down: the pause timer of the linger.
    lingering: Option<Pin<Box<Sleep>>>,
}

impl<T> ClockedIo<T> {
    pub fn new(inner: T, clock: Arc<ConnClock>) -> Self {
        ClockedIo { inner, clock, lingering: None }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ClockedIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if !matches!(polled, Poll::Ready(Ok(()))) || buf.filled().len() == before {
            return polled;
        }
        this.clock.saw_bytes();
        polled
    }
}

impl<T> ClockedIo<T> {
    /// Tells the clock whether a write made progress (for the send timer).
    fn note_write(&self, polled: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match &polled {
            Poll::Ready(Ok(n)) => self.clock.wrote(*n > 0),
            Poll::Pending => self.clock.wrote(false),
            Poll::Ready(Err(_)) => {}
        }
        polled
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ClockedIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note_write(polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note_write(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // TLS writes its records on flush: a blocked flush is a blocked write.
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        match polled {
            Poll::Ready(Ok(())) => self.clock.wrote(true),
            Poll::Pending => self.clock.wrote(false),
            Poll::Ready(Err(_)) => {}
        }
        polled
    }

    /// Shuts the write side down (TLS' close_notify, then TCP's FIN), then
    /// reads and drops what the client still sends until it closes too, or
    /// pauses for `LINGER_PAUSE`. A client reading a long response sends
    /// window updates to the end; closing with those unread would make the
    /// kernel reset the connection, and the client lose the response's end
    /// still in its buffers (as a graceful shutdown did). Drain's cut bounds it.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.lingering.is_none() {
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.lingering = Some(Box::pin(tokio::time::sleep(LINGER_PAUSE)));
        }
        let mut scratch = [0u8; 2048];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    let pause = this.lingering.as_mut().expect("set above");
                    pause.as_mut().reset(tokio::time::Instant::now() + LINGER_PAUSE);
                }
                Poll::Ready(_) => return Poll::Ready(Ok(())), // The client's end, or its error.
                Poll::Pending => {
                    let pause = this.lingering.as_mut().expect("set above");
                    ready!(pause.as_mut().poll(cx));
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

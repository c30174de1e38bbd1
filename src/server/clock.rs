//! Per-connection timing: the head timeout and the keep-alive idle timeout.
//!
//! hyper's own header timer starts as soon as it waits for the next request, so
//! it would also cut idle keep-alive connections at `header_timeout`. hookgate
//! keeps the two apart: a connection is *idle* from the end of one response
//! until the first byte of the next request, then *reading a head* until hyper
//! hands the request to the service, then *active* until its response ends.
//! `ClockedIo` notices the first byte; `ActiveRequest` marks the active span.
//! While a head is being read, `ClockedIo` also feeds its bytes to a
//! `HeadScan`, which flags heads with both Content-Length and Transfer-Encoding.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::head_scan::HeadScan;

/// Sentinel for "no head being read".
const NOT_READING: u64 = u64::MAX;

#[derive(Debug)]
pub struct ConnClock {
    epoch: Instant,
    /// Requests handed to the service whose response has not ended.
    active: AtomicU32,
    /// Milliseconds since `epoch` when the current head's first byte arrived.
    head_started: AtomicU64,
    /// Milliseconds since `epoch` when the connection last became idle.
    idle_since: AtomicU64,
    /// The head being read has both Content-Length and Transfer-Encoding.
    framing_conflict: AtomicBool,
}

/// Where a read from the client falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadPhase {
    /// The first bytes of a new request head.
    HeadStart,
    /// More bytes of the head being read.
    Head,
    /// Body bytes (or pipelined bytes) of a request in progress.
    Request,
}

/// Which timer ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    Head,
    Idle,
}

impl ConnClock {
    pub fn new() -> Self {
        ConnClock {
            epoch: Instant::now(),
            active: AtomicU32::new(0),
            head_started: AtomicU64::new(NOT_READING),
            idle_since: AtomicU64::new(0),
            framing_conflict: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    /// Bytes arrived from the client; if the connection was idle, a head begins.
    fn saw_bytes(&self) -> ReadPhase {
        if self.active.load(Ordering::Relaxed) > 0 {
            return ReadPhase::Request;
        }
        if self.head_started.load(Ordering::Relaxed) != NOT_READING {
            return ReadPhase::Head;
        }
        self.head_started.store(self.now_ms(), Ordering::Relaxed);
        self.framing_conflict.store(false, Ordering::Relaxed);
        ReadPhase::HeadStart
    }

    /// hyper parsed a head and called the service.
    pub fn request_started(self: &Arc<Self>) -> ActiveRequest {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(NOT_READING, Ordering::Relaxed);
        ActiveRequest(Arc::clone(self))
    }

    /// Whether the head just handed to the service had both Content-Length and
    /// Transfer-Encoding (which hyper hides by dropping Content-Length).
    pub fn take_framing_conflict(&self) -> bool {
        self.framing_conflict.swap(false, Ordering::Relaxed)
    }

    /// When to look again. While idle or active it wakes at least every
    /// `header_timeout`, so a head that starts meanwhile is timed exactly.
    pub fn next_check(&self, header_timeout: Duration, idle_timeout: Duration) -> Instant {
        let soon = Instant::now() + header_timeout;
        if self.active.load(Ordering::Relaxed) > 0 {
            return soon;
        }
        match self.head_started.load(Ordering::Relaxed) {
            NOT_READING => soon.min(self.at(self.idle_since.load(Ordering::Relaxed)) + idle_timeout),
            started => self.at(started) + header_timeout,
        }
    }

    /// Which timer, if any, has run out now.
    pub fn expired(&self, header_timeout: Duration, idle_timeout: Duration) -> Option<Expired> {
        if self.active.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let now = Instant::now();
        match self.head_started.load(Ordering::Relaxed) {
            NOT_READING if now >= self.at(self.idle_since.load(Ordering::Relaxed)) + idle_timeout => {
                Some(Expired::Idle)
            }
            NOT_READING => None,
            started if now >= self.at(started) + header_timeout => Some(Expired::Head),
            _ => None,
        }
    }
}

/// Marks one request as in progress until dropped (when its response ends).
#[derive(Debug)]
pub struct ActiveRequest(Arc<ConnClock>);

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.idle_since.store(self.0.now_ms(), Ordering::Relaxed);
        }
    }
}

/// A client stream that reports incoming bytes to its `ConnClock`.
pub struct ClockedIo<T> {
    inner: T,
    clock: Arc<ConnClock>,
    /// `None` for HTTP/2, whose frames have no text head to scan.
    scan: Option<HeadScan>,
}

impl<T> ClockedIo<T> {
    pub fn new(inner: T, clock: Arc<ConnClock>) -> Self {
        ClockedIo { inner, clock, scan: Some(HeadScan::new()) }
    }

    pub fn without_head_scan(inner: T, clock: Arc<ConnClock>) -> Self {
        ClockedIo { inner, clock, scan: None }
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
        let phase = this.clock.saw_bytes();
        let Some(scan) = this.scan.as_mut() else { return polled };
        if phase == ReadPhase::HeadStart {
            *scan = HeadScan::new();
        }
        if phase != ReadPhase::Request && !scan.is_done() {
            scan.feed(&buf.filled()[before..]);
            if scan.conflicting() {
                this.clock.framing_conflict.store(true, Ordering::Relaxed);
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ClockedIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

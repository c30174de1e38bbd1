//! The client socket as the engine uses it: waiting for readability without a
//! buffer, and writes timed by progress rather than by total duration.

use std::future::poll_fn;
use std::io;
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;

use super::buffers;

/// A client connection: plain TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {
    /// Waits, between requests, until the next request's first bytes are
    /// there. Then `idle_timeout` gives way to `header_timeout`.
    fn wait_for_request(&mut self, rbuf: &mut BytesMut) -> impl Future<Output = io::Result<()>> + Send;

    /// Completes if the client closes its side while hookgate waits on the
    /// upstream; stays pending once bytes of a pipelined request arrive (they
    /// stay for the next request: peeked on TCP, read into `rbuf` on TLS).
    fn gone(&mut self, rbuf: &mut BytesMut) -> impl Future<Output = ()> + Send;
}

impl Io for TcpStream {
    /// Waits for readability, holding no buffer meanwhile.
    async fn wait_for_request(&mut self, _rbuf: &mut BytesMut) -> io::Result<()> {
        self.readable().await
    }

    async fn gone(&mut self, _rbuf: &mut BytesMut) {
        let mut probe = [0u8; 1];
        match self.peek(&mut probe).await {
            Ok(0) | Err(_) => {}
            // A pipelined request: the client is still there.
            Ok(_) => std::future::pending().await,
        }
    }
}

impl Io for TlsStream<TcpStream> {
    /// The socket's readability says nothing about requests here (rustls may
    /// hold decrypted bytes, or read only a handshake message), so this reads
    /// the first bytes of the next request into `rbuf`.
    async fn wait_for_request(&mut self, rbuf: &mut BytesMut) -> io::Result<()> {
        buffers::ensure(rbuf);
        match self.read_buf(rbuf).await? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            _ => Ok(()),
        }
    }

    /// TLS cannot be peeked: a close (close_notify, EOF or reset) shows only
    /// as a read, so this reads, keeping whatever arrives in `rbuf`.
    async fn gone(&mut self, rbuf: &mut BytesMut) {
        buffers::ensure(rbuf);
        match self.read_buf(rbuf).await {
            Ok(0) | Err(_) => {}
            Ok(_) => std::future::pending().await,
        }
    }
}

/// Runs `fut` until `deadline`. Most reads and writes on a busy connection
/// finish on their first poll, so the timer is only set up for those that wait.
pub async fn timed_until<F: Future>(deadline: Instant, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    if let Poll::Ready(out) = poll_once(fut.as_mut()).await {
        return Some(out);
    }
    tokio::time::timeout_at(deadline, fut).await.ok()
}

/// `timed_until` with a limit counted from now (the clock is read only if
/// `fut` has to wait).
pub async fn timed<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    if let Poll::Ready(out) = poll_once(fut.as_mut()).await {
        return Some(out);
    }
    tokio::time::timeout(limit, fut).await.ok()
}

/// Polls `fut` once, with this task's waker, and says whether it finished.
pub async fn poll_once<F: Future>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

/// Why a write to the client failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No byte was taken for `send_timeout`: the client stopped reading.
    Timeout,
    /// The client closed or reset the connection.
    Closed,
}

/// Writes all of `bytes`; every single write must make progress within
/// `limit`, so a slow reader is never cut while it keeps reading. `progress`
/// is told the offset reached after each write.
pub async fn send_all<W: AsyncWrite + Unpin>(
    out: &mut W,
    bytes: &[u8],
    limit: Duration,
    mut progress: impl FnMut(usize),
) -> Result<(), SendError> {
    let mut at = 0;
    while at < bytes.len() {
        match timed(limit, out.write(&bytes[at..])).await {
            None => return Err(SendError::Timeout),
            Some(Ok(0) | Err(_)) => return Err(SendError::Closed),
            Some(Ok(n)) => {
                at += n;
                progress(at);
            }
        }
    }
    Ok(())
}

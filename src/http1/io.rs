//! The client socket as the engine uses it: waiting for readability without a
//! buffer, writes timed by progress rather than by total duration, and the
//! shutdown cut as an exchange sees it. (The connection's one lazily re-armed
//! timer is `connection::timer`.)

use std::future::poll_fn;
use std::io;
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::buffers;
use crate::connection::{AbortReason, ConnClock};
use crate::poll_clock;

/// Completes once shutdown has cut the connection. The serve loop records the
/// cut on the connection's clock, then polls the exchange once more, so an
/// exchange still waiting for its upstream can answer 503 and leave its line.
/// It registers no waker: a request pays one atomic load per poll, where a
/// wait on the shutdown token cost a registration (+~300 instructions per GET).
pub fn cut(clock: &ConnClock) -> impl Future<Output = ()> + Send + '_ {
    poll_fn(move |_| if clock.abort_reason() == Some(AbortReason::Shutdown) { Poll::Ready(()) } else { Poll::Pending })
}

/// A client connection: plain TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {
    /// Waits, between requests, until the next request's first bytes are
    /// there. Then `idle_timeout` gives way to `header_timeout`.
    fn wait_for_request(&mut self, rbuf: &mut BytesMut) -> impl Future<Output = io::Result<()>> + Send;

    /// Completes if the client closes its side while hookgate waits on the
    /// upstream; stays pending once bytes of a pipelined request arrive (they
    /// stay for the next request: peeked on TCP, read into `rbuf` on TLS).
    fn gone(&mut self, rbuf: &mut BytesMut) -> impl Future<Output = ()> + Send;

    /// The socket itself when the connection is plain TCP (bodies can then be spliced).
    fn plain_tcp(&self) -> Option<&TcpStream> {
        None
    }
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

    fn plain_tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

impl Io for TlsStream<TcpStream> {
    /// Waits for the socket's readability holding no buffer, unless rustls
    /// holds decrypted bytes already (or the peer's close_notify: the read
    /// then says so at once); then reads the first bytes of the next request
    /// into `rbuf`. Readability alone says little here (the bytes may be a
    /// partial record, or a record with no request in it), so the read may
    /// still wait, with the buffer, for the rest of the record: only while the
    /// client is sending. An idle connection holds no buffer, as on TCP (with
    /// one, an idle TLS connection cost 21.4 KiB of RSS; without, 12.1).
    async fn wait_for_request(&mut self, rbuf: &mut BytesMut) -> io::Result<()> {
        let (socket, tls) = self.get_ref();
        if rbuf.capacity() == 0 && tls.wants_read() {
            socket.readable().await?;
        }
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

/// Runs `fut` for at most `limit`, counted from its first wait (the clock is
/// read only if `fut` has to wait).
pub async fn timed<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    if let Poll::Ready(out) = poll_once(fut.as_mut()).await {
        return Some(out);
    }
    tokio::time::timeout_at(poll_clock::now() + limit, fut).await.ok()
}

/// Polls `fut` once, with this task's waker, and says whether it finished.
pub async fn poll_once<F: Future>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

/// Why a write to the client failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No byte was taken for `send_timeout`: the client stopped reading.
    #[error("the client read nothing for send_timeout")]
    Timeout,
    /// The client closed or reset the connection.
    #[error("the client closed the connection")]
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

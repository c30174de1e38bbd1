//! The client socket as the engine uses it: waiting for readability without a
//! buffer, writes timed by progress rather than by total duration, the
//! connection's one lazily re-armed timer, and the shutdown cut as an exchange
//! sees it.

use std::future::poll_fn;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;

use super::buffers;
use crate::connection::{AbortReason, ConnClock};

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

/// Runs `fut` for at most `limit`, counted from its first wait (the clock is
/// read only if `fut` has to wait).
pub async fn timed<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    if let Poll::Ready(out) = poll_once(fut.as_mut()).await {
        return Some(out);
    }
    tokio::time::timeout(limit, fut).await.ok()
}

/// When a wait times out.
#[derive(Debug, Clone, Copy)]
pub enum Deadline {
    At(Instant),
    /// Counted from the moment the wait has to wait (the clock is read only then).
    In(Duration),
}

/// One timer for every timed wait of a connection (the next request, its
/// head, the write upstream, the response head), re-armed lazily. Setting up
/// and cancelling a tokio timer twice per request cost more than parsing the
/// request head; this timer is moved only when a wait needs an earlier
/// deadline than the one it is set to. When it fires for a deadline a later
/// wait has pushed back, it is set again, so a busy keep-alive connection
/// touches the timer wheel about once per timeout period instead of twice per
/// request. Created at the first wait that waits.
#[derive(Default)]
pub struct Watchdog {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Watchdog {
    /// Runs `fut` until `deadline`; `None` if it passes first. Most reads and
    /// writes finish on their first poll, and those never touch the timer.
    /// A future of its own rather than an async fn, which would keep `fut`
    /// twice (as its argument and pinned), in every idle connection's task.
    pub fn run<F: Future>(&mut self, deadline: Deadline, fut: F) -> Timed<'_, F> {
        Timed { watchdog: self, deadline, fut }
    }

    /// Ready once `deadline` has passed.
    fn poll_expired(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() > deadline {
            sleep.as_mut().reset(deadline);
        }
        loop {
            let armed = sleep.deadline();
            ready!(sleep.as_mut().poll(cx));
            if armed >= deadline {
                return Poll::Ready(());
            }
            // It fired for an earlier wait's deadline: on to this one.
            sleep.as_mut().reset(deadline);
        }
    }
}

pin_project_lite::pin_project! {
    /// [`Watchdog::run`]'s future: `fut`'s output, or `None` once `deadline` passes.
    pub struct Timed<'a, F> {
        watchdog: &'a mut Watchdog,
        // `In` becomes `At` at the first poll that has to wait.
        deadline: Deadline,
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for Timed<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.fut.poll(cx) {
            return Poll::Ready(Some(out));
        }
        let at = match *this.deadline {
            Deadline::At(at) => at,
            Deadline::In(limit) => {
                let at = Instant::now() + limit;
                *this.deadline = Deadline::At(at);
                at
            }
        };
        this.watchdog.poll_expired(cx, at).map(|()| None)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// A wait that never finishes, timed by `watchdog`: how long until it gave up.
    async fn times_out_after(watchdog: &mut Watchdog, deadline: Deadline) -> Duration {
        let start = Instant::now();
        assert!(watchdog.run(deadline, std::future::pending::<()>()).await.is_none());
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn each_wait_times_out_at_its_own_deadline_whatever_the_timer_was_set_to() {
        let mut watchdog = Watchdog::default();
        // Armed for 60 s by a wait that finished at once.
        let quick = watchdog.run(Deadline::In(60 * SECOND), async {
            tokio::time::sleep(SECOND).await;
        });
        assert!(quick.await.is_some());
        // A shorter deadline moves the timer earlier.
        assert_eq!(times_out_after(&mut watchdog, Deadline::In(10 * SECOND)).await, 10 * SECOND);
        // A longer one is not cut short when the timer fires for an older deadline.
        let longer = Deadline::At(Instant::now() + 30 * SECOND);
        let pushed_back = watchdog.run(Deadline::In(5 * SECOND), async {
            tokio::time::sleep(2 * SECOND).await;
        });
        assert!(pushed_back.await.is_some());
        assert_eq!(times_out_after(&mut watchdog, longer).await, 28 * SECOND);
        // A deadline already past times out at once.
        assert_eq!(times_out_after(&mut watchdog, Deadline::At(Instant::now())).await, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_that_finishes_in_time_gets_its_output() {
        let mut watchdog = Watchdog::default();
        let late = watchdog.run(Deadline::In(3 * SECOND), async {
            tokio::time::sleep(2 * SECOND).await;
            7
        });
        assert_eq!(late.await, Some(7));
        assert_eq!(times_out_after(&mut watchdog, Deadline::In(SECOND)).await, SECOND);
    }
}

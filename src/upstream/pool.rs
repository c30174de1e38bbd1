//! Per-worker pools of keep-alive connections to plain-HTTP upstreams.
//!
//! Each worker is a single-threaded runtime, so its pool is a thread-local:
//! a request borrows a connection, drives it from its own task, and gives it
//! back, with no lock, channel or second task. Per upstream address a worker
//! keeps at most `max_idle` idle connections (more are closed when returned,
//! like nginx's `keepalive`). One unused for `idle_timeout` is closed, or
//! sooner when the upstream's `Keep-Alive: timeout=N` said it closes idle
//! connections itself (a second before N); the thread's upkeep looks every
//! second (`close_expired`), so none is held open after the traffic stops. A
//! connection is only returned after a complete, well-framed exchange; the
//! caller decides that. On checkout, one the upstream has closed meanwhile is
//! noticed (a non-blocking read sees EOF) and dropped.

use std::cell::RefCell;
use std::io;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::config::Upstream;
use crate::metrics::ConnectionGauge;
use crate::poll_clock;

/// An open connection to an upstream; the open-connections gauge follows it.
pub struct UpstreamConn {
    pub stream: TcpStream,
    /// It came from the pool (and so may have been closed by the upstream
    /// just as it was sent a request).
    pub reused: bool,
    open: ConnectionGauge,
}

impl Drop for UpstreamConn {
    fn drop(&mut self) {
        self.open.decrement(1);
    }
}

struct Idle {
    conn: UpstreamConn,
    /// When it may no longer be reused.
    expires: Instant,
}

/// Kept in hand against an upstream's announced keep-alive timeout, so that
/// its close and a new request do not cross on the wire.
const HINT_MARGIN: Duration = Duration::from_secs(1);

/// One upstream address's idle connections, most recently used last.
struct Pool {
    addr: String,
    idle: Vec<Idle>,
    /// Counts `idle` (the gauge of the first upstream to use the address).
    gauge: ConnectionGauge,
}

impl Pool {
    /// Closes the connections whose time is up.
    fn close_expired(&mut self, now: Instant) {
        let before = self.idle.len();
        self.idle.retain(|idle| now < idle.expires);
        self.gauge.decrement(before - self.idle.len());
    }
}

thread_local! {
    /// This thread's pools. A few upstreams at most: a list compared by
    /// address beats hashing the key.
    static POOLS: RefCell<Vec<Pool>> = const { RefCell::new(Vec::new()) };
}

/// The pool for `upstream`'s address, created on first use.
fn pool_for<'a>(pools: &'a mut Vec<Pool>, upstream: &Upstream, gauge: &ConnectionGauge) -> &'a mut Pool {
    let addr = upstream.authority.as_str();
    let at = match pools.iter().position(|pool| pool.addr == addr) {
        Some(at) => at,
        None => {
            pools.push(Pool { addr: addr.to_string(), idle: Vec::new(), gauge: gauge.clone() });
            pools.len() - 1
        }
    };
    &mut pools[at]
}

/// A pooled connection if a live one is idle, else a new one.
pub async fn checkout(upstream: &Upstream, open: &ConnectionGauge, idle: &ConnectionGauge) -> io::Result<UpstreamConn> {
    if let Some(conn) = take_idle(upstream, idle) {
        return Ok(conn);
    }
    let addr = upstream.authority.as_str();
    let stream = tokio::time::timeout(upstream.connect_timeout, TcpStream::connect(addr)).await.map_err(|_| {
        io::Error::new(io::ErrorKind::TimedOut, format!("no connection within {:?}", upstream.connect_timeout))
    })??;
    stream.set_nodelay(true)?;
    open.increment(1);
    Ok(UpstreamConn { stream, reused: false, open: open.clone() })
}

fn take_idle(upstream: &Upstream, gauge: &ConnectionGauge) -> Option<UpstreamConn> {
    POOLS.with(|pools| {
        let mut pools = pools.borrow_mut();
        let pool = pool_for(&mut pools, upstream, gauge);
        let now = poll_clock::now();
        while let Some(Idle { mut conn, expires }) = pool.idle.pop() {
            pool.gauge.decrement(1);
            if now < expires && still_open(&conn.stream) {
                conn.reused = true;
                return Some(conn);
            }
        }
        None
    })
}

/// An idle connection should have nothing to read: EOF means the upstream
/// closed it, and stray bytes mean it is out of step.
fn still_open(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// Returns a connection after a complete exchange. `hint` is the upstream's
/// own idle timeout, if its response announced one (`Keep-Alive: timeout=N`).
/// Beyond `max_idle`, or when the hint is no longer than `HINT_MARGIN`, the
/// connection is closed.
pub fn checkin(upstream: &Upstream, conn: UpstreamConn, hint: Option<Duration>, gauge: &ConnectionGauge) {
    let keep_for =
        hint.map_or(upstream.idle_timeout, |hint| upstream.idle_timeout.min(hint.saturating_sub(HINT_MARGIN)));
    if keep_for.is_zero() {
        return;
    }
    POOLS.with(|pools| {
        let mut pools = pools.borrow_mut();
        let pool = pool_for(&mut pools, upstream, gauge);
        let now = poll_clock::now();
        if pool.idle.len() >= upstream.max_idle {
            // Full: make room by closing connections idle too long, if any.
            pool.close_expired(now);
        }
        if pool.idle.len() < upstream.max_idle {
            pool.gauge.increment(1);
            pool.idle.push(Idle { conn, expires: now + keep_for });
        }
    });
}

/// Closes this thread's idle connections whose time is up. The thread's
/// upkeep calls it every second: without it, a connection would stay open
/// (and, once the upstream closed its end, half-closed) until the next request.
pub fn close_expired() {
    let now = Instant::now();
    let _ = POOLS.try_with(|pools| {
        if let Ok(mut pools) = pools.try_borrow_mut() {
            pools.iter_mut().for_each(|pool| pool.close_expired(now));
        }
    });
}

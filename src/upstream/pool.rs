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

/// An open connection to an upstream; the open-connections gauge follows it.
pub struct UpstreamConn {
    pub stream: TcpStream,
    /// It came from the pool (and so may have been closed by the upstream
    /// just as it was sent a request).
    pub reused: bool,
    open: ConnectionGauge,
    /// The upstream's idle gauge, counted while the connection waits in a pool.
    idle: ConnectionGauge,
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

thread_local! {
    /// Idle connections by upstream address, most recently used last. A few
    /// upstreams at most: a list compared by address beats hashing the key.
    static IDLE: RefCell<Vec<(String, Vec<Idle>)>> = const { RefCell::new(Vec::new()) };
}

/// The idle list for `addr`, created on first use.
fn list_for<'a>(pools: &'a mut Vec<(String, Vec<Idle>)>, addr: &str) -> &'a mut Vec<Idle> {
    let at = match pools.iter().position(|(a, _)| a == addr) {
        Some(at) => at,
        None => {
            pools.push((addr.to_string(), Vec::new()));
            pools.len() - 1
        }
    };
    &mut pools[at].1
}

/// A pooled connection if a live one is idle, else a new one.
pub async fn checkout(upstream: &Upstream, open: &ConnectionGauge, idle: &ConnectionGauge) -> io::Result<UpstreamConn> {
    if let Some(conn) = take_idle(upstream) {
        return Ok(conn);
    }
    let addr = upstream.authority.as_str();
    let stream = tokio::time::timeout(upstream.connect_timeout, TcpStream::connect(addr)).await.map_err(|_| {
        io::Error::new(io::ErrorKind::TimedOut, format!("no connection within {:?}", upstream.connect_timeout))
    })??;
    stream.set_nodelay(true)?;
    open.increment(1);
    Ok(UpstreamConn { stream, reused: false, open: open.clone(), idle: idle.clone() })
}

fn take_idle(upstream: &Upstream) -> Option<UpstreamConn> {
    IDLE.with(|pools| {
        let mut pools = pools.borrow_mut();
        let list = list_for(&mut pools, upstream.authority.as_str());
        while let Some(Idle { mut conn, expires }) = list.pop() {
            conn.idle.decrement(1);
            if Instant::now() < expires && still_open(&conn.stream) {
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
pub fn checkin(upstream: &Upstream, conn: UpstreamConn, hint: Option<Duration>) {
    let keep_for =
        hint.map_or(upstream.idle_timeout, |hint| upstream.idle_timeout.min(hint.saturating_sub(HINT_MARGIN)));
    if keep_for.is_zero() {
        return;
    }
    IDLE.with(|pools| {
        let mut pools = pools.borrow_mut();
        let list = list_for(&mut pools, upstream.authority.as_str());
        let now = Instant::now();
        if list.len() >= upstream.max_idle {
            // Full: make room by closing connections idle too long, if any.
            close_expired_in(list, now);
        }
        if list.len() < upstream.max_idle {
            conn.idle.increment(1);
            list.push(Idle { conn, expires: now + keep_for });
        }
    });
}

/// Closes this thread's idle connections whose time is up. The thread's
/// upkeep calls it every second: without it, a connection would stay open
/// (and, once the upstream closed its end, half-closed) until the next request.
pub fn close_expired() {
    let now = Instant::now();
    let _ = IDLE.try_with(|pools| {
        if let Ok(mut pools) = pools.try_borrow_mut() {
            for (_, list) in pools.iter_mut() {
                close_expired_in(list, now);
            }
        }
    });
}

fn close_expired_in(list: &mut Vec<Idle>, now: Instant) {
    list.retain(|idle| {
        let keep = now < idle.expires;
        if !keep {
            idle.conn.idle.decrement(1);
        }
        keep
    });
}

//! Per-worker pools of keep-alive connections to plain-HTTP upstreams.
//!
//! Each worker is a single-threaded runtime, so its pool is a thread-local:
//! a request borrows a connection, drives it from its own task, and gives it
//! back, with no lock, channel or second task. Per upstream address a worker
//! keeps at most `max_idle` idle connections (more are closed when returned,
//! like nginx's `keepalive`) and closes one unused for `idle_timeout`. A
//! connection is only returned after a complete, well-framed exchange; the
//! caller decides that. On checkout, one the upstream has closed meanwhile is
//! noticed (a non-blocking read sees EOF) and dropped.

use std::cell::RefCell;
use std::io;

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
}

impl Drop for UpstreamConn {
    fn drop(&mut self) {
        self.open.decrement(1);
    }
}

struct Idle {
    conn: UpstreamConn,
    since: Instant,
}

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

fn take_idle(upstream: &Upstream, idle: &ConnectionGauge) -> Option<UpstreamConn> {
    IDLE.with(|pools| {
        let mut pools = pools.borrow_mut();
        let list = list_for(&mut pools, upstream.authority.as_str());
        while let Some(Idle { mut conn, since }) = list.pop() {
            idle.decrement(1);
            if since.elapsed() < upstream.idle_timeout && still_open(&conn.stream) {
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

/// Returns a connection after a complete exchange. Beyond `max_idle` it is closed.
pub fn checkin(upstream: &Upstream, conn: UpstreamConn, idle: &ConnectionGauge) {
    IDLE.with(|pools| {
        let mut pools = pools.borrow_mut();
        let list = list_for(&mut pools, upstream.authority.as_str());
        let now = Instant::now();
        if list.len() >= upstream.max_idle {
            // Full: make room by closing connections idle too long, if any.
            let before = list.len();
            list.retain(|i| now.duration_since(i.since) < upstream.idle_timeout);
            idle.decrement(before - list.len());
        }
        if list.len() < upstream.max_idle {
            idle.increment(1);
            list.push(Idle { conn, since: now });
        }
    });
}

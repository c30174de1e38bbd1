//! One client connection: HTTP/1.1 with upgrades, head and idle timers, drain.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::clock::{ClockedIo, ConnClock, Expired};
use super::{Shared, proxy_protocol};
use crate::metrics::Metrics;
use crate::proxy;
use crate::proxy::headers::is_trusted;

/// What a request handler may know about its connection.
pub struct ConnContext {
    pub peer: SocketAddr,
    pub clock: Arc<ConnClock>,
    /// This connection's `max_connections` slot; tunnels hold a clone.
    pub slot: Arc<OwnedSemaphorePermit>,
    /// Tracks tunnels, so shutdown waits for them too.
    pub tasks: TaskTracker,
    pub metrics: Arc<Metrics>,
}

/// Keeps the open-connections gauge right however the connection ends.
struct Open(Arc<Metrics>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connections.decrement(1.0);
    }
}

pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    slot: Arc<OwnedSemaphorePermit>,
    stop: CancellationToken,
) {
    shared.metrics.connections.increment(1.0);
    let _open = Open(shared.metrics.clone());
    let _ = stream.set_nodelay(true);
    // Limits are fixed for the connection's life; routes are read per request.
    let (limits, listen) = {
        let state = shared.state.load();
        (state.config.limits.clone(), state.config.listen.clone())
    };
    let mut stream = stream;
    let peer = if listen.proxy_protocol && is_trusted(peer.ip(), &listen.trusted_proxies) {
        match proxy_protocol::read_source(&mut stream).await {
            Ok(source) => source.unwrap_or(peer),
            Err(e) => {
                tracing::warn!(client = %peer, "closing connection from a trusted proxy: {e}");
                return;
            }
        }
    } else {
        peer
    };
    let clock = Arc::new(ConnClock::new());
    let context = Arc::new(ConnContext {
        peer,
        clock: clock.clone(),
        slot,
        tasks: shared.tasks.clone(),
        metrics: shared.metrics.clone(),
    });
    let io = TokioIo::new(ClockedIo::new(stream, clock.clone()));
    let requests = shared.clone();
    let service = service_fn(move |req| proxy::handle(requests.state.load_full(), context.clone(), req));
    let mut builder = http1::Builder::new();
    builder.max_header_size(limits.max_header_bytes).max_headers(limits.max_headers).header_read_timeout(None);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        let check_at = clock.next_check(limits.header_timeout, limits.idle_timeout);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(client = %peer, "connection ended: {e}");
                }
                return;
            }
            _ = stop.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep_until(check_at) => {
                match clock.expired(limits.header_timeout, limits.idle_timeout) {
                    Some(Expired::Head) => {
                        tracing::warn!(client = %peer, status = 408, "request head not complete within header_timeout; closing");
                        return;
                    }
                    Some(Expired::Idle) => return,
                    None => {}
                }
            }
        }
    }
}

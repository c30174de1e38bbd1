//! The accept loop, connection limits and graceful drain.
//!
//! `run` takes already-bound listeners and a shutdown future, so `main` and the
//! tests drive it the same way. Each accepted connection first takes a slot from
//! the `max_connections` semaphore; when none is free, new connections wait in
//! the kernel's accept queue. Accept errors such as EMFILE back off instead of
//! spinning. On shutdown the listeners close at once, open connections finish
//! their current request, and whatever is left after `shutdown_grace` is cut
//! with a warning.

mod clock;
mod head_scan;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use clock::ActiveRequest;
use clock::{ClockedIo, ConnClock, Expired};

use crate::proxy::{self, State};

/// How long the accept loop pauses after an error such as EMFILE.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What a request handler may know about its connection.
pub struct ConnContext {
    pub peer: SocketAddr,
    pub clock: Arc<ConnClock>,
    /// This connection's `max_connections` slot; tunnels hold a clone.
    pub slot: Arc<OwnedSemaphorePermit>,
    /// Tracks tunnels, so shutdown waits for them too.
    pub tasks: TaskTracker,
}

/// Serves `listeners` until `shutdown` completes, then drains.
pub async fn run(listeners: Vec<TcpListener>, state: Arc<State>, shutdown: impl Future<Output = ()>) {
    let limits = &state.config.limits;
    let grace = limits.shutdown_grace;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let stop = CancellationToken::new();
    let tasks = TaskTracker::new();
    for listener in listeners {
        let accept = accept_loop(listener, state.clone(), slots.clone(), stop.clone(), tasks.clone());
        tasks.spawn(accept);
    }
    shutdown.await;
    tracing::info!(grace = ?grace, "shutting down: listeners closed, draining open connections");
    stop.cancel();
    tasks.close();
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::warn!(cut = tasks.len(), "shutdown grace of {grace:?} expired; cutting the connections still open");
    } else {
        tracing::info!("drained; exiting");
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    slots: Arc<Semaphore>,
    stop: CancellationToken,
    tasks: TaskTracker,
) {
    loop {
        let slot = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            accepted = accept(&listener) => accepted,
        };
        let conn = serve(stream, peer, state.clone(), Arc::new(slot), stop.clone(), tasks.clone());
        tasks.spawn(conn);
    }
}

/// Accepts one connection, riding out errors: a client that reset before we
/// accepted is skipped, and resource errors (EMFILE, ENFILE, ENOBUFS) pause.
/// A run of failures is logged once when it starts and once when it ends.
async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    let mut failures = 0u64;
    loop {
        match listener.accept().await {
            Ok(pair) => {
                if failures > 0 {
                    tracing::warn!(failures, "accepting connections again");
                }
                return pair;
            }
            Err(e) if is_peer_error(&e) => continue,
            Err(e) => {
                if failures == 0 {
                    tracing::error!("accept failed: {e}; retrying every {ACCEPT_BACKOFF:?}");
                }
                failures += 1;
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

fn is_peer_error(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted)
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<State>,
    slot: Arc<OwnedSemaphorePermit>,
    stop: CancellationToken,
    tasks: TaskTracker,
) {
    let _ = stream.set_nodelay(true);
    let limits = state.config.limits.clone();
    let clock = Arc::new(ConnClock::new());
    let context = Arc::new(ConnContext { peer, clock: clock.clone(), slot, tasks });
    let io = TokioIo::new(ClockedIo::new(stream, clock.clone()));
    let service = service_fn(move |req| proxy::handle(state.clone(), context.clone(), req));
    let mut builder = http1::Builder::new();
    builder
        .max_header_size(limits.max_header_bytes)
        .max_headers(limits.max_headers)
        .header_read_timeout(None)
        .keep_alive(true);
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

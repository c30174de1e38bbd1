//! One accept loop per listener.
//!
//! Each accepted connection takes a slot from the `max_connections` semaphore
//! before it is served; when none is free, the loop holds that one connection
//! and the rest wait in the kernel's accept queue. Accept errors such as
//! EMFILE back off instead of spinning. The loop also answers health probes,
//! which is how the watchdog knows it is alive.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{Shared, conn};
use crate::connection::ListenerKind;
use crate::poll_clock::Fresh;

/// How long the accept loop pauses after an error such as EMFILE.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

pub(super) async fn run(
    listener: TcpListener,
    kind: ListenerKind,
    shared: Arc<Shared>,
    stop: CancellationToken,
    mut probes: mpsc::Receiver<oneshot::Sender<()>>,
) {
    super::upkeep::start_on_this_thread();
    loop {
        // Kept across probes: answering one must not drop an accepted connection.
        let next = accept_with_slot(&listener, &shared.slots);
        tokio::pin!(next);
        let (slot, stream, peer) = loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                Some(reply) = probes.recv() => {
                    let _ = reply.send(());
                }
                accepted = &mut next => break accepted,
            }
        };
        let Some(slot) = slot else { return };
        let serve = conn::serve(stream, peer, kind, shared.clone(), Arc::new(slot), stop.clone());
        shared.tasks.spawn(Fresh::new(serve));
    }
}

/// Accepts a connection, then waits for a `max_connections` slot for it.
///
/// Accepting first matters when several accept loops share the slots (one per
/// listener and worker): a freed slot then always goes to a loop that has a
/// connection to serve, never to one idling in `accept`. Each loop holds at
/// most one connection waiting for a slot; the rest wait in the kernel's queue.
async fn accept_with_slot(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> (Option<OwnedSemaphorePermit>, TcpStream, SocketAddr) {
    let (stream, peer) = accept(listener).await;
    let slot = slots.clone().acquire_owned().await.ok();
    (slot, stream, peer)
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

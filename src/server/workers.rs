//! Worker threads: one single-threaded tokio runtime each.
//!
//! With `[runtime] workers = N`, the main runtime plus N-1 worker threads each
//! accept on their own socket for every listen address (SO_REUSEPORT), so the
//! kernel spreads connections across them and a connection lives on one thread
//! for its whole life. Measured against tokio's work-stealing scheduler with
//! the same thread count, this served 8% more requests (BENCHMARKS.md).
//! Workers only run accept loops and the connections they spawn; everything
//! else (signals, reload, admin, the Telegram monitor) stays on the main runtime.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{Shared, accept};
use crate::connection::ListenerKind;

/// An accept loop for a worker to run.
pub(super) struct AcceptJob {
    pub listener: std::net::TcpListener,
    pub kind: ListenerKind,
    pub shared: Arc<Shared>,
    pub stop: CancellationToken,
    pub probes: mpsc::Receiver<oneshot::Sender<()>>,
}

/// Handles to the worker threads; they exit when this is dropped.
pub(super) struct Workers {
    jobs: Vec<mpsc::UnboundedSender<AcceptJob>>,
}

impl Workers {
    /// Starts `count` worker threads (possibly none).
    pub fn start(count: usize) -> std::io::Result<Workers> {
        let mut jobs = Vec::with_capacity(count);
        for i in 0..count {
            let (tx, mut rx) = mpsc::unbounded_channel::<AcceptJob>();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_park(crate::access::output::before_park)
                .build()?;
            std::thread::Builder::new().name(format!("hookgate-worker-{}", i + 1)).spawn(move || {
                runtime.block_on(async move {
                    while let Some(job) = rx.recv().await {
                        match TcpListener::from_std(job.listener) {
                            Ok(listener) => {
                                tokio::spawn(accept::run(listener, job.kind, job.shared, job.stop, job.probes));
                            }
                            Err(e) => tracing::error!("worker cannot serve a listener: {e}"),
                        }
                    }
                });
            })?;
            jobs.push(tx);
        }
        Ok(Workers { jobs })
    }

    /// How many worker threads there are (besides the main runtime).
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Hands an accept loop to worker `index`.
    pub fn run(&self, index: usize, job: AcceptJob) {
        if let Some(worker) = self.jobs.get(index) {
            let _ = worker.send(job);
        }
    }
}

/// Binds `addr` once per runtime: plainly for one, with SO_REUSEPORT for more.
/// A `:0` port is resolved by the first bind and reused by the others.
/// `v6_only` keeps an IPv6 socket to IPv6 (see `server::v6_only`).
///
/// SO_REUSEPORT would also let a second hookgate (same user) join the port and
/// silently take half the connections, so a plain probe bind first makes sure
/// nobody holds the address.
pub(super) fn bind_group(addr: SocketAddr, count: usize, v6_only: bool) -> std::io::Result<Vec<std::net::TcpListener>> {
    if count > 1 && addr.port() != 0 {
        let probe = new_socket(addr, v6_only)?;
        probe.bind(addr)?;
    }
    let mut listeners = Vec::with_capacity(count);
    let mut target = addr;
    for _ in 0..count {
        let socket = new_socket(addr, v6_only)?;
        if count > 1 {
            socket.set_reuseport(true)?;
        }
        socket.bind(target)?;
        let listener = socket.listen(1024)?.into_std()?;
        target = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// A listening socket for `addr`'s family, with SO_REUSEADDR (a restart binds
/// at once) and, when asked, IPV6_V6ONLY.
fn new_socket(addr: SocketAddr, v6_only: bool) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    if v6_only {
        socket2::SockRef::from(&socket).set_only_v6(true)?;
    }
    Ok(socket)
}

//! Process signals and what each one means.
//!
//! Only shutdown lives here for now: SIGTERM is how systemd (and most process
//! managers) ask a service to stop; SIGINT is Ctrl-C in a terminal. Both start
//! the same graceful drain. Handlers are installed before the listeners start,
//! so a signal that arrives during start-up is not lost.

use std::future::Future;
use std::io;

use tokio::signal::unix::{SignalKind, signal};

/// A future that completes on the first SIGTERM or SIGINT.
pub fn shutdown_signal() -> io::Result<impl Future<Output = ()>> {
    // SIGTERM: the service manager's stop request.
    let mut term = signal(SignalKind::terminate())?;
    // SIGINT: Ctrl-C when run by hand.
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!("received {name}");
    })
}

//! systemd integration: readiness notifications, the watchdog interval, and
//! sockets handed over by socket activation.
//!
//! Everything here is a no-op when the process was not started by systemd:
//! without `NOTIFY_SOCKET` nothing is sent, without `WATCHDOG_USEC` there is no
//! watchdog, and without `LISTEN_FDS` the configured addresses are bound.

use std::io;
use std::time::Duration;

use sd_notify::NotifyState;

/// Sends state changes to the service manager (sd_notify(3)).
pub struct Notifier {
    enabled: bool,
}

impl Notifier {
    pub fn from_env() -> Self {
        Notifier { enabled: std::env::var_os("NOTIFY_SOCKET").is_some() }
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if !self.enabled {
            return;
        }
        let sent = match std::env::var_os("NOTIFY_SOCKET") {
            Some(path) if path.as_encoded_bytes().starts_with(b"@") => notify_abstract(&path, states),
            _ => sd_notify::notify(states),
        };
        if let Err(e) = sent {
            tracing::warn!("cannot notify systemd: {e}");
        }
    }

    /// Start-up or a reload is complete: listeners bound, routes loaded.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// A reload begins. `MONOTONIC_USEC` lets `Type=notify-reload` match it to its signal.
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now, NotifyState::Status("reloading config")]),
            Err(_) => self.send(&[NotifyState::Reloading, NotifyState::Status("reloading config")]),
        }
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("draining connections")]);
    }

    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }
}

/// sd_notify(3) to a socket in the abstract namespace (`NOTIFY_SOCKET=@name`),
/// which the `sd-notify` crate takes for a path.
fn notify_abstract(path: &std::ffi::OsStr, states: &[NotifyState<'_>]) -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(&path.as_encoded_bytes()[1..])?;
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    let message: String = states.iter().map(|state| format!("{state}\n")).collect();
    socket.send_to_addr(message.as_bytes(), &addr)?;
    Ok(())
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3) advises.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero()).map(|d| d / 2)
}

/// Sockets received through socket activation.
#[derive(Debug, Default)]
pub struct Activated {
    /// Served as proxy listeners.
    pub proxy: Vec<NamedSocket>,
    /// The socket named `admin` in `LISTEN_FDNAMES`, if any.
    pub admin: Option<std::net::TcpListener>,
}

/// A proxy socket from systemd with its `FileDescriptorName` (systemd's
/// default is the socket unit's name), which may say what it serves.
#[derive(Debug)]
pub struct NamedSocket {
    pub name: String,
    pub listener: std::net::TcpListener,
}

/// Why the sockets systemd passed could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("socket {0} from systemd is not a TCP listener")]
    NotTcp(usize),
    /// A connected socket (`Accept=yes`) or one nobody called listen(2) on:
    /// accepting on it fails forever.
    #[error("socket {0} from systemd is not listening (use Accept=no, the default, in the socket unit)")]
    NotListening(usize),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Takes the sockets passed in `LISTEN_FDS`, if `LISTEN_PID` names this
/// process. A socket named `admin` (`FileDescriptorName=admin`) serves the
/// admin endpoints; every other one is a proxy listener. Each must be a
/// listening TCP socket.
///
/// Call it before any other thread starts: it clears `LISTEN_FDS` and
/// `LISTEN_PID` so that children do not inherit them.
pub fn take_activated() -> Result<Option<Activated>, ActivationError> {
    let names: Vec<String> =
        std::env::var("LISTEN_FDNAMES").map(|v| v.split(':').map(str::to_string).collect()).unwrap_or_default();
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    let mut activated = Activated::default();
    for i in 0..fds.len() {
        let listener = fds.take_tcp_listener(i)?.ok_or(ActivationError::NotTcp(i))?;
        if !socket2::SockRef::from(&listener).is_listener()? {
            return Err(ActivationError::NotListening(i));
        }
        listener.set_nonblocking(true)?;
        let name = names.get(i).cloned().unwrap_or_default();
        if name == "admin" {
            activated.admin = Some(listener);
        } else {
            activated.proxy.push(NamedSocket { name, listener });
        }
    }
    Ok(Some(activated))
}

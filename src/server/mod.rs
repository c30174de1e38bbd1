//! Listeners, connection limits, reload hand-over and graceful drain.
//!
//! A `Server` owns the listening sockets and the current `State` (routes,
//! upstreams, limits) behind an `ArcSwap`. Each request loads the state once and
//! keeps it to the end, so a reload never changes a request mid-flight, while
//! the next request on the same keep-alive connection already sees the new
//! rules. Reload keeps every listener whose configured address is unchanged,
//! binds new addresses before anything is swapped, and stops accepting on
//! removed ones while their open connections finish. Sockets inherited from
//! systemd are never closed by a reload.
//!
//! On shutdown the listeners close at once, open connections finish their
//! current request, and whatever is left after `shutdown_grace` is cut with a
//! warning. `run` wraps all of this for callers (tests, the demo) that only need
//! to serve until a future completes.

mod accept;
mod conn;
pub(crate) mod proxy_protocol;
mod shared_alpn;
mod upkeep;
mod workers;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connection::ListenerKind;
use crate::systemd::NamedSocket;

use crate::metrics::Metrics;
use crate::proxy::State;

/// What every accept loop and connection shares.
struct Shared {
    state: ArcSwap<State>,
    metrics: Arc<Metrics>,
    slots: Arc<Semaphore>,
    tasks: TaskTracker,
    /// Cancelled when `shutdown_grace` runs out, to cut what is still open.
    cut: CancellationToken,
    /// Told of every state swapped in (`StateHandle::reloaded`).
    swapped: tokio::sync::watch::Sender<()>,
}

/// A listener being served.
struct Listening {
    kind: ListenerKind,
    /// The address as configured (`:0` stays `:0`), used to match on reload.
    configured: SocketAddr,
    local: SocketAddr,
    /// From systemd socket activation: never closed by a reload.
    inherited: bool,
    stop: CancellationToken,
    /// Asks the accept loop to answer, proving it and the runtime are alive.
    probe: mpsc::Sender<oneshot::Sender<()>>,
}

/// Why listeners could not be bound. On a reload nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// A reload's config names no address, and systemd passed no sockets to serve instead.
    #[error(
        "the new config has no listen address ([listen], [listen.tls] or [listen.redirect] addrs): \
         hookgate would listen nowhere"
    )]
    Nowhere,
    /// The address is taken or not this host's. The cause is in the message and not
    /// `source()`: `main` prints the chain, which would say it twice.
    #[error("cannot listen on {addr}: {error}")]
    Bind { addr: SocketAddr, error: io::Error },
    /// A socket from systemd serves HTTPS or redirects, and the new config
    /// dropped that table: the socket stays until a restart, with nothing to serve it by.
    #[error("a socket from systemd is served as {0}, which the new config no longer has; restart to change that")]
    InheritedKindGone(&'static str),
    /// A socket from systemd is named for a table the config does not have.
    #[error("the socket on {addr} from systemd is named {name:?}, but the config has no {table}")]
    NamedWithoutTable { addr: SocketAddr, name: String, table: &'static str },
    /// A bound socket could not be served.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads the current state from outside the server (the Telegram monitor).
#[derive(Clone)]
pub struct StateHandle(Arc<Shared>);

impl StateHandle {
    pub fn load(&self) -> Arc<State> {
        self.0.state.load_full()
    }

    /// Ready once a reload swaps in another state.
    pub fn reloaded(&self) -> tokio::sync::watch::Receiver<()> {
        self.0.swapped.subscribe()
    }
}

pub struct Server {
    shared: Arc<Shared>,
    max_connections: usize,
    stop: CancellationToken,
    listeners: Vec<Listening>,
    /// `[runtime] workers` minus the main runtime.
    workers: workers::Workers,
}

impl Server {
    /// Starts the worker threads `[runtime] workers` asks for (the calling
    /// runtime counts as one).
    pub fn new(state: State, metrics: Arc<Metrics>) -> io::Result<Self> {
        let max_connections = state.config.limits.max_connections;
        let workers = workers::Workers::start(state.config.workers.saturating_sub(1))?;
        let shared = Shared {
            state: ArcSwap::from_pointee(state),
            metrics,
            slots: Arc::new(Semaphore::new(max_connections)),
            tasks: TaskTracker::new(),
            cut: CancellationToken::new(),
            swapped: tokio::sync::watch::Sender::new(()),
        };
        let stop = CancellationToken::new();
        Ok(Server { shared: Arc::new(shared), max_connections, stop, listeners: Vec::new(), workers })
    }

    /// The state new requests get.
    pub fn state(&self) -> Arc<State> {
        self.shared.state.load_full()
    }

    pub fn state_handle(&self) -> StateHandle {
        StateHandle(self.shared.clone())
    }

    /// Local addresses being served.
    /// Every bound address once, with what it serves.
    pub fn bound(&self) -> Vec<(SocketAddr, ListenerKind)> {
        let mut bound: Vec<(SocketAddr, ListenerKind)> = Vec::new();
        for listener in &self.listeners {
            if !bound.iter().any(|(addr, _)| *addr == listener.local) {
                bound.push((listener.local, listener.kind));
            }
        }
        bound
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        let mut addrs: Vec<SocketAddr> = Vec::new();
        // Worker threads share each address; list it once.
        for listener in &self.listeners {
            if !addrs.contains(&listener.local) {
                addrs.push(listener.local);
            }
        }
        addrs
    }

    /// Connections open now, tunnels included.
    pub fn open_connections(&self) -> usize {
        self.max_connections.saturating_sub(self.shared.slots.available_permits())
    }

    /// Binds every configured address and serves it, but for the kinds of
    /// the sockets from systemd served already: those replace the addrs of
    /// their kind (a plain one `[listen] addrs`, and so on).
    pub async fn bind_configured(&mut self) -> Result<(), ListenError> {
        let inherited = self.inherited_kinds();
        let mut wanted = wanted_listeners(&self.state().config);
        wanted.retain(|(kind, _)| !inherited.contains(kind));
        for (kind, group, configured) in bind_all(&wanted, self.workers.len() + 1)? {
            self.serve_group(kind, group, configured)?;
        }
        Ok(())
    }

    /// Serves one socket per runtime for an address: the first on this
    /// runtime, the rest on the worker threads.
    fn serve_group(
        &mut self,
        kind: ListenerKind,
        group: Vec<std::net::TcpListener>,
        configured: SocketAddr,
    ) -> io::Result<()> {
        for (i, listener) in group.into_iter().enumerate() {
            if i == 0 {
                self.serve(kind, TcpListener::from_std(listener)?, configured, false);
                continue;
            }
            let local = listener.local_addr()?;
            let stop = self.stop.child_token();
            let (probe, probes) = mpsc::channel(1);
            let job = workers::AcceptJob { listener, kind, shared: self.shared.clone(), stop: stop.clone(), probes };
            self.workers.run(i - 1, job);
            self.listeners.push(Listening { kind, configured, local, inherited: false, stop, probe });
        }
        Ok(())
    }

    /// Serves an already-bound listener; `inherited` marks systemd's sockets.
    pub fn serve(&mut self, kind: ListenerKind, listener: TcpListener, configured: SocketAddr, inherited: bool) {
        let local = listener.local_addr().unwrap_or(configured);
        tracing::info!(addr = %local, kind = ?kind, inherited, "listening");
        let stop = self.stop.child_token();
        let (probe, probes) = mpsc::channel(1);
        let accept = accept::run(listener, kind, self.shared.clone(), stop.clone(), probes);
        self.shared.tasks.spawn(accept);
        self.listeners.push(Listening { kind, configured, local, inherited, stop, probe });
    }

    /// Serves a socket from systemd as what its `FileDescriptorName` says
    /// (`https` or `redirect`), else as what its port is configured for
    /// (`[listen.tls]` or `[listen.redirect]` addrs: systemd's `0.0.0.0:80`
    /// and `[::]:80` are both the redirect of a config that redirects on
    /// `0.0.0.0:80`), else as plain HTTP, which the shipped unit's `http` names.
    pub fn serve_activated(&mut self, socket: NamedSocket) -> Result<(), ListenError> {
        let addr = socket.listener.local_addr()?;
        let state = self.state();
        let listen = &state.config.listen;
        let port_of = |addrs: &[SocketAddr]| addrs.iter().any(|a| a.port() == addr.port());
        let kind = match socket.name.as_str() {
            "https" => ListenerKind::Tls,
            "redirect" => ListenerKind::Redirect,
            _ if listen.tls.as_ref().is_some_and(|t| port_of(&t.addrs)) => ListenerKind::Tls,
            _ if listen.redirect.as_ref().is_some_and(|r| port_of(&r.addrs)) => ListenerKind::Redirect,
            _ => ListenerKind::Plain,
        };
        let table = match kind {
            ListenerKind::Tls if listen.tls.is_none() => Some("[listen.tls]"),
            ListenerKind::Redirect if listen.redirect.is_none() => Some("[listen.redirect]"),
            _ => None,
        };
        if let Some(table) = table {
            return Err(ListenError::NamedWithoutTable { addr, name: socket.name, table });
        }
        self.serve(kind, TcpListener::from_std(socket.listener)?, addr, true);
        Ok(())
    }

    /// Swaps in `state`. New listen addresses are bound first; if one cannot
    /// be, nothing changes and the error says which.
    pub async fn reload(&mut self, state: State) -> Result<(), ListenError> {
        let wanted = wanted_listeners(&state.config);
        let inherited = self.inherited_kinds();
        if wanted.is_empty() && inherited.is_empty() {
            return Err(ListenError::Nowhere);
        }
        let listen = &state.config.listen;
        for (kind, gone, table) in [
            (ListenerKind::Tls, listen.tls.is_none(), "[listen.tls]"),
            (ListenerKind::Redirect, listen.redirect.is_none(), "[listen.redirect]"),
        ] {
            if gone && inherited.contains(&kind) {
                return Err(ListenError::InheritedKindGone(table));
            }
        }
        let is_open = |kind: ListenerKind, addr: SocketAddr| {
            self.listeners.iter().any(|l| l.kind == kind && l.configured == addr)
        };
        let missing: Vec<(ListenerKind, SocketAddr)> = wanted
            .iter()
            // Sockets from systemd replace the addrs of their kind.
            .filter(|(kind, addr)| !inherited.contains(kind) && !is_open(*kind, *addr))
            .copied()
            .collect();
        let fresh = bind_all(&missing, self.workers.len() + 1)?;

        self.resize_slots(state.config.limits.max_connections);
        self.shared.state.store(Arc::new(state));
        self.shared.swapped.send_replace(());
        for (kind, group, configured) in fresh {
            self.serve_group(kind, group, configured)?;
        }
        self.listeners.retain(|l| {
            let keep = l.inherited || wanted.contains(&(l.kind, l.configured));
            if !keep {
                tracing::info!(addr = %l.local, "no longer listening; open connections finish");
                l.stop.cancel();
            }
            keep
        });
        Ok(())
    }

    /// The kinds of the sockets from systemd (none without them).
    fn inherited_kinds(&self) -> Vec<ListenerKind> {
        let mut kinds: Vec<ListenerKind> = self.listeners.iter().filter(|l| l.inherited).map(|l| l.kind).collect();
        kinds.dedup();
        kinds
    }

    fn resize_slots(&mut self, wanted: usize) {
        let slots = &self.shared.slots;
        if wanted > self.max_connections {
            slots.add_permits(wanted - self.max_connections);
        } else if wanted < self.max_connections {
            // Retire slots as connections close; busy ones cannot be taken back now.
            let excess = (self.max_connections - wanted) as u32;
            let slots = slots.clone();
            tokio::spawn(async move {
                if let Ok(permits) = slots.acquire_many_owned(excess).await {
                    permits.forget();
                }
            });
        }
        self.max_connections = wanted;
    }

    /// True when every accept loop answers within `timeout`: the runtime is
    /// scheduling tasks and no accept loop is stuck or dead.
    pub async fn healthy(&self, timeout: Duration) -> bool {
        for listener in &self.listeners {
            let (reply, answer) = oneshot::channel();
            if listener.probe.send(reply).await.is_err() {
                return false;
            }
            if !matches!(tokio::time::timeout(timeout, answer).await, Ok(Ok(()))) {
                return false;
            }
        }
        true
    }

    /// Stops accepting and waits up to `shutdown_grace` for open connections.
    pub async fn drain(self) {
        let grace = self.state().config.limits.shutdown_grace;
        tracing::info!(grace = ?grace, "shutting down: listeners closed, draining open connections");
        self.stop.cancel();
        crate::access::output::write_through();
        let tasks = &self.shared.tasks;
        tasks.close();
        if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
            tracing::warn!(
                cut = tasks.len(),
                "shutdown grace of {grace:?} expired; cutting the connections still open"
            );
            // Cut connections log their unfinished responses as cut on the way out.
            self.shared.cut.cancel();
            let _ = tokio::time::timeout(CUT_WAIT, tasks.wait()).await;
        } else {
            tracing::info!("drained; exiting");
        }
    }
}

/// How long cut connections get to close and write their access lines.
const CUT_WAIT: Duration = Duration::from_secs(1);

/// Every (kind, address) the config asks for.
fn wanted_listeners(config: &crate::config::Config) -> Vec<(ListenerKind, SocketAddr)> {
    let listen = &config.listen;
    let plain = listen.addrs.iter().map(|a| (ListenerKind::Plain, *a));
    let tls = listen.tls.iter().flat_map(|t| t.addrs.iter().map(|a| (ListenerKind::Tls, *a)));
    let redirect = listen.redirect.iter().flat_map(|r| r.addrs.iter().map(|a| (ListenerKind::Redirect, *a)));
    plain.chain(tls).chain(redirect).collect()
}

/// Binds every address (once per runtime), or none: on error the ones bound
/// so far are dropped.
type Bound = (ListenerKind, Vec<std::net::TcpListener>, SocketAddr);

fn bind_all(wanted: &[(ListenerKind, SocketAddr)], runtimes: usize) -> Result<Vec<Bound>, ListenError> {
    let mut bound = Vec::with_capacity(wanted.len());
    for (kind, addr) in wanted {
        let v6_only = v6_only(*addr, wanted);
        let group =
            workers::bind_group(*addr, runtimes, v6_only).map_err(|error| ListenError::Bind { addr: *addr, error })?;
        bound.push((*kind, group, *addr));
    }
    Ok(bound)
}

/// Whether an IPv6 listener keeps to IPv6. `[::]:443` alone takes IPv4
/// clients too (Linux's default, one socket for both families); listed
/// beside an IPv4 address on the same port (`["0.0.0.0:443", "[::]:443"]`,
/// nginx's habit) it cannot, since its IPv4 half would clash with that
/// listener: each family then gets its own socket.
fn v6_only(addr: SocketAddr, wanted: &[(ListenerKind, SocketAddr)]) -> bool {
    addr.is_ipv6() && addr.port() != 0 && wanted.iter().any(|(_, other)| other.is_ipv4() && other.port() == addr.port())
}

/// Serves `listeners` with `state` until `shutdown` completes, then drains.
pub async fn run(listeners: Vec<TcpListener>, state: State, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let mut server = Server::new(state, Arc::new(Metrics::disabled()))?;
    for listener in listeners {
        let addr = listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        server.serve(ListenerKind::Plain, listener, addr, false);
    }
    shutdown.await;
    server.drain().await;
    Ok(())
}

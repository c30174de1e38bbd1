//! The daemon's life: start-up, signals, reload, the watchdog, and shutdown.
//!
//! Signals and why each is handled:
//! - SIGTERM: how systemd and most process managers ask a service to stop; drain and exit 0.
//! - SIGINT: Ctrl-C in a terminal; the same drain.
//! - SIGHUP: the conventional "re-read your config" (`systemctl reload`, `kill -HUP`).
//!
//! Handlers are installed before the listeners open, so a signal that arrives
//! during start-up is not lost. One loop owns the `Server` and does one thing at
//! a time: a reload, a watchdog self-check, or housekeeping.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

use crate::acme;
use crate::admin::{self, Admin, Phase, Readiness};
use crate::cluster::{Cluster, ClusterSettings};
use crate::config::{Config, Log};
use crate::delivery::SpoolService;
use crate::metrics::Metrics;
use crate::proxy::State;
use crate::report;
use crate::server::Server;
use crate::status::{self, ReloadError};
use crate::systemd::{self, Activated, Notifier};
use crate::telegram::monitor;
use crate::telegram::webhook_status::WebhookStatus;

/// How often metrics upkeep runs and the systemd status line is refreshed.
const HOUSEKEEPING: Duration = Duration::from_secs(5);

enum Event {
    Shutdown(&'static str),
    Reload,
}

struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Event {
        tokio::select! {
            _ = self.term.recv() => Event::Shutdown("SIGTERM"),
            _ = self.int.recv() => Event::Shutdown("SIGINT"),
            _ = self.hup.recv() => Event::Reload,
        }
    }
}

/// Runs the daemon until SIGTERM/SIGINT, then drains. `path` is re-read on reload.
pub async fn run(path: PathBuf, config: Config, activated: Option<Activated>) -> anyhow::Result<()> {
    let mut signals = Signals::install().context("cannot install signal handlers")?;
    raise_file_limit(config.limits.max_connections);
    // Metrics cost nothing when nobody can scrape them.
    let scrapable = config.admin.is_some() || activated.as_ref().is_some_and(|a| a.admin.is_some());
    let metrics = Arc::new(if scrapable { Metrics::prometheus() } else { Metrics::disabled() });
    let readiness = Arc::new(Readiness::default());
    let admin_addr = config.admin;
    let started = std::time::Instant::now();
    let mut spool = SpoolService::default();
    let depot = spool.open_if_needed(&config).await;
    let cluster = config.cluster.clone().map(|settings| Cluster::start(settings, &metrics));
    let state = State::new(config, &metrics, None, cluster.as_ref()).with_depot(depot);
    let mut server = Server::new(state, metrics.clone()).context("cannot start worker threads")?;
    spool.deliver(server.state_handle());

    let admin_listener = listen(&mut server, activated, admin_addr).await?;
    let admin_bound = admin_listener.as_ref().map(TcpListener::local_addr).transpose()?;
    admin::check_token(admin_bound, None, &server.state().config, &path)?;

    let webhook = Arc::new(WebhookStatus::default());
    let sources = status_sources(&server, &metrics, &webhook, &path, started, &spool);
    let (reload_tx, reload_rx) = mpsc::channel(4);
    if let Some(listener) = admin_listener {
        tracing::info!(addr = %listener.local_addr()?, "admin listening");
        let admin = Admin {
            readiness: readiness.clone(),
            metrics: metrics.clone(),
            reloads: reload_tx,
            webhook: webhook.clone(),
            status: sources.clone(),
            state: server.state_handle(),
            spool: spool.health(),
        };
        admin::spawn(listener, Arc::new(admin));
    }
    // Runs for the life of the process; it follows reloads and idles without [telegram].
    tokio::spawn(monitor::run(server.state_handle(), metrics.clone(), webhook));
    // Started once the listeners are bound: the ACME server validates through them.
    let mut acme = acme::Supervisor::default();
    acme.follow(&server.state().config, &metrics, server.state().cluster.as_ref());
    log_summary(&server.state().config);

    readiness.set(Phase::Serving);
    let notifier = Notifier::from_env();
    let at_start = SetAtStart::of(&server.state().config);
    let mut running = Running { server, path, metrics, notifier, sources, acme, admin_bound, spool, at_start };
    let status_line = status(&running.server);
    tracing::info!(status = %status_line, "hookgate ready");
    running.notifier.ready(&status_line);
    running.serve(&mut signals, reload_rx).await;
    running.shut_down(&readiness).await;
    Ok(())
}

/// What the status page reads: the daemon's parts, the config file, the
/// start time; loaded now, with the listeners bound.
fn status_sources(
    server: &Server,
    metrics: &Arc<Metrics>,
    webhook: &Arc<WebhookStatus>,
    path: &std::path::Path,
    started: std::time::Instant,
    spool: &SpoolService,
) -> Arc<status::Sources> {
    let sources = Arc::new(status::Sources {
        state: server.state_handle(),
        metrics: metrics.clone(),
        webhook: webhook.clone(),
        // Absolute, so `hookgate reload -c FILE` run from elsewhere can tell whether FILE is this one.
        config_path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string(),
        started,
        reloads: status::ReloadLog::default(),
        listeners: Default::default(),
        spool: spool.health(),
    });
    sources.reloads.loaded();
    sources.set_listeners(server.bound());
    sources
}

/// Serves systemd's sockets (which replace `[listen] addrs`) and binds the
/// configured TLS, redirect and plain listeners. Returns the admin listener:
/// systemd's, or `[admin] addr` bound here.
async fn listen(
    server: &mut Server,
    activated: Option<Activated>,
    admin_addr: Option<SocketAddr>,
) -> anyhow::Result<Option<TcpListener>> {
    let mut admin_listener = None;
    if let Some(sockets) = activated {
        tracing::info!(sockets = sockets.proxy.len(), "using sockets from systemd instead of the addrs of their kind");
        for socket in sockets.proxy {
            server.serve_activated(socket)?;
        }
        admin_listener = sockets.admin.map(TcpListener::from_std).transpose()?;
    }
    server.bind_configured().await?;
    anyhow::ensure!(!server.local_addrs().is_empty(), "no listen address: set [listen] addrs or use socket activation");
    if admin_listener.is_none()
        && let Some(addr) = admin_addr
    {
        admin_listener =
            Some(TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (admin)"))?);
    }
    Ok(admin_listener)
}

/// What the daemon holds while it serves, and what each event does to it.
struct Running {
    server: Server,
    path: PathBuf,
    metrics: Arc<Metrics>,
    notifier: Notifier,
    sources: Arc<status::Sources>,
    acme: acme::Supervisor,
    /// The admin listener's address: it keeps it across reloads.
    admin_bound: Option<SocketAddr>,
    spool: SpoolService,
    /// What only a restart changes, as the daemon started with it.
    at_start: SetAtStart,
}

/// `[log]`, `[admin]`, `[cluster]` and `[runtime]` are set up once at start-up: a reload
/// compares the file with these, not with the file it loaded last (which may
/// have changed them already and been put back).
struct SetAtStart {
    cluster: Option<ClusterSettings>,
    admin: Option<SocketAddr>,
    log: Log,
    workers: usize,
}

impl SetAtStart {
    fn of(config: &Config) -> Self {
        SetAtStart {
            cluster: config.cluster.clone(),
            admin: config.admin,
            log: config.log.clone(),
            workers: config.workers,
        }
    }
}

impl Running {
    /// Drains: ACME stops, `/readyz` says draining and systemd hears
    /// STOPPING=1; open connections and the spool's deliveries get
    /// `shutdown_grace`, then the spool's log is folded into its file.
    async fn shut_down(mut self, readiness: &Readiness) {
        self.acme.stop();
        readiness.set(Phase::Draining);
        self.notifier.stopping();
        let grace = self.server.state().config.limits.shutdown_grace;
        // Another host leads from now on, not after the lease runs out.
        if let Some(cluster) = &self.server.state().cluster {
            cluster.release().await;
        }
        tokio::join!(self.server.drain(), self.spool.stop(grace));
        self.spool.close().await;
    }

    /// Handles one event at a time until SIGTERM/SIGINT: reloads (SIGHUP or
    /// `POST /reload`), the watchdog's self-check, housekeeping.
    async fn serve(&mut self, signals: &mut Signals, mut reloads: mpsc::Receiver<admin::ReloadRequest>) {
        let watchdog = systemd::watchdog_interval();
        if let Some(every) = watchdog {
            tracing::info!(every = ?every, "systemd watchdog enabled");
        }
        let mut watchdog_tick = tokio::time::interval(watchdog.unwrap_or(Duration::MAX / 4));
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        loop {
            tokio::select! {
                event = signals.next() => match event {
                    Event::Shutdown(name) => {
                        tracing::info!("received {name}");
                        return;
                    }
                    Event::Reload => {
                        tracing::info!("received SIGHUP");
                        let _ = self.reload().await;
                    }
                },
                Some(request) = reloads.recv() => {
                    let outcome = match request.new_token {
                        Some(token) if !self.file_names_token(&token) => Err(ReloadError::Unauthorized),
                        _ => self.reload().await,
                    };
                    let _ = request.reply.send(outcome);
                }
                _ = watchdog_tick.tick(), if watchdog.is_some() => {
                    let limit = watchdog.unwrap_or_default().min(Duration::from_secs(1));
                    if self.server.healthy(limit).await {
                        self.notifier.watchdog();
                    } else {
                        tracing::error!("self-check failed: an accept loop did not answer; not pinging the watchdog");
                    }
                }
                _ = housekeeping.tick() => self.housekeeping(),
            }
        }
    }

    /// Certificate expiry, rate-limit tables, systemd's status line.
    fn housekeeping(&self) {
        let now = crate::metrics::unix_now() as i64;
        for cert in self.server.state().config.listen.tls.iter().flat_map(|t| t.served_certificates()) {
            self.metrics.certificate_expiry(&cert.cert_file, cert.days_left(now));
        }
        for (route, keys) in self.server.state().sweep_guards() {
            self.metrics.rate_limit_keys(&route, keys);
        }
        self.notifier.status(&status(&self.server));
    }

    /// Whether the config file as it is now names `token` as `[admin]`'s: a
    /// reload asked for with it may load the file (see `admin::ReloadRequest`).
    fn file_names_token(&self, token: &[u8]) -> bool {
        let named = Config::load(&self.path).is_ok_and(|c| c.admin_token.is_some_and(|t| t.matches(token)));
        if !named {
            tracing::warn!("POST /reload refused: its bearer token is not the admin token, old or new");
        }
        named
    }

    /// Re-reads the file; on success swaps it in, on failure keeps serving the
    /// old config and says why. Either way systemd hears RELOADING=1 then
    /// READY=1, the status page hears the outcome and the listeners that now
    /// serve, and ACME follows a changed `[listen.tls.acme]`.
    async fn reload(&mut self) -> Result<String, ReloadError> {
        self.notifier.reloading();
        let loaded = Config::load(&self.path).and_then(|config| {
            admin::check_token(self.admin_bound, Some(&self.server.state().config), &config, &self.path)
                .map(|()| config)
        });
        let outcome = match loaded {
            Err(e) => Err(ReloadError::from(e)),
            Ok(config) => {
                let notes = restart_only_changes(&self.at_start, &config);
                let routes = config.routes.routes().len();
                let depot = self.spool.open_if_needed(&config).await;
                let previous = self.server.state();
                let moved = moved_upstreams(&previous.config, &config);
                let state =
                    State::new(config, &self.metrics, Some(&previous), previous.cluster.as_ref()).with_depot(depot);
                let mut summary = format!("reloaded {}: {routes} routes", self.path.display());
                for note in notes {
                    summary.push_str("; ");
                    summary.push_str(note);
                }
                let reloaded = self.server.reload(state).await;
                if reloaded.is_ok() {
                    moved.iter().for_each(|name| self.metrics.upstream_window(name).forget_failures());
                }
                reloaded.map(|()| summary).map_err(ReloadError::from)
            }
        };
        match &outcome {
            Ok(summary) => {
                self.metrics.reloaded(true);
                self.spool.follow(&self.server.state().config);
                tracing::info!("{summary}");
                log_summary(&self.server.state().config);
            }
            Err(error) => {
                self.metrics.reloaded(false);
                // One log line per reload, however many problems the file has.
                let error = error.to_string().replace('\n', "; ");
                tracing::error!("reload failed, still serving the previous config: {error}");
            }
        }
        // After a failed reload too: State::new may have registered the names of a config not swapped in.
        self.metrics.forget_gone(&metric_names(&self.server.state().config));
        self.spool.deliver(self.server.state_handle());
        self.sources.reloads.reloaded(&outcome);
        self.sources.set_listeners(self.server.bound());
        self.notifier.ready(&status(&self.server));
        self.acme.follow(&self.server.state().config, &self.metrics, self.server.state().cluster.as_ref());
        outcome
    }
}

/// The upstreams `new` keeps by name but at another `url`.
fn moved_upstreams(old: &Config, new: &Config) -> Vec<String> {
    let url_of = |name: &str| old.upstreams.iter().find(|u| *u.name == *name).map(|u| &u.url);
    new.upstreams
        .iter()
        .filter(|u| url_of(&u.name).is_some_and(|url| *url != u.url))
        .map(|u| u.name.to_string())
        .collect()
}

/// Raises the soft open-file limit to the hard one (often 1,024 → 524,288 by
/// default), and says so when it is still short of what `max_connections`
/// needs: two descriptors per proxied connection, plus listeners and logs.
fn raise_file_limit(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            let needed = max_connections as u64 * 2 + 64;
            if limit < needed {
                tracing::warn!(
                    limit,
                    "max_connections = {max_connections} needs about {needed} open files; beyond the limit, \
                     accepting pauses (raise LimitNOFILE / ulimit -n)"
                );
            } else {
                tracing::info!(limit, "open-file limit");
            }
        }
        Err(e) => tracing::warn!("cannot raise the open-file limit: {e}"),
    }
}

/// What a reloaded file changes of the parts set at start-up, logged and
/// said in the reload's answer.
fn restart_only_changes(old: &SetAtStart, new: &Config) -> Vec<&'static str> {
    let cluster = |c: &Option<ClusterSettings>| c.as_ref().map(ClusterSettings::fingerprint);
    let changed = [
        (cluster(&old.cluster) != cluster(&new.cluster), "[cluster] changed; it takes effect at the next restart"),
        (old.admin != new.admin, "[admin] addr changed; it takes effect at the next restart"),
        (
            old.log.format != new.log.format || old.log.level != new.log.level,
            "[log] changed; it takes effect at the next restart",
        ),
        (old.workers != new.workers, "[runtime] workers changed; it takes effect at the next restart"),
    ];
    let notes: Vec<&'static str> = changed.into_iter().filter_map(|(changed, note)| changed.then_some(note)).collect();
    for note in &notes {
        tracing::warn!("{note}");
    }
    notes
}

fn status(server: &Server) -> String {
    let state = server.state();
    let addrs: Vec<String> = server.local_addrs().iter().map(SocketAddr::to_string).collect();
    format!(
        "serving {} routes on {}; {} connections open",
        state.config.routes.routes().len(),
        addrs.join(", "),
        server.open_connections()
    )
}

/// The start-up (and post-reload) summary of upstreams and routes.
fn log_summary(config: &Config) {
    for up in &config.upstreams {
        tracing::info!(name = %up.name, url = %up.url, "upstream");
    }
    for route in config.routes.routes() {
        let action = report::describe_action(config, &route.action);
        tracing::info!(name = %route.name, r#match = %route.describe_match(), %action, "route");
    }
    tracing::info!(action = %report::describe_action(config, config.routes.default_action()), "default");
    for file in &config.loose_secret_files {
        tracing::warn!(file = %file.display(), "a secret file its group or others may read: chmod 600 it");
    }
}

/// The route, upstream and certificate names `config` serves, as its metrics
/// series carry them (see `Metrics::forget_gone`).
pub(crate) fn metric_names(config: &Config) -> crate::metrics::Kept {
    use crate::metrics::{DEFAULT_ROUTE, NONE};
    let upstream_of = |action: &crate::routes::Action| match action {
        crate::routes::Action::Upstream(i) => config.upstreams[*i].name.to_string(),
        crate::routes::Action::Respond(_) => NONE.to_string(),
    };
    let mut routes: Vec<(String, String)> =
        config.routes.routes().iter().map(|r| (r.name.to_string(), upstream_of(&r.action))).collect();
    routes.push((DEFAULT_ROUTE.to_string(), upstream_of(config.routes.default_action())));
    crate::metrics::Kept {
        routes,
        upstreams: config.upstreams.iter().map(|u| u.name.to_string()).collect(),
        certificates: config.listen.tls.iter().flat_map(|t| t.served_certificates()).map(|c| c.cert_file).collect(),
    }
}

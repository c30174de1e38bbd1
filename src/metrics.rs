//! Prometheus metrics, kept off the request path's locks.
//!
//! Every handle a request touches (its route's counters and latency histogram,
//! its upstream's error counters) is registered once, when a config is loaded,
//! and stored beside the route table. A request then only does atomic adds.
//! Without `[admin]` nothing can be scraped, so every handle is a no-op.
//! The series live in `registry`, which renders the text format; the
//! spool's, set whole at each scrape, in `spool`; the handles a request
//! records into, in `handles`; `[cluster]`'s, in `cluster`.
//!
//! What a config names (routes, upstreams, certificates) is measured only
//! while a config names it: at each reload `forget_gone` drops the series and
//! status-page windows of the names the new config no longer has, so renaming
//! routes, upstreams or certificate files does not grow `/metrics` or memory,
//! and a replaced certificate's expiry stops being exported.

mod cluster;
mod handles;
mod registry;
mod spool;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use metrics::{Counter, Gauge, Histogram};

use crate::recent::{Problems, RouteWindow, UpstreamWindow, VERDICTS};
pub use cluster::ClusterMetrics;
pub use handles::{ConnectionGauge, OpenGauge, RouteMetrics, UpstreamMetrics, VerifyMetrics};
use registry::{Registry, SeriesKey};
pub use spool::SpoolRouteSeries;

const REQUESTS: &str = "hookgate_requests_total";
const DURATION: &str = "hookgate_request_duration_seconds";
const CONNECT_ERRORS: &str = "hookgate_upstream_connect_errors_total";
const TIMEOUTS: &str = "hookgate_upstream_timeouts_total";
const POOLED: &str = "hookgate_upstream_connections";
const CONNECTIONS: &str = "hookgate_open_connections";
const TUNNELS: &str = "hookgate_open_tunnels";
const RELOADS: &str = "hookgate_config_reloads_total";
const LAST_RELOAD_OK: &str = "hookgate_config_last_reload_successful";
const LAST_RELOAD_TIME: &str = "hookgate_config_last_reload_success_timestamp_seconds";
const BUILD_INFO: &str = "hookgate_build_info";
const RATE_LIMIT_KEYS: &str = "hookgate_rate_limit_keys";
const CERT_EXPIRY: &str = "hookgate_tls_certificate_expiry_days";
const TG_PENDING: &str = "hookgate_telegram_webhook_pending_updates";
const TG_LAST_ERROR: &str = "hookgate_telegram_webhook_last_error_timestamp_seconds";
const TG_URL_MATCHES: &str = "hookgate_telegram_webhook_url_matches_config";
const TG_MONITOR_ERRORS: &str = "hookgate_telegram_webhook_monitor_errors_total";
const TG_REPAIRS: &str = "hookgate_telegram_webhook_repairs_total";
const DEDUPE_SUPPRESSED: &str = "hookgate_dedupe_suppressed_total";
const VERIFY: &str = "hookgate_verify_total";
const ACME_ATTEMPTS: &str = "hookgate_acme_attempts_total";

/// Latency buckets in seconds: sub-millisecond proxying up to Telegram's 60 s limit.
const BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The `route` label of requests no route or `[default]` took (refused before
/// routing), and the `upstream` label of routes that answer locally.
pub const NONE: &str = "-";
/// The `route` label of `[default]`.
pub const DEFAULT_ROUTE: &str = "default";

/// The process-wide registry; lives across reloads.
pub struct Metrics {
    /// `None` without `[admin]`: every handle is then a no-op.
    registry: Option<Registry>,
    pub connections: Gauge,
    pub tunnels: Gauge,
    reloads_ok: Counter,
    reloads_failed: Counter,
    last_reload_ok: Gauge,
    last_reload_time: Gauge,
    telegram: TelegramMetrics,
    /// What the status page shows; kept across reloads, by name.
    route_windows: Mutex<HashMap<String, Arc<RouteWindow>>>,
    upstream_windows: Mutex<HashMap<String, Arc<UpstreamWindow>>>,
    pub problems: Arc<Problems>,
    /// The last `allow_from` refusal through an untrusted Cloudflare.
    pub cloudflare_hint: crate::cloudflare::Hint,
}

/// What the Telegram monitor exports.
struct TelegramMetrics {
    pending: Gauge,
    last_error: Gauge,
    url_matches: Gauge,
    monitor_errors: Counter,
}

impl Metrics {
    /// A registry that `/metrics` renders.
    pub fn prometheus() -> Self {
        Metrics::with(Some(Registry::default()))
    }

    /// Every handle a no-op: for a daemon without `[admin]`.
    pub fn disabled() -> Self {
        Metrics::with(None)
    }

    fn with(registry: Option<Registry>) -> Self {
        let mut metrics = Metrics {
            registry,
            connections: Gauge::noop(),
            tunnels: Gauge::noop(),
            reloads_ok: Counter::noop(),
            reloads_failed: Counter::noop(),
            last_reload_ok: Gauge::noop(),
            last_reload_time: Gauge::noop(),
            telegram: TelegramMetrics {
                pending: Gauge::noop(),
                last_error: Gauge::noop(),
                url_matches: Gauge::noop(),
                monitor_errors: Counter::noop(),
            },
            route_windows: Mutex::default(),
            upstream_windows: Mutex::default(),
            problems: Arc::default(),
            cloudflare_hint: Default::default(),
        };
        metrics.connections = metrics.gauge(CONNECTIONS, vec![]);
        metrics.tunnels = metrics.gauge(TUNNELS, vec![]);
        metrics.reloads_ok = metrics.counter(RELOADS, vec![("result", "success".into())]);
        metrics.reloads_failed = metrics.counter(RELOADS, vec![("result", "failure".into())]);
        metrics.last_reload_ok = metrics.gauge(LAST_RELOAD_OK, vec![]);
        metrics.last_reload_time = metrics.gauge(LAST_RELOAD_TIME, vec![]);
        metrics.telegram = TelegramMetrics {
            pending: metrics.gauge(TG_PENDING, vec![]),
            last_error: metrics.gauge(TG_LAST_ERROR, vec![]),
            url_matches: metrics.gauge(TG_URL_MATCHES, vec![]),
            monitor_errors: metrics.counter(TG_MONITOR_ERRORS, vec![]),
        };
        metrics.last_reload_ok.set(1.0);
        metrics.last_reload_time.set(unix_now());
        metrics.gauge(BUILD_INFO, vec![("version", env!("CARGO_PKG_VERSION").into())]).set(1.0);
        metrics
    }

    fn counter(&self, name: &'static str, labels: Vec<(&'static str, String)>) -> Counter {
        match &self.registry {
            Some(registry) => registry.counter(SeriesKey::new(name, labels)),
            None => Counter::noop(),
        }
    }

    fn gauge(&self, name: &'static str, labels: Vec<(&'static str, String)>) -> Gauge {
        match &self.registry {
            Some(registry) => registry.gauge(SeriesKey::new(name, labels)),
            None => Gauge::noop(),
        }
    }

    /// Handles for one route; `route` is `DEFAULT_ROUTE` for `[default]` and
    /// `NONE` for requests refused before routing.
    pub fn route(&self, route: &str, upstream: &str) -> RouteMetrics {
        let class = |c: &'static str| {
            let labels = vec![("route", route.to_string()), ("upstream", upstream.to_string()), ("class", c.into())];
            self.counter(REQUESTS, labels)
        };
        let duration = match &self.registry {
            Some(registry) => registry.histogram(SeriesKey::new(DURATION, vec![("route", route.to_string())]), BUCKETS),
            None => Histogram::noop(),
        };
        let dedupe_suppressed = self.counter(DEDUPE_SUPPRESSED, vec![("route", route.to_string())]);
        RouteMetrics {
            by_class: [class("1xx"), class("2xx"), class("3xx"), class("4xx"), class("5xx")],
            duration,
            dedupe_suppressed,
            verify: None,
            recent: self.route_window(route),
            problems: self.problems.clone(),
        }
    }

    /// Handles for the verdicts of a route with `verify`.
    pub fn verify(&self, route: &str) -> VerifyMetrics {
        let counter =
            |verdict: &str| self.counter(VERIFY, vec![("route", route.to_string()), ("result", verdict.into())]);
        VerifyMetrics { counters: VERDICTS.map(counter), recent: self.route_window(route) }
    }

    pub fn upstream(&self, name: &str) -> UpstreamMetrics {
        let labels = || vec![("upstream", name.to_string())];
        let recent = self.upstream_window(name);
        let level = |state: &'static str, now: &Arc<AtomicI64>| ConnectionGauge {
            gauge: self.gauge(POOLED, vec![("upstream", name.to_string()), ("state", state.into())]),
            now: now.clone(),
        };
        UpstreamMetrics {
            connect_errors: self.counter(CONNECT_ERRORS, labels()),
            timeouts: self.counter(TIMEOUTS, labels()),
            open: level("open", &recent.open),
            idle: level("idle", &recent.idle),
            recent,
        }
    }

    /// A route's recent activity (created on first use, kept across reloads
    /// while the config has the route).
    pub fn route_window(&self, route: &str) -> Arc<RouteWindow> {
        let mut windows = lock(&self.route_windows);
        windows.entry(route.to_string()).or_default().clone()
    }

    /// An upstream's recent failures (created on first use, kept across
    /// reloads while the config has the upstream).
    pub fn upstream_window(&self, upstream: &str) -> Arc<UpstreamWindow> {
        let mut windows = lock(&self.upstream_windows);
        windows.entry(upstream.to_string()).or_default().clone()
    }

    /// Records the outcome of a config reload.
    pub fn reloaded(&self, ok: bool) {
        if ok {
            self.reloads_ok.increment(1);
            self.last_reload_ok.set(1.0);
            self.last_reload_time.set(unix_now());
        } else {
            self.reloads_failed.increment(1);
            self.last_reload_ok.set(0.0);
        }
    }

    /// How many client buckets a route's rate limiter holds (updated every few seconds).
    pub fn rate_limit_keys(&self, route: &str, keys: usize) {
        if keys > 0 || self.registry.is_some() {
            self.gauge(RATE_LIMIT_KEYS, vec![("route", route.to_string())]).set(keys as f64);
        }
    }

    /// Whole days until a served certificate expires (negative once expired).
    pub fn certificate_expiry(&self, cert_file: &str, days: i64) {
        if self.registry.is_some() {
            self.gauge(CERT_EXPIRY, vec![("cert_file", cert_file.to_string())]).set(days as f64);
        }
    }

    /// Records one successful `getWebhookInfo`.
    pub fn telegram_webhook(&self, pending: u64, last_error: Option<u64>, url_matches: bool) {
        self.telegram.pending.set(pending as f64);
        self.telegram.last_error.set(last_error.unwrap_or(0) as f64);
        self.telegram.url_matches.set(if url_matches { 1.0 } else { 0.0 });
    }

    pub fn telegram_monitor_error(&self) {
        self.telegram.monitor_errors.increment(1);
    }

    /// Counts one webhook repair by the monitor; `result` is `success` or `failure`.
    pub fn telegram_repair(&self, result: &'static str) {
        self.counter(TG_REPAIRS, vec![("result", result.into())]).increment(1);
    }

    /// Records one ACME order attempt (`success` or `failure`).
    pub fn acme_attempt(&self, result: &'static str) {
        self.counter(ACME_ATTEMPTS, vec![("result", result.into())]).increment(1);
    }

    /// Forgets the series and windows of every name the serving config no
    /// longer has (`kept` says which it has): routes (as `route`, and as a
    /// `route` with its `upstream`), upstreams and served certificate files.
    /// Called after every reload. A request still running on the old config
    /// records into handles nothing renders any more; a name that comes back
    /// starts again at zero.
    pub fn forget_gone(&self, kept: &Kept) {
        let mut pairs: HashSet<(&str, &str)> = kept.routes.iter().map(|(r, u)| (r.as_str(), u.as_str())).collect();
        pairs.insert((NONE, NONE));
        let routes: HashSet<&str> = pairs.iter().map(|(route, _)| *route).collect();
        let mut upstreams: HashSet<&str> = kept.upstreams.iter().map(String::as_str).collect();
        upstreams.insert(NONE);
        let certificates = &kept.certificates;
        if let Some(registry) = &self.registry {
            registry.retain(|key| {
                let route = key.label("route");
                let upstream = key.label("upstream");
                route.is_none_or(|r| routes.contains(r))
                    && upstream.is_none_or(|u| upstreams.contains(u))
                    && key.label("cert_file").is_none_or(|c| certificates.iter().any(|kept| kept == c))
                    && match (route, upstream) {
                        (Some(r), Some(u)) => pairs.contains(&(r, u)),
                        _ => true,
                    }
            });
        }
        lock(&self.route_windows).retain(|name, _| routes.contains(name.as_str()));
        lock(&self.upstream_windows).retain(|name, _| upstreams.contains(name.as_str()));
    }

    /// The Prometheus text exposition, or `None` when metrics are disabled.
    pub fn render(&self) -> Option<String> {
        self.registry
            .as_ref()
            .map(|registry| registry.render(&[&HELP[..], &spool::HELP[..], &cluster::HELP[..]].concat()))
    }
}

/// The names a serving config has, as its series carry them: what
/// `Metrics::forget_gone` keeps. Built from the config by the caller, so this
/// module needs nothing above it.
#[derive(Debug, Default)]
pub struct Kept {
    /// Each route with the upstream it sends to (`NONE` for a `respond` route),
    /// `[default]` as `DEFAULT_ROUTE` among them.
    pub routes: Vec<(String, String)>,
    pub upstreams: Vec<String>,
    /// The certificate files the TLS listener serves.
    pub certificates: Vec<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// `# HELP` text for every metric name.
const HELP: [(&str, &str); 21] = [
    (REQUESTS, "Requests answered, by route, upstream and status class."),
    (CONNECT_ERRORS, "Requests that could not connect to their upstream."),
    (TIMEOUTS, "Requests whose upstream sent no response head within response_timeout."),
    (RELOADS, "Config reloads, by result."),
    (TG_MONITOR_ERRORS, "getWebhookInfo calls that failed."),
    (TG_REPAIRS, "Webhook repairs (setWebhook with this config) by the monitor, by result."),
    (DEDUPE_SUPPRESSED, "Repeats answered with the first answer, without forwarding them again (dedupe), by route."),
    (VERIFY, "Signature checks by route and result (ok, bad_signature, stale, missing); mode = log counts too."),
    (ACME_ATTEMPTS, "ACME certificate orders ([listen.tls.acme]), by result."),
    (POOLED, "Connections to an upstream: open (in use or idle) and idle in the workers' pools."),
    (CERT_EXPIRY, "Whole days until a served certificate expires."),
    (TG_PENDING, "Updates Telegram holds for the webhook (getWebhookInfo)."),
    (TG_LAST_ERROR, "Unix time of Telegram's last delivery error, 0 if none."),
    (TG_URL_MATCHES, "1 if the registered webhook URL is the one this config builds."),
    (RATE_LIMIT_KEYS, "Client buckets a route's rate limiter holds (bounded by max_keys)."),
    (CONNECTIONS, "Client connections open now, tunnels included."),
    (TUNNELS, "Upgrade (WebSocket) tunnels open now."),
    (LAST_RELOAD_OK, "1 if the last config reload succeeded, 0 if it failed."),
    (LAST_RELOAD_TIME, "Unix time of the last successful config load."),
    (BUILD_INFO, "Always 1; the version label says which build runs."),
    (DURATION, "Time from request head to the end of the response, by route."),
];

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Whole seconds since the Unix epoch.
pub fn unix_seconds() -> u64 {
    unix_now() as u64
}

#[cfg(test)]
mod tests;

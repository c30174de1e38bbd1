//! The status page's data: one `Snapshot` of the gateway, served as
//! `/status.json` and rendered as the HTML page at `/` (`html`), and read
//! by `hookgate status`. It is assembled on request from what the daemon
//! keeps anyway: the current config, the routes' and upstreams' recent
//! activity (`recent`), the Telegram monitor's view, the last reload, the
//! spool (`spool`), the cluster (`cluster`). `table` lays out the terminal's tables.

mod certificates;
pub mod cluster;
mod html;
pub mod signatures;
pub mod spool;
pub mod table;
mod terminal;

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use serde::Serialize;

pub use certificates::{Acme, Certificate};
pub use html::render;
pub use terminal::summary;

use crate::config::{Config, Upstream as UpstreamConfig};
use crate::delivery::Health;
use crate::metrics::Metrics;
use crate::recent::{Problem, Refusal, RouteSummary, UpstreamHealth};
use crate::routes::Action;
use crate::server::StateHandle;
use crate::telegram::webhook_status::{WebhookStatus, WebhookView};

/// A latency bound in milliseconds as people write it: `512 µs`, `1 ms`,
/// `131 ms`, `2.1 s`. The bounds are powers of two in µs, so `1.024` is `1 ms`;
/// the last bucket (from 2^24 µs, 16.8 s) has no upper bound.
pub fn readable_ms(ms: f64) -> String {
    let last_bucket = (1u64 << (crate::recent::BUCKETS - 1)) as f64 / 1000.0;
    if ms >= last_bucket {
        "over 16 s".to_string()
    } else if ms < 1.0 {
        format!("{} µs", (ms * 1000.0).round())
    } else if ms < 999.5 {
        format!("{} ms", ms.round())
    } else if ms < 9_950.0 {
        format!("{:.1} s", ms / 1000.0).replace(".0 s", " s")
    } else {
        format!("{} s", (ms / 1000.0).round())
    }
}

/// Certificates closer to expiry than this many days are amber; under `RED_DAYS`, red.
pub const AMBER_DAYS: i64 = 14;
pub const RED_DAYS: i64 = 3;

/// Where the snapshot's parts come from.
pub struct Sources {
    pub state: StateHandle,
    pub metrics: Arc<Metrics>,
    pub webhook: Arc<WebhookStatus>,
    pub config_path: String,
    pub started: Instant,
    pub reloads: ReloadLog,
    /// The addresses the daemon listens on now (set at start-up and reload).
    pub listeners: Mutex<Vec<Listener>>,
    /// The spool as the daemon has it (`SpoolService::health`).
    pub spool: Arc<ArcSwap<Health>>,
}

/// When the config was last loaded, and how the last reload went.
#[derive(Default)]
pub struct ReloadLog(Mutex<ReloadRecord>);

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadRecord {
    /// Unix time of the last successful load (start-up or reload).
    pub loaded_at: u64,
    /// The last reload attempt, if there was one.
    pub last_reload: Option<ReloadAttempt>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReloadAttempt {
    pub at: u64,
    pub ok: bool,
    /// The summary, or every problem found.
    pub message: String,
}

/// Why a reload left the previous config serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file is invalid; every problem, each naming its line.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A new listener could not be bound.
    #[error("{0}")]
    Listeners(#[from] crate::server::ListenError),
    /// `POST /reload` with a token neither the running config nor the file
    /// being loaded names; nothing was loaded.
    #[error("the bearer token is neither the running config's nor the one its token_file now holds")]
    Unauthorized,
}

impl ReloadLog {
    pub fn loaded(&self) {
        self.update(|r| r.loaded_at = crate::metrics::unix_seconds());
    }

    pub fn reloaded(&self, outcome: &Result<String, ReloadError>) {
        let at = crate::metrics::unix_seconds();
        self.update(|r| {
            if outcome.is_ok() {
                r.loaded_at = at;
            }
            let (ok, message) = match outcome {
                Ok(summary) => (true, summary.clone()),
                Err(error) => (false, error.to_string()),
            };
            r.last_reload = Some(ReloadAttempt { at, ok, message });
        });
    }

    fn update(&self, f: impl FnOnce(&mut ReloadRecord)) {
        if let Ok(mut record) = self.0.lock() {
            f(&mut record);
        }
    }

    fn get(&self) -> ReloadRecord {
        self.0.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub version: &'static str,
    pub uptime_seconds: u64,
    pub now: u64,
    pub config_file: String,
    pub reload: ReloadRecord,
    /// `None` without a `[telegram]` table.
    pub telegram: Option<Telegram>,
    pub routes: Vec<Route>,
    pub upstreams: Vec<Upstream>,
    pub listeners: Vec<Listener>,
    pub certificates: Vec<Certificate>,
    /// `None` without `[listen.tls.acme]`.
    pub acme: Option<Acme>,
    /// Newest first.
    pub problems: Vec<Problem>,
    pub spool: spool::SpoolSection,
    /// Routes with `verify`, and their verdicts since start.
    pub signatures: Vec<signatures::Signatures>,
    /// The last hour's last request that `allow_from` refused because it came
    /// through a Cloudflare address that is not trusted; also a `trouble` line.
    pub cloudflare_untrusted: Option<crate::cloudflare::Seen>,
    /// `None` without `[cluster]`.
    pub cluster: Option<crate::cluster::ClusterReport>,
    /// What needs attention, one line each (`hookgate status` exits 1 for
    /// any): the verdict is the worst of the parts above.
    pub trouble: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Telegram {
    pub route: String,
    /// `false` with `monitor_interval = "0s"`: then nobody asks Telegram.
    pub monitored: bool,
    /// What the monitor's last round learned, including that it could not ask
    /// Telegram; `None` until its first round ends (or with the monitor off).
    pub webhook: Option<WebhookView>,
    pub repair: bool,
    pub last_repair: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Route {
    pub name: String,
    pub matches: String,
    /// `upstream <name> (<url>)`, or `respond <status>`.
    pub action: String,
    /// The upstream's name, when the route forwards.
    pub upstream: Option<String>,
    /// Over the last minute (the last full one and the current one).
    pub last_minute: RouteSummary,
    pub requests_per_second: f64,
    /// Refusals over the last minute, by guard.
    pub refused: Vec<(&'static str, u64)>,
    /// Requests per minute, oldest first, the current minute last.
    pub per_minute: Vec<u64>,
}

#[derive(Debug, Serialize)]
pub struct Upstream {
    pub name: String,
    pub url: String,
    /// `ok`, `refusing connections` or `not answering`: from its latest
    /// outcomes (see `UpstreamHealth`), not from counts.
    pub state: &'static str,
    /// The failures since it last answered (0 when `ok` for lack of them).
    pub failures_in_a_row: u32,
    pub connect_errors: u64,
    pub timeouts: u64,
    pub open_connections: i64,
    pub idle_connections: i64,
    pub last_error: Option<String>,
    pub last_error_age_seconds: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Listener {
    pub addr: String,
    pub kind: &'static str,
}

impl Sources {
    pub fn snapshot(&self) -> Snapshot {
        let state = self.state.load();
        let config = &state.config;
        let now = crate::metrics::unix_seconds();
        let mut trouble = Vec::new();
        let routes = self.routes(config, &mut trouble);
        let upstreams = config.upstreams.iter().map(|u| self.upstream(u, &mut trouble)).collect();
        let telegram = self.telegram(config, &mut trouble);
        let listeners = self.listeners.lock().map(|l| l.clone()).unwrap_or_default();
        let certificates = certificates::served(config, now, &mut trouble);
        let acme = certificates::acme(config, &mut trouble);
        let reload = self.reloads.get();
        if let Some(attempt) = reload.last_reload.as_ref().filter(|a| !a.ok) {
            trouble.push(format!("the last reload failed: {}", attempt.message));
        }
        let mut problems = self.metrics.problems.list();
        problems.reverse();
        let spool = spool::section(&self.spool.load(), config, crate::spool::depot::unix_ms(), &mut trouble);
        let signatures = signatures::section(config, &self.metrics);
        let trusted = &config.listen.trusted_proxies;
        let cloudflare_untrusted = self.metrics.cloudflare_hint.current(|ip| trusted.contains(ip), now);
        if let Some(seen) = &cloudflare_untrusted {
            let ago = crate::telegram::cli::age(now.saturating_sub(seen.unix_time));
            trouble.push(format!(
                "route {}: allow_from refused a request from {} {ago} ago: {}",
                seen.route, seen.via, seen.hint
            ));
        }
        let cluster = state.cluster.as_ref().map(|c| cluster::section(c.report(), &mut trouble));
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: self.started.elapsed().as_secs(),
            now,
            config_file: self.config_path.clone(),
            reload,
            telegram,
            routes,
            upstreams,
            listeners,
            certificates,
            acme,
            problems,
            spool,
            signatures,
            cloudflare_untrusted,
            cluster,
            trouble,
        }
    }

    /// `[telegram]`'s webhook as the monitor sees it; a webhook that is not
    /// healthy is trouble, and so is one the monitor has not seen yet (after
    /// a start or a reload, until Telegram answers or the call times out) or
    /// never will (the monitor is off): the verdict is never healthy while
    /// Telegram's answer is unknown.
    fn telegram(&self, config: &Config, trouble: &mut Vec<String>) -> Option<Telegram> {
        config.telegram.as_ref().map(|t| {
            let webhook = self.webhook.view();
            let monitored = !t.monitor_interval.is_zero();
            match webhook.as_ref() {
                Some(WebhookView { healthy: true, .. }) => {}
                Some(WebhookView { state, unreachable: Some(why), .. }) => {
                    trouble.push(format!("telegram webhook: {state}: {why}"));
                }
                Some(view) => trouble.push(format!("telegram webhook: {}", view.state)),
                None if monitored => trouble.push("telegram webhook: not checked yet".to_string()),
                // Nothing asks Telegram, so nothing can say it reaches the webhook.
                None => trouble.push("telegram webhook: not monitored (monitor_interval is 0s)".to_string()),
            }
            Telegram {
                route: t.route.to_string(),
                monitored,
                webhook,
                repair: t.repair,
                last_repair: self.webhook.last_repair(),
            }
        })
    }

    /// Every route and the default, with their last minute; a route whose
    /// answers were mostly 5xx is trouble.
    fn routes(&self, config: &Config, trouble: &mut Vec<String>) -> Vec<Route> {
        let mut routes: Vec<Route> =
            config.routes.routes().iter().map(|r| self.route(config, &r.name, r.describe_match(), &r.action)).collect();
        routes.push(self.route(config, "default", "anything else".to_string(), config.routes.default_action()));
        for route in &routes {
            let s = &route.last_minute;
            if s.requests >= 10 && s.classes[4] * 2 >= s.requests {
                trouble.push(format!(
                    "route {}: {} of {} answers in the last minute were 5xx",
                    route.name, s.classes[4], s.requests
                ));
            }
        }
        routes
    }

    /// An upstream whose latest attempts all failed is trouble, however few.
    fn upstream(&self, upstream: &UpstreamConfig, trouble: &mut Vec<String>) -> Upstream {
        use std::sync::atomic::Ordering::Relaxed;
        let recent = self.metrics.upstream_window(&upstream.name);
        let now = SystemTime::now();
        let health = recent.health(now);
        let last = recent.last_error();
        let age = last.as_ref().and_then(|(at, _)| now.duration_since(*at).ok());
        let failures_in_a_row = match health {
            UpstreamHealth::Refusing(n) | UpstreamHealth::NotAnswering(n) => n,
            UpstreamHealth::Ok => 0,
        };
        if let (true, Some((_, error))) = (failures_in_a_row > 0, &last) {
            let ago = crate::telegram::cli::age(age.map_or(0, |a| a.as_secs()));
            trouble.push(format!(
                "upstream {}: {} (the last {failures_in_a_row} attempts failed, the newest {ago} ago: {error})",
                upstream.name,
                health.label()
            ));
        }
        Upstream {
            name: upstream.name.to_string(),
            url: upstream.url.clone(),
            state: health.label(),
            failures_in_a_row,
            connect_errors: recent.connect_errors.load(Relaxed),
            timeouts: recent.timeouts.load(Relaxed),
            open_connections: recent.open.load(Relaxed),
            idle_connections: recent.idle.load(Relaxed),
            last_error: last.map(|(_, text)| text),
            last_error_age_seconds: age.map(|a| a.as_secs()),
        }
    }

    /// Records what the daemon listens on now.
    pub fn set_listeners(&self, bound: Vec<(std::net::SocketAddr, crate::connection::ListenerKind)>) {
        use crate::connection::ListenerKind;
        let list = bound
            .into_iter()
            .map(|(addr, kind)| Listener {
                addr: addr.to_string(),
                kind: match kind {
                    ListenerKind::Plain => "http",
                    ListenerKind::Tls => "https",
                    ListenerKind::Redirect => "redirect",
                },
            })
            .collect();
        if let Ok(mut listeners) = self.listeners.lock() {
            *listeners = list;
        }
    }

    fn route(&self, config: &Config, name: &str, matches: String, action: &Action) -> Route {
        let window = self.metrics.route_window(name);
        let last_minute = window.last_minute();
        let per_minute = window.per_minute();
        // The last full minute, for a rate that does not jump at each new minute.
        let full = per_minute.len().checked_sub(2).map_or(0, |i| per_minute[i]);
        let refused = Refusal::ALL.iter().zip(last_minute.refusals).map(|(r, n)| (r.name(), n)).collect();
        Route {
            name: name.to_string(),
            matches,
            action: crate::report::describe_action(config, action),
            upstream: match action {
                Action::Upstream(i) => Some(config.upstreams[*i].name.to_string()),
                Action::Respond(_) => None,
            },
            requests_per_second: full as f64 / 60.0,
            refused,
            last_minute,
            per_minute,
        }
    }
}

/// The certificates the TLS listener serves; one near expiry is trouble.
#[cfg(test)]
mod tests {
    use super::readable_ms;

    #[test]
    fn latencies_read_as_people_write_them() {
        let bound = |i: u32| (1u64 << i) as f64 / 1000.0;
        let cases =
            [(0, "1 µs"), (9, "512 µs"), (10, "1 ms"), (13, "8 ms"), (15, "33 ms"), (17, "131 ms"), (19, "524 ms")];
        for (i, want) in
            cases.iter().chain(&[(20, "1 s"), (21, "2.1 s"), (23, "8.4 s"), (24, "17 s"), (25, "over 16 s")])
        {
            assert_eq!(readable_ms(bound(*i)), *want, "2^{i} µs");
        }
    }
}

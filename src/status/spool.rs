//! The spool's part of the status page, `/status.json` and `hookgate
//! status`: whether it is open, and per route what waits, how old the oldest
//! is, the dead letters and the last delivery error. A route with a dead
//! letter or a request waiting longer than [`ATTENTION_AGE`] needs
//! attention, and so does a spool that could not be opened. `/metrics` shows
//! the same rows (`admin`). Not for changing anything: that is `admin`'s
//! spool endpoints.

use std::time::Duration;

use serde::Serialize;

use crate::config::Config;
use crate::delivery::Health;
use crate::spool::FILE_NAME;
use crate::spool::depot::Depot;
use crate::spool::stats::RouteReport;
use crate::telegram::cli::age;

/// A request waiting longer than this needs attention.
pub const ATTENTION_AGE: Duration = Duration::from_secs(5 * 60);

/// `/status.json`'s `"spool"`.
#[derive(Debug, Serialize)]
pub struct SpoolSection {
    /// `off` (no route keeps anything and there is no file), `open` or `broken`.
    pub state: &'static str,
    /// Why a broken spool could not be opened.
    pub error: Option<String>,
    pub file: Option<String>,
    /// What the kept requests count against `max_bytes`.
    pub bytes: u64,
    pub max_bytes: u64,
    pub routes: Vec<SpoolRoute>,
}

/// One route's kept requests. Counts ending in `stored`, `delivered`,
/// `dead_total` and `not_kept` are since the daemon started; `dead` is the
/// dead letters kept now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpoolRoute {
    pub route: String,
    /// The config no longer has a route of this name: its requests go to
    /// their recorded upstream until delivered or dropped.
    pub orphaned: bool,
    /// Kept and not yet delivered (those in flight among them).
    pub waiting: usize,
    pub in_flight: usize,
    pub oldest_seconds: Option<u64>,
    pub stored: u64,
    pub delivered: u64,
    pub dead: u64,
    pub dead_total: u64,
    pub not_kept: u64,
    pub last_error: Option<String>,
    pub attention: bool,
}

/// The section for `health`, adding what needs attention to `trouble`.
pub fn section(health: &Health, config: &Config, now_ms: i64, trouble: &mut Vec<String>) -> SpoolSection {
    let file = Some(config.spool.dir.join(FILE_NAME).display().to_string());
    let closed = |state, error: Option<&String>, file| SpoolSection {
        state,
        error: error.cloned(),
        file,
        bytes: 0,
        max_bytes: config.spool.max_bytes,
        routes: Vec::new(),
    };
    match health {
        Health::Off => closed("off", None, None),
        Health::Broken(error) => {
            trouble.push(format!("spool: {error}; routes with store forward without it"));
            closed("broken", Some(error), file)
        }
        Health::Open(depot) => {
            let routes = routes(depot, config, now_ms);
            trouble.extend(routes.iter().filter(|r| r.attention).map(route_trouble));
            SpoolSection {
                state: "open",
                error: None,
                file: Some(depot.spool().path().display().to_string()),
                bytes: depot.spool().used_bytes(),
                max_bytes: depot.spool().max_bytes(),
                routes,
            }
        }
    }
}

/// Every route of `config` with `store`, and every route the spool has
/// requests or dead letters of, by name. A route the config no longer has
/// is left out once nothing of it is kept, so that renamed routes do not
/// pile up.
pub fn routes(depot: &Depot, config: &Config, now_ms: i64) -> Vec<SpoolRoute> {
    let named = |name: &str| config.routes.routes().iter().any(|r| *r.name == *name);
    let mut reports = depot.report();
    for route in config.routes.routes().iter().filter(|r| r.store.is_some()) {
        if !reports.iter().any(|r| *r.route == *route.name) {
            reports.push(RouteReport {
                route: route.name.to_string(),
                waiting: 0,
                in_flight: 0,
                oldest_ms: None,
                stats: Default::default(),
            });
        }
    }
    reports.sort_by(|a, b| a.route.cmp(&b.route));
    reports
        .into_iter()
        .map(|report| {
            let orphaned = !named(&report.route);
            row(report, orphaned, now_ms)
        })
        .filter(|row| !row.orphaned || row.waiting > 0 || row.in_flight > 0 || row.dead > 0)
        .collect()
}

/// One route's row; `orphaned` when the config does not name it.
fn row(report: RouteReport, orphaned: bool, now_ms: i64) -> SpoolRoute {
    let oldest_seconds = report.oldest_ms.map(|at| (now_ms.saturating_sub(at).max(0) / 1000) as u64);
    let stats = report.stats;
    let attention = stats.dead > 0 || oldest_seconds.is_some_and(|s| s > ATTENTION_AGE.as_secs());
    SpoolRoute {
        route: report.route,
        orphaned,
        waiting: report.waiting,
        in_flight: report.in_flight,
        oldest_seconds,
        stored: stats.stored,
        delivered: stats.delivered,
        dead: stats.dead,
        dead_total: stats.dead_total,
        not_kept: stats.not_kept,
        last_error: stats.last_error,
        attention,
    }
}

/// Bytes as people read them: `512 B`, `3.4 MiB`, `1.0 GiB`.
pub fn size(bytes: u64) -> String {
    bytesize::ByteSize::b(bytes).display().iec().to_string()
}

/// Why `route` needs attention, in one line.
fn route_trouble(route: &SpoolRoute) -> String {
    let mut why = Vec::new();
    if route.dead > 0 {
        let letters = if route.dead == 1 { "dead letter" } else { "dead letters" };
        why.push(format!("{} {letters} (hookgate spool list --dead --route {})", route.dead, route.route));
    }
    if let Some(seconds) = route.oldest_seconds.filter(|s| *s > ATTENTION_AGE.as_secs()) {
        why.push(format!("its oldest waiting request is {} old", age(seconds)));
    }
    let orphaned = if route.orphaned { " (no longer in the config)" } else { "" };
    format!("spool route {}{orphaned}: {}", route.route, why.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::stats::RouteStats;

    fn report(dead: u64, oldest_ms: Option<i64>) -> RouteReport {
        let stats = RouteStats { stored: 3, dead, dead_total: dead, ..Default::default() };
        RouteReport { route: "tg".into(), waiting: oldest_ms.map_or(0, |_| 1), in_flight: 0, oldest_ms, stats }
    }

    #[test]
    fn dead_letters_and_requests_older_than_five_minutes_need_attention() {
        let now = 1_000_000_000;
        let table = [
            (report(0, None), false, None),
            (report(0, Some(now - 300_000)), false, Some(300)),
            (report(0, Some(now - 301_000)), true, Some(301)),
            (report(1, None), true, None),
        ];
        for (report, attention, oldest) in table {
            let row = row(report, false, now);
            assert_eq!((row.attention, row.oldest_seconds), (attention, oldest), "{row:?}");
        }
        let old = row(report(2, Some(now - 3_600_000)), true, now);
        assert_eq!(
            route_trouble(&old),
            "spool route tg (no longer in the config): 2 dead letters (hookgate spool list --dead --route tg); \
             its oldest waiting request is 60 min old"
        );
    }
}

//! The spool's series: per route what was kept, delivered, buried and not
//! kept since start-up, what waits now and how old the oldest is, and the
//! bytes in use. They are set whole from the spool's own counts (the
//! depot's report, the same rows the status page shows), each time
//! `/metrics` is scraped (`admin` calls [`Metrics::spool`]), rather than
//! counted on the request path: the depot keeps those counts anyway, a
//! scrape then reads them as they are, and nothing runs when nobody scrapes.
//!
//! A route is exported while the status page shows it: while the config has
//! it, or while the spool still holds something of it. Each refresh drops
//! the spool series of every other route, so renamed routes do not grow
//! `/metrics` once their requests are delivered or dropped.

use std::collections::HashSet;

use super::Metrics;

const STORED: &str = "hookgate_spool_stored_total";
const DELIVERED: &str = "hookgate_spool_delivered_total";
const DEAD_TOTAL: &str = "hookgate_spool_dead_total";
const NOT_KEPT: &str = "hookgate_spool_not_kept_total";
const DEAD_LETTERS: &str = "hookgate_spool_dead_letters";
const WAITING: &str = "hookgate_spool_waiting";
const OLDEST: &str = "hookgate_spool_oldest_seconds";
const BYTES: &str = "hookgate_spool_bytes";

const NAMES: [&str; 8] = [STORED, DELIVERED, DEAD_TOTAL, NOT_KEPT, DEAD_LETTERS, WAITING, OLDEST, BYTES];

/// `# HELP` text for the spool's metrics.
pub(super) const HELP: [(&str, &str); 8] = [
    (STORED, "Requests kept in the spool since start-up, by route."),
    (DELIVERED, "Kept requests their upstream took (2xx) since start-up, by route."),
    (DEAD_TOTAL, "Kept requests that became dead letters since start-up, by route."),
    (
        NOT_KEPT,
        "Requests a store route could not keep, the spool full or unwritable (503, or journal: forwarded without a copy), by route.",
    ),
    (DEAD_LETTERS, "Dead letters kept now, by route (hookgate spool list --dead)."),
    (WAITING, "Kept requests not yet delivered, by route."),
    (OLDEST, "Age of the oldest kept request not yet delivered, 0 if none, by route."),
    (BYTES, "Bytes the kept requests count against [spool] max_bytes."),
];

/// One route's numbers, as the status page has them.
#[derive(Debug, Clone, Default)]
pub struct SpoolRouteSeries<'a> {
    pub route: &'a str,
    pub stored: u64,
    pub delivered: u64,
    pub dead_total: u64,
    pub not_kept: u64,
    pub dead: u64,
    pub waiting: u64,
    pub oldest_seconds: u64,
}

impl Metrics {
    /// Sets the spool's series to `routes` and `bytes` (`None`: the spool is
    /// not open), and drops those of every route not among them.
    pub fn spool(&self, bytes: Option<u64>, routes: &[SpoolRouteSeries<'_>]) {
        let Some(registry) = &self.registry else { return };
        let shown: HashSet<&str> = routes.iter().map(|r| r.route).collect();
        registry.retain(|key| {
            !NAMES.contains(&key.name) || key.label("route").map_or(bytes.is_some(), |route| shown.contains(route))
        });
        if let Some(bytes) = bytes {
            self.gauge(BYTES, vec![]).set(bytes as f64);
        }
        for r in routes {
            let labels = || vec![("route", r.route.to_string())];
            // The depot's counts only grow while the daemon runs: `absolute` keeps a counter monotonic.
            self.counter(STORED, labels()).absolute(r.stored);
            self.counter(DELIVERED, labels()).absolute(r.delivered);
            self.counter(DEAD_TOTAL, labels()).absolute(r.dead_total);
            self.counter(NOT_KEPT, labels()).absolute(r.not_kept);
            self.gauge(DEAD_LETTERS, labels()).set(r.dead as f64);
            self.gauge(WAITING, labels()).set(r.waiting as f64);
            self.gauge(OLDEST, labels()).set(r.oldest_seconds as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_no_longer_shown_are_dropped_and_counters_only_grow() {
        let metrics = Metrics::prometheus();
        let tg = SpoolRouteSeries {
            route: "tg",
            stored: 5,
            delivered: 3,
            waiting: 2,
            oldest_seconds: 40,
            ..Default::default()
        };
        let old = SpoolRouteSeries { route: "old", dead: 1, dead_total: 1, ..Default::default() };
        metrics.spool(Some(2048), &[tg.clone(), old]);
        let text = metrics.render().unwrap();
        for line in [
            "hookgate_spool_stored_total{route=\"tg\"} 5",
            "hookgate_spool_delivered_total{route=\"tg\"} 3",
            "hookgate_spool_waiting{route=\"tg\"} 2",
            "hookgate_spool_oldest_seconds{route=\"tg\"} 40",
            "hookgate_spool_dead_letters{route=\"old\"} 1",
            "hookgate_spool_dead_total{route=\"old\"} 1",
            "hookgate_spool_bytes 2048",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        metrics.spool(Some(0), &[SpoolRouteSeries { stored: 6, ..tg }]);
        let text = metrics.render().unwrap();
        assert!(!text.contains("route=\"old\""), "{text}");
        assert!(text.contains("hookgate_spool_stored_total{route=\"tg\"} 6"), "{text}");
        metrics.spool(None, &[]);
        assert!(!metrics.render().unwrap().contains("hookgate_spool"), "a spool that is not open has no series");
    }
}

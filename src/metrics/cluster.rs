//! `[cluster]`'s series: whether Redis answers, whether this host leads,
//! each call's latency and failures by what it was for, and the request-path
//! calls that fell back to the host's own tables. Registered once, when the
//! cluster starts; `cluster` records into them.

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};

use super::Metrics;
use super::registry::SeriesKey;

const REDIS_UP: &str = "hookgate_cluster_redis_up";
const LEADER: &str = "hookgate_cluster_leader";
const CALL_DURATION: &str = "hookgate_cluster_call_duration_seconds";
const CALL_ERRORS: &str = "hookgate_cluster_call_errors_total";
const FALLBACKS: &str = "hookgate_cluster_fallbacks_total";

/// Redis on a LAN answers in well under a millisecond; the deadline is 50 ms.
const CALL_BUCKETS: &[f64] = &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0];

/// `# HELP` text for the cluster's metrics.
pub(super) const HELP: [(&str, &str); 5] = [
    (REDIS_UP, "1 while this host reaches the cluster's Redis, 0 while degraded (state kept per host)."),
    (LEADER, "1 while this host holds the leader lease (Telegram repair, ACME orders)."),
    (CALL_DURATION, "Time of each call to Redis, by what it was for."),
    (CALL_ERRORS, "Calls to Redis that failed or missed their deadline, by what they were for."),
    (FALLBACKS, "Requests whose guard used this host's own table instead of Redis, by guard."),
];

/// One call kind's handles.
struct CallSeries {
    call: &'static str,
    duration: Histogram,
    errors: Counter,
}

/// The cluster's handles.
pub struct ClusterMetrics {
    pub redis_up: Gauge,
    pub leader: Gauge,
    calls: Vec<CallSeries>,
    fallbacks: Vec<(&'static str, Counter)>,
}

impl ClusterMetrics {
    /// Records one call of kind `call` (one of those `Metrics::cluster` was given).
    pub fn call(&self, call: &str, took: Duration, ok: bool) {
        if let Some(series) = self.series(call) {
            series.duration.record(took.as_secs_f64());
            if !ok {
                series.errors.increment(1);
            }
        }
    }

    /// Counts a request whose `guard` fell back to the host's own table.
    pub fn fallback(&self, guard: &str) {
        if let Some((_, counter)) = self.fallbacks.iter().find(|(name, _)| *name == guard) {
            counter.increment(1);
        }
    }

    fn series(&self, call: &str) -> Option<&CallSeries> {
        self.calls.iter().find(|s| s.call == call)
    }
}

impl Metrics {
    /// Handles for the cluster member `node`; `calls` are the kinds of call
    /// it makes, `guards` those on the request path, which fall back.
    pub fn cluster(&self, node: &str, calls: &[&'static str], guards: &[&'static str]) -> ClusterMetrics {
        let node = || vec![("node", node.to_string())];
        let calls = calls
            .iter()
            .map(|&call| {
                let labels = || vec![("call", call.to_string())];
                let duration = match &self.registry {
                    Some(registry) => registry.histogram(SeriesKey::new(CALL_DURATION, labels()), CALL_BUCKETS),
                    None => Histogram::noop(),
                };
                CallSeries { call, duration, errors: self.counter(CALL_ERRORS, labels()) }
            })
            .collect();
        let fallbacks = guards.iter().map(|&g| (g, self.counter(FALLBACKS, vec![("guard", g.to_string())]))).collect();
        ClusterMetrics { redis_up: self.gauge(REDIS_UP, node()), leader: self.gauge(LEADER, node()), calls, fallbacks }
    }
}

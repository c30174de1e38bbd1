//! The handles a request records into: its route's counters, latency and
//! verdicts, its upstream's failures and connection counts, and the gauge
//! of something open. Made by `Metrics` when a config is loaded; each
//! record is atomic adds only.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use metrics::{Counter, Gauge, Histogram};

use crate::recent::{Problems, RouteWindow, UpstreamWindow, VERDICTS};

/// Counts one open thing in a gauge for as long as it lives (a connection, a
/// tunnel), however it ends.
pub struct OpenGauge(Gauge);

impl OpenGauge {
    pub fn new(gauge: &Gauge) -> Self {
        gauge.increment(1.0);
        OpenGauge(gauge.clone())
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// A route's handles: requests by status class, and latency.
#[derive(Clone)]
pub struct RouteMetrics {
    pub(super) by_class: [Counter; 5],
    pub(super) duration: Histogram,
    /// The last 15 minutes, for the status page.
    pub recent: Arc<RouteWindow>,
    /// The process-wide list of recent 4xx/5xx answers.
    pub problems: Arc<Problems>,
    /// Redelivered updates answered without forwarding them again (`dedupe`).
    pub dedupe_suppressed: Counter,
    /// On a route with `verify`: its verdicts.
    pub verify: Option<VerifyMetrics>,
}

/// A `verify` route's verdicts, by `recent::VERDICTS`: Prometheus counters,
/// and the totals the status page shows.
#[derive(Clone)]
pub struct VerifyMetrics {
    pub(super) counters: [Counter; VERDICTS.len()],
    pub(super) recent: Arc<RouteWindow>,
}

impl VerifyMetrics {
    /// Counts `verdict`, one of `recent::VERDICTS`.
    pub fn record(&self, verdict: &str) {
        if let Some(i) = VERDICTS.iter().position(|v| *v == verdict) {
            self.counters[i].increment(1);
            self.recent.verified(i);
        }
    }
}

impl RouteMetrics {
    pub fn record(&self, status: u16, elapsed: Duration, at: SystemTime) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.by_class[class].increment(1);
        self.duration.record(elapsed.as_secs_f64());
        self.recent.record(status, elapsed, at);
    }
}

/// An upstream's failure counters.
#[derive(Clone)]
pub struct UpstreamMetrics {
    pub(super) connect_errors: Counter,
    pub(super) timeouts: Counter,
    /// Connections hookgate's own HTTP/1.1 client holds open, in use or idle.
    pub open: ConnectionGauge,
    /// Of those, idle in a worker's pool.
    pub idle: ConnectionGauge,
    /// Failures since start-up and the last one, for the status page.
    pub recent: Arc<UpstreamWindow>,
}

impl UpstreamMetrics {
    /// No connection could be made; `why` is shown on the status page.
    /// Returns whether the failure is news (see `recent::UpstreamWindow::connect_failed`).
    pub fn connect_failed(&self, why: &str) -> bool {
        self.connect_errors.increment(1);
        self.recent.connect_failed(why)
    }

    /// No response head within `response_timeout`.
    pub fn timed_out(&self, limit: Duration) {
        self.timeouts.increment(1);
        self.recent.timed_out(limit);
    }
}

/// A connection-count gauge whose value can also be read back (the status page shows it).
#[derive(Clone)]
pub struct ConnectionGauge {
    pub(super) gauge: Gauge,
    pub(super) now: Arc<AtomicI64>,
}

impl ConnectionGauge {
    pub fn increment(&self, n: usize) {
        self.gauge.increment(n as f64);
        self.now.fetch_add(n as i64, Ordering::Relaxed);
    }

    pub fn decrement(&self, n: usize) {
        self.gauge.decrement(n as f64);
        self.now.fetch_sub(n as i64, Ordering::Relaxed);
    }
}

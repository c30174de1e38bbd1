//! The series behind `/metrics`: one atomic cell per series, found by metric
//! name and labels, rendered in Prometheus's text format, and forgotten when
//! what it measured is gone.
//!
//! Why not `metrics-exporter-prometheus`'s recorder, which hookgate used
//! before: it can never remove a series (its only removal is an idle timeout,
//! which would also drop quiet series that still exist), so every route,
//! upstream and certificate name a reload ever saw stayed exported and in
//! memory. Its formatting helpers are still used, so the text is the same.
//! Not for anything request-shaped: handles are looked up once, at config
//! load, and a request only does atomic adds on them.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{Counter, Gauge, Histogram, HistogramFn};
use metrics_exporter_prometheus::formatting::{sanitize_label_value, write_help_line, write_type_line};

/// One series: a metric name and its labels, in the order they were given.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct SeriesKey {
    pub name: &'static str,
    pub labels: Vec<(&'static str, String)>,
}

impl SeriesKey {
    pub fn new(name: &'static str, labels: Vec<(&'static str, String)>) -> Self {
        SeriesKey { name, labels }
    }

    /// The value of label `name`, if the series has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

enum Cell {
    Counter(Arc<AtomicU64>),
    /// An `f64` in its bits, as `metrics`' `GaugeFn for AtomicU64` keeps it.
    Gauge(Arc<AtomicU64>),
    Histogram(Arc<Buckets>),
}

/// A histogram counted into fixed buckets as it records: no samples are
/// kept, so nothing needs folding later and memory does not grow with traffic.
pub(super) struct Buckets {
    bounds: &'static [f64],
    /// Per bucket, not cumulative: `counts[i]` has the values in `(bounds[i-1], bounds[i]]`.
    counts: Box<[AtomicU64]>,
    count: AtomicU64,
    /// The values are seconds; their sum is kept in whole nanoseconds, so one
    /// atomic add records it (an `f64` sum would need a compare-and-swap loop).
    sum_nanos: AtomicU64,
}

impl Buckets {
    fn new(bounds: &'static [f64]) -> Self {
        Buckets {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl HistogramFn for Buckets {
    fn record(&self, value: f64) {
        // The first bucket whose upper bound is >= value (Prometheus's `le`);
        // past the last bound only `+Inf` (the count) has it.
        let i = self.bounds.partition_point(|bound| *bound < value);
        if let Some(bucket) = self.counts.get(i) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add((value.max(0.0) * 1e9) as u64, Ordering::Relaxed);
    }
}

/// What `/metrics` renders: every series, sorted by name and labels.
#[derive(Default)]
pub(super) struct Registry {
    series: Mutex<BTreeMap<SeriesKey, Cell>>,
}

impl Registry {
    fn cells(&self) -> std::sync::MutexGuard<'_, BTreeMap<SeriesKey, Cell>> {
        self.series.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The counter `key`, created at 0 on first use; the same one after.
    pub fn counter(&self, key: SeriesKey) -> Counter {
        let mut cells = self.cells();
        let cell = cells.entry(key).or_insert_with(|| Cell::Counter(Arc::default()));
        match cell {
            Cell::Counter(value) => Counter::from_arc(value.clone()),
            _ => Counter::noop(),
        }
    }

    pub fn gauge(&self, key: SeriesKey) -> Gauge {
        let mut cells = self.cells();
        let cell = cells.entry(key).or_insert_with(|| Cell::Gauge(Arc::new(AtomicU64::new(0f64.to_bits()))));
        match cell {
            Cell::Gauge(value) => Gauge::from_arc(value.clone()),
            _ => Gauge::noop(),
        }
    }

    pub fn histogram(&self, key: SeriesKey, bounds: &'static [f64]) -> Histogram {
        let mut cells = self.cells();
        let cell = cells.entry(key).or_insert_with(|| Cell::Histogram(Arc::new(Buckets::new(bounds))));
        match cell {
            Cell::Histogram(buckets) => Histogram::from_arc(buckets.clone()),
            _ => Histogram::noop(),
        }
    }

    /// Keeps only the series `keep` says yes to. A handle to a forgotten
    /// series still works, but nothing renders it any more; asking for the
    /// same key again starts a new series at zero.
    pub fn retain(&self, mut keep: impl FnMut(&SeriesKey) -> bool) {
        self.cells().retain(|key, _| keep(key));
    }

    /// How many series there are.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.cells().len()
    }

    /// The text exposition format: per metric name its `# HELP` (from `help`)
    /// and `# TYPE` lines, then one line per series, then an empty line.
    pub fn render(&self, help: &[(&str, &str)]) -> String {
        let cells = self.cells();
        let mut out = String::with_capacity(cells.len() * 96);
        let mut current: Option<&str> = None;
        for (key, cell) in cells.iter() {
            if current != Some(key.name) {
                if current.is_some() {
                    out.push('\n');
                }
                current = Some(key.name);
                if let Some((_, text)) = help.iter().find(|(name, _)| *name == key.name) {
                    write_help_line(&mut out, key.name, None, None, text);
                }
                let kind = match cell {
                    Cell::Counter(_) => "counter",
                    Cell::Gauge(_) => "gauge",
                    Cell::Histogram(_) => "histogram",
                };
                write_type_line(&mut out, key.name, None, None, kind);
            }
            match cell {
                Cell::Counter(value) => line(&mut out, key.name, &key.labels, None, value.load(Ordering::Relaxed)),
                Cell::Gauge(value) => {
                    line(&mut out, key.name, &key.labels, None, f64::from_bits(value.load(Ordering::Relaxed)));
                }
                Cell::Histogram(buckets) => histogram_lines(&mut out, key, buckets),
            }
        }
        if current.is_some() {
            out.push('\n');
        }
        out
    }
}

/// `_bucket` lines (cumulative, then `+Inf`), `_sum` and `_count`. The cells
/// are read one by one while requests record, so the total is taken as at
/// least the last bucket's: the buckets never go down in one scrape.
fn histogram_lines(out: &mut String, key: &SeriesKey, buckets: &Buckets) {
    let name = |suffix: &str| format!("{}_{suffix}", key.name);
    let bucket_name = name("bucket");
    let mut cumulative = 0;
    for (bound, count) in buckets.bounds.iter().zip(buckets.counts.iter()) {
        cumulative += count.load(Ordering::Relaxed);
        line(out, &bucket_name, &key.labels, Some(("le", bound)), cumulative);
    }
    let count = buckets.count.load(Ordering::Relaxed).max(cumulative);
    line(out, &bucket_name, &key.labels, Some(("le", &"+Inf")), count);
    let sum = buckets.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    line(out, &name("sum"), &key.labels, None, sum);
    line(out, &name("count"), &key.labels, None, count);
}

/// `name{label="value",...,extra="value"} value`, label values escaped.
fn line(
    out: &mut String,
    name: &str,
    labels: &[(&'static str, String)],
    extra: Option<(&str, &dyn std::fmt::Display)>,
    value: impl std::fmt::Display,
) {
    out.push_str(name);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        let mut first = true;
        for (label, text) in labels {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{label}=\"{}\"", sanitize_label_value(text));
        }
        if let Some((label, text)) = extra {
            if !first {
                out.push(',');
            }
            let _ = write!(out, "{label}=\"{text}\"");
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &'static str, labels: &[(&'static str, &str)]) -> SeriesKey {
        SeriesKey::new(name, labels.iter().map(|(k, v)| (*k, v.to_string())).collect())
    }

    #[test]
    fn renders_the_exposition_format_and_forgets_what_it_is_told_to() {
        let registry = Registry::default();
        let help = [("t_total", "Things."), ("t_seconds", "Time.")];
        let a = registry.counter(key("t_total", &[("route", "a"), ("class", "2xx")]));
        a.increment(3);
        registry.counter(key("t_total", &[("route", "b\"q"), ("class", "2xx")])).increment(1);
        // The same key is the same series.
        registry.counter(key("t_total", &[("route", "a"), ("class", "2xx")])).increment(1);
        registry.gauge(key("t_open", &[])).set(2.5);
        let h = registry.histogram(key("t_seconds", &[("route", "a")]), &[0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 7.0] {
            h.record(v);
        }
        let text = registry.render(&help);
        let want = "# TYPE t_open gauge\nt_open 2.5\n\n\
                    # HELP t_seconds Time.\n# TYPE t_seconds histogram\n\
                    t_seconds_bucket{route=\"a\",le=\"0.1\"} 2\n\
                    t_seconds_bucket{route=\"a\",le=\"1\"} 3\n\
                    t_seconds_bucket{route=\"a\",le=\"+Inf\"} 4\n\
                    t_seconds_sum{route=\"a\"} 7.65\n\
                    t_seconds_count{route=\"a\"} 4\n\n\
                    # HELP t_total Things.\n# TYPE t_total counter\n\
                    t_total{route=\"a\",class=\"2xx\"} 4\n\
                    t_total{route=\"b\\\"q\",class=\"2xx\"} 1\n\n";
        assert_eq!(text, want);

        registry.retain(|key| key.label("route") != Some("a"));
        assert_eq!(registry.len(), 2);
        let text = registry.render(&help);
        assert!(!text.contains("route=\"a\"") && !text.contains("t_seconds"), "{text}");
        // The old handle still counts, unseen; the name starts again at zero.
        a.increment(1);
        let _again = registry.counter(key("t_total", &[("route", "a"), ("class", "2xx")]));
        assert!(registry.render(&help).contains("t_total{route=\"a\",class=\"2xx\"} 0\n"));
    }
}

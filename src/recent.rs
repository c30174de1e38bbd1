//! Recent activity, for the status page: per route, per-minute counters for
//! the last 15 minutes (answers by status class, guard refusals by kind, a
//! latency histogram); per upstream, failure counts, the last error and
//! whether it answered since (its `UpstreamHealth`); and
//! the last 50 problems (4xx and 5xx answers). Recording is atomic adds, plus
//! a short lock only for a problem or an upstream error. Everything here
//! lives in `Metrics`, so it survives reloads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Minutes of history shown (the ring has one more slot, the current minute).
pub const MINUTES: usize = 15;
const SLOTS: usize = MINUTES + 1;
/// Latency buckets: bucket `i` holds answers under 2^i µs (the last, anything longer).
pub const BUCKETS: usize = 26;
/// Problems kept.
pub const PROBLEMS: usize = 50;

/// Why a guard refused a request (the discriminant is its counter's index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    AllowFrom,
    Secret,
    Rate,
    Size,
    InFlight,
    /// `verify` refused the signature.
    Signature,
}

impl Refusal {
    pub const ALL: [Refusal; 6] =
        [Refusal::AllowFrom, Refusal::Secret, Refusal::Rate, Refusal::Size, Refusal::InFlight, Refusal::Signature];

    pub fn name(self) -> &'static str {
        match self {
            Refusal::AllowFrom => "allow_from",
            Refusal::Secret => "secret",
            Refusal::Rate => "rate",
            Refusal::Size => "size",
            Refusal::InFlight => "in_flight",
            Refusal::Signature => "signature",
        }
    }
}

/// One minute of one route.
#[derive(Default)]
struct Minute {
    /// Which minute (since the epoch) the counters belong to.
    stamp: AtomicU64,
    /// 1xx..5xx.
    classes: [AtomicU64; 5],
    refusals: [AtomicU64; Refusal::ALL.len()],
    latency: [AtomicU64; BUCKETS],
}

impl Minute {
    fn reset(&self, stamp: u64) {
        for counter in self.classes.iter().chain(&self.refusals).chain(&self.latency) {
            counter.store(0, Ordering::Relaxed);
        }
        self.stamp.store(stamp, Ordering::Release);
    }
}

/// A route's last 15 minutes, and its `verify` verdicts since start.
#[derive(Default)]
pub struct RouteWindow {
    minutes: [Minute; SLOTS],
    verdicts: [AtomicU64; VERDICTS.len()],
}

/// The verdicts of a route's `verify`, as `hookgate_verify_total`'s `result` label.
pub const VERDICTS: [&str; 4] = ["ok", "bad_signature", "stale", "missing"];

/// A route's `verify` verdicts since start, for the status page.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Verdicts {
    pub ok: u64,
    pub bad_signature: u64,
    pub stale: u64,
    pub missing: u64,
}

/// What a route's window says, summed over the minutes asked for.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct RouteSummary {
    pub requests: u64,
    /// Answers by class, `[1xx, 2xx, 3xx, 4xx, 5xx]`.
    pub classes: [u64; 5],
    /// Refusals, in `Refusal::ALL` order.
    pub refusals: [u64; Refusal::ALL.len()],
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl RouteWindow {
    fn current(&self, now_minute: u64) -> &Minute {
        let minute = &self.minutes[now_minute as usize % SLOTS];
        if minute.stamp.load(Ordering::Acquire) != now_minute {
            // The first answer of a new minute clears the slot; a racing one
            // may be lost, which a status page can afford.
            minute.reset(now_minute);
        }
        minute
    }

    /// An answer with `status`, `elapsed` after its head, ended `at`.
    pub fn record(&self, status: u16, elapsed: Duration, at: SystemTime) {
        let minute = self.current(minute_of(at));
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        minute.classes[class].fetch_add(1, Ordering::Relaxed);
        let micros = elapsed.as_micros().max(1) as u64;
        let bucket = (64 - micros.leading_zeros() as usize).min(BUCKETS - 1);
        minute.latency[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// A `verify` verdict, one of `VERDICTS`.
    pub fn verified(&self, verdict: usize) {
        self.verdicts[verdict].fetch_add(1, Ordering::Relaxed);
    }

    pub fn verdicts(&self) -> Verdicts {
        let [ok, bad_signature, stale, missing] = self.verdicts.each_ref().map(|n| n.load(Ordering::Relaxed));
        Verdicts { ok, bad_signature, stale, missing }
    }

    pub fn refused(&self, why: Refusal, at: SystemTime) {
        self.current(minute_of(at)).refusals[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests per minute, oldest first, for the last `MINUTES` minutes
    /// (the current, partial minute last).
    pub fn per_minute(&self) -> Vec<u64> {
        let now = unix_minute();
        (0..MINUTES as u64)
            .rev()
            .map(|ago| self.minute(now.saturating_sub(ago)).map_or(0, |m| sum(&m.classes)))
            .collect()
    }

    /// The last full minute plus the current one.
    pub fn last_minute(&self) -> RouteSummary {
        let now = unix_minute();
        let mut summary = RouteSummary::default();
        let mut latency = [0u64; BUCKETS];
        for minute in [now.saturating_sub(1), now].iter().filter_map(|m| self.minute(*m)) {
            add(&mut summary.classes, &minute.classes);
            add(&mut summary.refusals, &minute.refusals);
            add(&mut latency, &minute.latency);
        }
        summary.requests = summary.classes.iter().sum();
        summary.p50_ms = quantile(&latency, 0.50);
        summary.p99_ms = quantile(&latency, 0.99);
        summary
    }

    fn minute(&self, stamp: u64) -> Option<&Minute> {
        let minute = &self.minutes[stamp as usize % SLOTS];
        (minute.stamp.load(Ordering::Acquire) == stamp).then_some(minute)
    }
}

fn sum(counters: &[AtomicU64]) -> u64 {
    counters.iter().map(|c| c.load(Ordering::Relaxed)).sum()
}

fn add(into: &mut [u64], counters: &[AtomicU64]) {
    for (total, counter) in into.iter_mut().zip(counters) {
        *total += counter.load(Ordering::Relaxed);
    }
}

/// The upper bound (ms) of the bucket holding quantile `q`.
fn quantile(buckets: &[u64], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, count) in buckets.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return Some((1u64 << i) as f64 / 1000.0);
        }
    }
    None
}

fn minute_of(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 60)
}

fn unix_minute() -> u64 {
    minute_of(SystemTime::now())
}

/// Failures in a row (with no answer between them) that make an upstream
/// "refusing connections" or "not answering": one is a blip (a restart), two
/// with nothing answered since is a pattern.
pub const FAILING_IN_A_ROW: u32 = 2;
/// How long the last failures count once traffic stops: no answer since
/// them, but no attempt either, is not knowing any more.
pub const FAILING_FOR: Duration = Duration::from_secs(MINUTES as u64 * 60);

/// An upstream's failures since start-up, the last one's text, and whether it
/// has answered since: what the status page judges it by.
#[derive(Default)]
pub struct UpstreamWindow {
    pub connect_errors: AtomicU64,
    pub timeouts: AtomicU64,
    /// Connections of hookgate's own HTTP/1.1 client open now (in use or idle).
    pub open: Arc<AtomicI64>,
    /// Of those, idle in a worker's pool.
    pub idle: Arc<AtomicI64>,
    /// Set by each response head the upstream sends, cleared by each failure.
    answered: AtomicBool,
    last_failure: Mutex<Option<LastFailure>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    Connect,
    Timeout,
}

struct LastFailure {
    at: SystemTime,
    text: String,
    kind: Failure,
    /// Failures since the upstream last answered (or since start-up).
    in_a_row: u32,
}

/// How an upstream is doing, judged by its latest outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamHealth {
    /// It answered since its last failure, failed only once, or not lately.
    Ok,
    /// The last `n` connection attempts (or timeouts) failed, the newest of
    /// them a connection failure, and it has not answered since.
    Refusing(u32),
    /// As `Refusing`, the newest a response timeout.
    NotAnswering(u32),
}

impl UpstreamHealth {
    /// In a few words, for the page and the trouble list.
    pub fn label(self) -> &'static str {
        match self {
            UpstreamHealth::Ok => "ok",
            UpstreamHealth::Refusing(_) => "refusing connections",
            UpstreamHealth::NotAnswering(_) => "not answering",
        }
    }
}

impl UpstreamWindow {
    /// No connection could be made. Returns whether that is news: the first
    /// failure since an answer, or another error than the last one.
    pub fn connect_failed(&self, why: &str) -> bool {
        self.connect_errors.fetch_add(1, Ordering::Relaxed);
        self.failed(Failure::Connect, format!("connect: {why}"))
    }

    /// No response head within `limit`.
    pub fn timed_out(&self, limit: Duration) {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
        let _ = self.failed(Failure::Timeout, format!("no response head within {limit:?}"));
    }

    /// A response head arrived. Called for every one, so it only reads the
    /// flag unless a failure cleared it (no write to a shared line per request).
    pub fn answered(&self) {
        if !self.answered.load(Ordering::Relaxed) {
            self.answered.store(true, Ordering::Relaxed);
        }
    }

    /// Records a failure; whether it is news (see `connect_failed`).
    fn failed(&self, kind: Failure, text: String) -> bool {
        let Ok(mut last) = self.last_failure.lock() else { return false };
        let answered_since = self.answered.swap(false, Ordering::Relaxed);
        let (in_a_row, news) = match last.as_ref() {
            Some(l) if !answered_since => (l.in_a_row.saturating_add(1), l.text != text),
            _ => (1, true),
        };
        *last = Some(LastFailure { at: SystemTime::now(), text, kind, in_a_row });
        news
    }

    /// The upstream now lives elsewhere (a reload changed its `url`): the
    /// old address's failures say nothing of it.
    pub fn forget_failures(&self) {
        if let Ok(mut last) = self.last_failure.lock() {
            *last = None;
        }
        self.answered.store(false, Ordering::Relaxed);
    }

    pub fn last_error(&self) -> Option<(SystemTime, String)> {
        let last = self.last_failure.lock().ok()?;
        last.as_ref().map(|l| (l.at, l.text.clone()))
    }

    /// Judged at `now` from the latest outcomes, not from counts: a dead
    /// upstream is `Refusing` after two requests, and `Ok` again as soon as it
    /// answers one.
    pub fn health(&self, now: SystemTime) -> UpstreamHealth {
        let Ok(last) = self.last_failure.lock() else { return UpstreamHealth::Ok };
        let Some(last) = last.as_ref() else { return UpstreamHealth::Ok };
        let recent = now.duration_since(last.at).unwrap_or_default() <= FAILING_FOR;
        if self.answered.load(Ordering::Relaxed) || last.in_a_row < FAILING_IN_A_ROW || !recent {
            return UpstreamHealth::Ok;
        }
        match last.kind {
            Failure::Connect => UpstreamHealth::Refusing(last.in_a_row),
            Failure::Timeout => UpstreamHealth::NotAnswering(last.in_a_row),
        }
    }
}

/// One 4xx or 5xx answer. Never the query string, a secret or a token: the
/// reason is hookgate's own error text or the upstream's status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Problem {
    pub unix_time: u64,
    pub route: String,
    pub status: u16,
    pub reason: String,
}

/// The last `PROBLEMS` problems, newest last.
#[derive(Default)]
pub struct Problems(Mutex<VecDeque<Problem>>);

impl Problems {
    pub fn push(&self, problem: Problem) {
        if let Ok(mut list) = self.0.lock() {
            if list.len() == PROBLEMS {
                list.pop_front();
            }
            list.push_back(problem);
        }
    }

    pub fn list(&self) -> Vec<Problem> {
        self.0.lock().map(|l| l.iter().cloned().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_counts_classes_refusals_and_latency() {
        let window = RouteWindow::default();
        for _ in 0..98 {
            window.record(200, Duration::from_micros(300), SystemTime::now());
        }
        window.record(502, Duration::from_millis(40), SystemTime::now());
        window.record(403, Duration::from_micros(20), SystemTime::now());
        window.refused(Refusal::AllowFrom, SystemTime::now());
        let summary = window.last_minute();
        assert_eq!(summary.requests, 100);
        assert_eq!(summary.classes, [0, 98, 0, 1, 1]);
        assert_eq!(summary.refusals, [1, 0, 0, 0, 0, 0]);
        assert_eq!(summary.p50_ms, Some(0.512), "300 µs falls in the bucket under 512 µs");
        assert_eq!(summary.p99_ms, Some(0.512));
        assert_eq!(window.per_minute().last(), Some(&100));
        assert_eq!(window.per_minute().len(), MINUTES);
    }

    #[test]
    fn an_upstream_is_judged_by_its_latest_outcomes() {
        let window = UpstreamWindow::default();
        let now = SystemTime::now;
        assert_eq!(window.health(now()), UpstreamHealth::Ok, "no attempt yet");
        window.connect_failed("refused");
        assert_eq!(window.health(now()), UpstreamHealth::Ok, "one failure is a blip");
        window.connect_failed("refused");
        assert_eq!(window.health(now()), UpstreamHealth::Refusing(2));
        window.timed_out(Duration::from_secs(1));
        assert_eq!(window.health(now()), UpstreamHealth::NotAnswering(3), "the newest failure names it");
        let later = now() + FAILING_FOR + Duration::from_secs(1);
        assert_eq!(window.health(later), UpstreamHealth::Ok, "old failures with no attempt since");
        window.answered();
        assert_eq!(window.health(now()), UpstreamHealth::Ok, "it answered");
        window.connect_failed("refused");
        assert_eq!(window.health(now()), UpstreamHealth::Ok, "the count starts again after an answer");
        window.connect_failed("refused");
        assert_eq!(window.health(now()), UpstreamHealth::Refusing(2));
        assert_eq!(window.connect_errors.load(Ordering::Relaxed), 4);
        assert_eq!(window.last_error().unwrap().1, "connect: refused");
    }

    #[test]
    fn problems_keep_the_last_fifty() {
        let problems = Problems::default();
        for i in 0..60 {
            problems.push(Problem { unix_time: i, route: "r".into(), status: 502, reason: "x".into() });
        }
        let list = problems.list();
        assert_eq!((list.len(), list[0].unix_time, list[49].unix_time), (50, 10, 59));
    }
}

//! The access log: one line per request, written when its response ends.
//!
//! A `Delivery` rides inside the response body and every chunk of it, so the
//! line is written when the last byte reaches the client's socket (not when the
//! upstream's body ends), with the bytes actually written and the duration,
//! even when the body streams for minutes. A response that does not reach the
//! client whole is logged with `aborted=` and the reason: `client_timeout`
//! (nothing read for `send_timeout`), `client_closed`, `shutdown` (cut when
//! `shutdown_grace` ran out) or `upstream` (its body failed; `error=` says how).
//! The route's metrics are recorded at the same moment. It also holds the
//! connection's "request in progress" mark, which keeps the keep-alive idle
//! timer off while the response is being written. What the line says about
//! the request comes from its `RequestContext` (`context`), which planning fills in.

mod context;
pub mod format;
pub mod output;

pub use context::{LineText, RequestContext, RouteRef};

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::StatusCode;

use crate::connection::{AbortReason, ActiveRequest};
use crate::error::ProxyError;
use crate::metrics::RouteMetrics;
use crate::poll_clock;
use crate::recent::Problem;
use format::{Line, Value};

/// nginx's 499, "client closed request": the status a request is logged with
/// when its client left before the answer began.
pub fn client_closed_status() -> StatusCode {
    StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST)
}

/// One response on its way to the client. The access-log line and the
/// route's metrics are written when the last reference goes: the
/// `ResponseBody` holds one, and so does every body chunk still queued for the
/// socket. So the line is written when the last byte has been written to the
/// client, or when the connection is dropped with bytes still queued, and it
/// counts only what was written.
pub struct Delivery {
    ctx: RequestContext,
    /// The status sent; replaced only while no head has gone out.
    status: AtomicU16,
    start: Instant,
    /// Body bytes handed to the connection.
    produced: AtomicU64,
    /// Body bytes written to the client's socket.
    written: AtomicU64,
    /// The body reached its end (as opposed to being dropped part-way).
    ended: AtomicBool,
    /// The response did not reach the client: it left before the response
    /// began, or a write to it failed (which counts even with no body bytes).
    left: AtomicBool,
    /// Why the upstream's body stopped early.
    failure: OnceLock<String>,
    /// The error hookgate answered instead of the upstream's head (`replace_with`).
    replaced: OnceLock<ProxyError>,
    /// Keeps the connection out of its idle state until the response is written.
    active: ActiveRequest,
    /// The route's metrics, recorded when the line is written.
    metrics: Arc<RouteMetrics>,
}

impl Delivery {
    pub fn new(
        ctx: RequestContext,
        status: StatusCode,
        start: Instant,
        active: ActiveRequest,
        metrics: Arc<RouteMetrics>,
    ) -> Arc<Self> {
        Arc::new(Delivery {
            ctx,
            status: AtomicU16::new(status.as_u16()),
            start,
            produced: AtomicU64::new(0),
            written: AtomicU64::new(0),
            ended: AtomicBool::new(false),
            left: AtomicBool::new(false),
            failure: OnceLock::new(),
            replaced: OnceLock::new(),
            active,
            metrics,
        })
    }

    /// `n` body bytes were handed to the connection.
    pub fn produced(&self, n: usize) {
        self.produced.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// `n` body bytes reached the client's socket.
    pub fn written(&self, n: usize) {
        self.written.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The connection's clock (an HTTP/2 chunk reports to its send timer).
    pub fn clock(&self) -> &crate::connection::ConnClock {
        self.active.clock()
    }

    /// Sets how many body bytes reached the client's socket (for writers
    /// that know it exactly).
    pub fn set_written(&self, n: u64) {
        self.written.store(n, Ordering::Relaxed);
    }

    /// The client went away before any of the response was written.
    pub fn client_left(&self) {
        self.left.store(true, Ordering::Relaxed);
    }

    /// A write of this response to the client failed. A response without a
    /// body (a 204, a HEAD answer) would otherwise be logged as delivered.
    pub fn write_failed(&self) {
        self.left.store(true, Ordering::Relaxed);
    }

    /// The body ended normally.
    pub fn ended(&self) {
        self.ended.store(true, Ordering::Relaxed);
    }

    /// hookgate answers `error` itself instead of the upstream's head, which
    /// never went out (the body bytes read with it were already broken, as
    /// `cause` says). Logged like every error hookgate answers, in one line,
    /// and listed on the status page as that error, not as the upstream's status.
    pub fn replace_with(&self, error: ProxyError, cause: &dyn std::fmt::Display) {
        let status = error.status().as_u16();
        self.status.store(status, Ordering::Relaxed);
        let _ = self.replaced.set(error);
        let l = &self.ctx;
        tracing::warn!(route = %l.route_name(), upstream = %l.upstream_name(), client = %l.client, status, "{error} ({cause})");
    }

    /// Records why the body stopped early; it is logged with the line.
    pub fn fail(&self, why: &dyn std::fmt::Display) {
        let _ = self.failure.set(why.to_string());
    }

    /// Why the response did not reach the client whole, if it did not.
    fn aborted(&self) -> Option<&'static str> {
        if self.failure.get().is_some() {
            return Some("upstream");
        }
        let produced = self.produced.load(Ordering::Relaxed);
        let written = self.written.load(Ordering::Relaxed);
        // A body dropped before anything was produced is a HEAD or bodiless answer.
        let left = self.left.load(Ordering::Relaxed);
        let cut = left || written < produced || (produced > 0 && !self.ended.load(Ordering::Relaxed));
        let reason = self.active.clock().abort_reason().unwrap_or(AbortReason::ClientClosed);
        cut.then_some(reason.as_str())
    }
}

impl Delivery {
    /// Counts a guard's refusal and lists a 4xx/5xx answer, for the status page.
    fn note_problem(&self, at: SystemTime) {
        let status = self.status.load(Ordering::Relaxed);
        if let Some(kind) = self.ctx.error.and_then(|e| e.refusal()) {
            self.metrics.recent.refused(kind, at);
        }
        if status < 400 {
            return;
        }
        let reason = match self.ctx.error.or(self.replaced.get().copied()) {
            Some(error) => error.to_string(),
            None => match &self.ctx.upstream {
                Some(upstream) => format!("upstream {upstream} answered {status}"),
                // hookgate's own answer without an error: a `respond` rule's.
                None => format!("a respond rule answered {status}"),
            },
        };
        let route = self.ctx.route_name().to_string();
        let unix_time = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.metrics.problems.push(Problem { unix_time, route, status, reason });
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        let l = &self.ctx;
        let end = poll_clock::read();
        let elapsed = end.into_std().saturating_duration_since(self.start);
        // One reading serves the duration, the metrics, the status page and the line.
        let at = poll_clock::wall_clock(end);
        let status = self.status.load(Ordering::Relaxed);
        self.metrics.record(status, elapsed, at);
        self.note_problem(at);
        let aborted = self.aborted();
        let failure = self.failure.get();
        let (route, upstream) = (l.route_name(), l.upstream_name());
        let (reason, error) = (aborted.unwrap_or_default(), failure.map_or("", String::as_str));
        let fields = [
            ("client", l.client_text.as_ref().and_then(|t| t.to_str().ok()).map_or(Value::Ip(l.client), Value::Text)),
            ("method", Value::Text(l.method.as_str())),
            ("host", Value::Text(l.host_name())),
            ("path", Value::Text(l.path_name())),
            ("proto", Value::Text(l.proto)),
            ("route", Value::Text(route)),
            ("upstream", Value::Text(upstream)),
            ("status", Value::Number(u64::from(status))),
            ("duration_us", Value::Number(elapsed.as_micros() as u64)),
            ("bytes", Value::Number(self.written.load(Ordering::Relaxed))),
            ("aborted", Value::Text(reason)),
            ("error", Value::Text(error)),
        ];
        // `aborted` and `error` appear only when there is something to say.
        let shown = match (aborted, failure) {
            (None, _) => 10,
            (Some(_), None) => 11,
            (Some(_), Some(_)) => 12,
        };
        format::emit(&Line { warn: aborted.is_some(), at, fields: &fields[..shown] });
    }
}

/// What the access line will say, read before it is written (unit tests
/// cannot capture the line itself, which goes to stderr): the status, `bytes`,
/// `aborted=` and `error=`.
#[cfg(test)]
impl Delivery {
    pub(crate) fn line_so_far(&self) -> (u16, u64, Option<&'static str>, Option<String>) {
        let status = self.status.load(Ordering::Relaxed);
        (status, self.written.load(Ordering::Relaxed), self.aborted(), self.failure.get().cloned())
    }
}

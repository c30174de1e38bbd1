//! The spool in the daemon: opened at start-up when a route has `store` (or
//! a spool file exists), or at the first reload that adds one; what the
//! status page and `/readyz` say of it (`Health`); and the deliverer, one
//! task that sends the spool's kept requests to their
//! recorded upstream, as the queues allow (one at a time per line on an
//! ordered route, `concurrency` at once per route), through the upstream's
//! client of the current config.
//!
//! Each attempt's answer decides: 2xx delivers (the request is forgotten);
//! 408, 429, 5xx and connection failures are retried, the first retry after
//! about a second, then doubling with jitter up to 60 s, or later when the
//! upstream's `Retry-After` says so; any other answer is final and makes the
//! request a dead letter, as does reaching `expire`. Stopping (shutdown)
//! lets attempts in flight finish within `shutdown_grace`; whatever is not
//! delivered stays in the spool for the next start.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::hyper_glue::RequestBody;
use crate::proxy::State;
use crate::server::StateHandle;
use crate::spool::depot::{self, Depot, unix_ms};
use crate::spool::queue::{Ready, Rules};
use crate::spool::{SpoolError, read};

/// The longest wait between attempts, `Retry-After` aside.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// How much of a final answer's body a dead letter keeps.
const ANSWER_KEPT: usize = 4096;

/// The spool as the daemon has it.
#[derive(Default)]
pub enum Health {
    /// No route keeps anything, and there is no spool file.
    #[default]
    Off,
    Open(Arc<Depot>),
    /// It could not be opened: `store` routes forward as without it, and the file is left as it is.
    Broken(String),
}

/// The spool's part of the daemon: its health, shared with the status page
/// and the admin endpoints, and the deliverer once the spool is open.
#[derive(Default)]
pub struct SpoolService {
    health: Arc<ArcSwap<Health>>,
    deliverer: Option<Deliverer>,
}

impl SpoolService {
    pub fn health(&self) -> Arc<ArcSwap<Health>> {
        self.health.clone()
    }

    /// Opens the spool if `config` needs it and it is not open yet; returns
    /// it when open. A spool that cannot be opened is logged and reported,
    /// and tried again at the next reload.
    pub async fn open_if_needed(&mut self, config: &Config) -> Option<Arc<Depot>> {
        if let Health::Open(depot) = &**self.health.load() {
            if depot.spool().path().parent() != Some(config.spool.dir.as_path()) {
                tracing::warn!("[spool] dir changed; it takes effect at the next restart");
            }
            return Some(depot.clone());
        }
        let wanted = config.routes.routes().iter().any(|r| r.store.is_some());
        if !wanted && !config.spool.dir.join(crate::spool::FILE_NAME).exists() {
            return None;
        }
        match Depot::open(&config.spool).await {
            Ok(depot) => {
                tracing::info!(file = %depot.spool().path().display(), "spool open");
                self.health.store(Arc::new(Health::Open(depot.clone())));
                Some(depot)
            }
            // No route here keeps anything: the spool is another running hookgate's to deliver.
            Err(error @ SpoolError::InUse { .. }) if !wanted => {
                tracing::info!("{error}; no route here has store, so this daemon leaves it to that one");
                None
            }
            Err(error) => {
                tracing::error!("{error}; routes with store forward as without it until a reload opens it");
                self.health.store(Arc::new(Health::Broken(error.to_string())));
                None
            }
        }
    }

    /// A reload's `[spool] max_bytes`, for the spool that is open (a new
    /// `dir` waits for a restart, see `open_if_needed`).
    pub fn follow(&self, config: &Config) {
        if let Health::Open(depot) = &**self.health.load()
            && depot.spool().max_bytes() != config.spool.max_bytes
        {
            tracing::info!(max_bytes = config.spool.max_bytes, "[spool] max_bytes changed");
            depot.spool().set_max_bytes(config.spool.max_bytes);
        }
    }

    /// Starts delivering, once the spool is open and `states` serves it.
    pub fn deliver(&mut self, states: StateHandle) {
        if let (None, Health::Open(depot)) = (&self.deliverer, &**self.health.load()) {
            self.deliverer = Some(Deliverer::spawn(depot.clone(), states));
        }
    }

    /// Stops delivering within `grace` (see `Deliverer::stop`).
    pub async fn stop(&mut self, grace: Duration) {
        if let Some(deliverer) = self.deliverer.take() {
            deliverer.stop(grace).await;
        }
    }

    /// At exit, once nothing writes any more: the write-ahead log is folded
    /// into the spool file, so the file alone holds everything kept (a copy
    /// of `spool.sqlite3` without its `-wal` then misses nothing).
    pub async fn close(self) {
        if let Health::Open(depot) = &**self.health.load()
            && let Err(e) = depot.spool().checkpoint().await
        {
            tracing::warn!("spool: cannot fold the write-ahead log into the file at exit: {e}");
        }
    }
}

/// The running deliverer.
struct Deliverer {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Deliverer {
    fn spawn(depot: Arc<Depot>, states: StateHandle) -> Deliverer {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(depot, states, stop.clone()));
        Deliverer { stop, task }
    }

    /// Starts no more attempts, and gives those in flight up to `grace`.
    async fn stop(self, grace: Duration) {
        self.stop.cancel();
        let _ = tokio::time::timeout(grace + Duration::from_millis(100), self.task).await;
    }
}

async fn run(depot: Arc<Depot>, states: StateHandle, stop: CancellationToken) {
    let mut in_flight = JoinSet::new();
    loop {
        let state = states.load();
        let (ready, next) = depot.take_ready(|route| rules_of(&state, route));
        for ready in ready {
            in_flight.spawn(attempt(depot.clone(), states.load(), ready));
        }
        let forget_at = depot.forget_delivered().await;
        let wake_at = next.into_iter().chain(forget_at).min().unwrap_or(Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            () = depot.woken() => {}
            () = tokio::time::sleep_until(wake_at.into()) => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            () = stop.cancelled() => break,
        }
    }
    let grace = states.load().config.limits.shutdown_grace;
    let finished = async { while in_flight.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, finished).await.is_err() {
        tracing::warn!("spool: deliveries still in flight at shutdown_grace; they stay kept for the next start");
        in_flight.abort_all();
    }
    if depot.forget_delivered().await.is_some() {
        tracing::error!(
            "spool: delivered requests are still in the file at shutdown; the next start delivers them again"
        );
    }
}

/// The delivery rules of `route` in the current config.
fn rules_of(state: &State, route: &str) -> Rules {
    let spec = state.config.routes.routes().iter().find(|r| *r.name == *route).and_then(|r| r.store.as_ref());
    depot::rules(spec)
}

/// How one attempt ended.
enum Outcome {
    Delivered,
    Retry {
        error: String,
        after: Option<Duration>,
    },
    Final {
        status: Option<u16>,
        error: String,
        answer: Vec<u8>,
    },
    /// Dropped by the operator meanwhile.
    Gone,
}

async fn attempt(depot: Arc<Depot>, state: Arc<State>, ready: Ready) {
    if unix_ms() >= ready.expires_ms {
        // Not sent again: its attempts stay those it had.
        let plural = if ready.attempts == 1 { "" } else { "s" };
        let error = format!("expired after {} attempt{plural}", ready.attempts);
        return depot.bury(&ready, ready.attempts, None, error, Vec::new()).await;
    }
    let attempts = ready.attempts + 1;
    match send(&depot, &state, &ready).await {
        Outcome::Delivered => {
            tracing::info!(route = %ready.route, id = ready.id, attempts, "spool: delivered");
            depot.delivered(&ready).await;
        }
        Outcome::Retry { error, after } => {
            let wait = backoff(attempts, ready.id).max(after.unwrap_or_default());
            let expires_in = Duration::from_millis((ready.expires_ms - unix_ms()).max(0) as u64);
            let next_at = Instant::now() + wait.min(expires_in);
            tracing::debug!(route = %ready.route, id = ready.id, attempts, ?wait, "spool: attempt failed: {error}");
            depot.retry_later(&ready, attempts, error, next_at).await;
        }
        Outcome::Final { status, error, answer } => depot.bury(&ready, attempts, status, error, answer).await,
        Outcome::Gone => depot.forget(&ready),
    }
}

/// Sends the kept request once and reads what its answer means.
async fn send(depot: &Depot, state: &State, ready: &Ready) -> Outcome {
    let id = ready.id;
    let stored = match depot.spool().read(move |conn| read::stored(conn, id)).await {
        Ok(Some(stored)) => stored,
        Ok(None) => return Outcome::Gone,
        Err(e) => return Outcome::Retry { error: e.to_string(), after: None },
    };
    let Some(upstream) = state.upstreams.iter().find(|u| *u.config.name == *ready.upstream) else {
        let error = format!("upstream {} is not in the config", ready.upstream);
        return Outcome::Retry { error, after: None };
    };
    let config = &upstream.config;
    let Some(request) = request_of(&stored.head, stored.body, &config.scheme, &config.authority) else {
        let error = "the kept request head cannot be read".to_string();
        return Outcome::Final { status: None, error, answer: Vec::new() };
    };
    let response = match upstream.send(request).await {
        Ok(response) => response,
        Err(error) => return Outcome::Retry { error: format!("{}: {error}", ready.upstream), after: None },
    };
    let status = response.status().as_u16();
    let after = retry_after(response.headers());
    let answer = answer_of(response, upstream.config.response_timeout).await;
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 | 500..=599 => Outcome::Retry { error: format!("{} answered {status}", ready.upstream), after },
        _ => Outcome::Final { status: Some(status), error: format!("{} answered {status}", ready.upstream), answer },
    }
}

/// The request a kept head and body make (the head is HTTP/1.1 text as it
/// went upstream), for the upstream at `scheme://authority`.
fn request_of(
    head: &[u8],
    body: Vec<u8>,
    scheme: &http::uri::Scheme,
    authority: &http::uri::Authority,
) -> Option<Request<RequestBody>> {
    let mut fields = [httparse::EMPTY_HEADER; 256];
    let mut parsed = httparse::Request::new(&mut fields);
    if !parsed.parse(head).ok()?.is_complete() {
        return None;
    }
    // Not `Uri::builder()`: another caller of its generic `map` made the
    // compiler stop inlining it into the request path's rewrite (+0.5% instructions per request).
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(scheme.clone());
    uri.authority = Some(authority.clone());
    uri.path_and_query = Some(http::uri::PathAndQuery::try_from(parsed.path?).ok()?);
    let mut request = Request::builder().method(parsed.method?).uri(http::Uri::from_parts(uri).ok()?);
    for field in parsed.headers.iter() {
        request = request.header(field.name, field.value);
    }
    request.body(RequestBody::whole(Bytes::from(body))).ok()
}

/// The start of an answer's body, read within `limit`.
async fn answer_of(response: Response<Incoming>, limit: Duration) -> Vec<u8> {
    let mut body = response.into_body();
    let mut kept = Vec::new();
    let read = async {
        while kept.len() < ANSWER_KEPT {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        kept.extend_from_slice(&data[..data.len().min(ANSWER_KEPT - kept.len())]);
                    }
                }
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(limit, read).await;
    kept
}

/// `Retry-After` as seconds or an HTTP date, at most an hour.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value).ok()?.duration_since(SystemTime::now()).unwrap_or_default(),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The wait after `attempts` failed attempts: 1 s, 2 s, 4 s ... up to 60 s,
/// each within ±25% so that many requests kept at once do not retry at once.
fn backoff(attempts: u32, id: i64) -> Duration {
    let base = Duration::from_secs(1u64 << attempts.saturating_sub(1).min(6)).min(MAX_BACKOFF);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let spread = (u64::from(nanos) ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) % 501; // 0..=500
    base.mul_f64(0.75 + spread as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_a_minute() {
        for (attempts, base) in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (30, 60.0)] {
            let wait = backoff(attempts, 7).as_secs_f64();
            assert!((base * 0.75..=base * 1.25).contains(&wait), "attempt {attempts}: {wait}");
        }
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date_and_capped() {
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
        headers.insert(header::RETRY_AFTER, "999999".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        headers.insert(header::RETRY_AFTER, soon.parse().unwrap());
        assert!(retry_after(&headers).is_some_and(|d| d <= Duration::from_secs(30) && d >= Duration::from_secs(25)));
        headers.insert(header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn a_kept_head_becomes_the_request_again() {
        let head =
            b"POST /tg?x=1 HTTP/1.1\r\nhost: api.example\r\nx-forwarded-for: 1.2.3.4\r\ncontent-length: 2\r\n\r\n";
        let (scheme, authority) = (http::uri::Scheme::HTTP, http::uri::Authority::from_static("10.0.0.2:7001"));
        let request = request_of(head, b"{}".to_vec(), &scheme, &authority).unwrap();
        let uri = request.uri().to_string();
        assert_eq!((request.method().as_str(), uri.as_str()), ("POST", "http://10.0.0.2:7001/tg?x=1"));
        assert_eq!(request.headers()["x-forwarded-for"], "1.2.3.4");
        assert_eq!(request.headers()["host"], "api.example", "the Host the upstream got live");
        let incomplete = request_of(b"POST /tg HTTP/1.1\r\nhost", Vec::new(), &scheme, &authority);
        assert!(incomplete.is_none());
    }
}

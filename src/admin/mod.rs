//! The admin listener (`[admin] addr`, loopback by default).
//!
//! Endpoints (each `GET` one also answers `HEAD`; a method an endpoint does
//! not take gets 405 with `Allow`):
//! - `GET /healthz`: 200 while the process is alive.
//! - `GET /readyz`: 200 while serving; 503 while starting or draining. A
//!   second line carries the Telegram webhook diagnosis when `[telegram]` is
//!   set, and a third the monitor's last webhook repair, if any. A spool that
//!   could not be opened adds `spool: unusable: <why>` and leaves it 200.
//! - `GET /`: the status page (HTML); `GET /status.json`: the same as JSON.
//! - `GET /metrics`: Prometheus text format.
//! - `POST /reload`: re-reads the config file like SIGHUP and answers with the
//!   outcome (200, or 422 with the error). This is what `hookgate reload` calls.
//! - The spool (`spool`), which `hookgate spool` calls; JSON answers, 404 for
//!   an id it does not hold, 503 while the spool is off or broken:
//!   - `GET /spool?route=NAME&dead=1`: the waiting requests (the dead letters
//!     with `dead=1`), oldest first, optionally of one route;
//!   - `GET /spool/ID`: one request's head and body, secrets redacted, with
//!     its summary and the answer that made it a dead letter;
//!   - `POST /spool/ID/retry`: a dead letter back in its queue (409 if it is
//!     not one); `POST /spool/dead/retry?route=NAME`: every dead letter, or
//!     every one of a route;
//!   - `POST /spool/ID/drop`: forgets a request, waiting or dead.
//!
//! It binds to loopback by default. With `[admin] token_file` (required for any
//! other address) every endpoint but `/healthz` needs `Authorization: Bearer
//! <token>` (the scheme in any case), compared in constant time; otherwise 401.
//! Before that, `gate` keeps browsers' cross-site and DNS-rebinding requests
//! out: without a token the `Host` must name this listener (otherwise 421),
//! and a state-changing request from another origin gets 403.
//!
//! Its connections share the process's descriptors with the proxy, so they
//! are bounded: [`MAX_CONNECTIONS`] at once, and `[limits] header_timeout`
//! for each request head, which also closes idle keep-alive connections.

mod gate;
mod spool;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::config::{Config, ConfigError, Problem};
use crate::delivery::Health;
use crate::metrics::Metrics;
use crate::server::StateHandle;
use crate::status;
use crate::telegram::webhook_status::{REPAIR_LINE, WebhookStatus};
use gate::Refusal;

/// Where the daemon is in its life, for `/readyz`.
#[derive(Debug, Default)]
pub struct Readiness(AtomicU8);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting = 0,
    Serving = 1,
    Draining = 2,
}

impl Readiness {
    pub fn set(&self, phase: Phase) {
        self.0.store(phase as u8, Ordering::Relaxed);
    }

    pub fn get(&self) -> Phase {
        match self.0.load(Ordering::Relaxed) {
            0 => Phase::Starting,
            1 => Phase::Serving,
            _ => Phase::Draining,
        }
    }
}

/// A reload request from `POST /reload`, answered with its outcome.
pub struct ReloadRequest {
    pub reply: oneshot::Sender<Result<String, crate::status::ReloadError>>,
    /// A bearer token the running config does not know: the reload goes
    /// ahead only if the file being loaded names it. That is how `hookgate
    /// reload` loads a config whose token file was rotated, sending the new
    /// token; anyone else gets 401 and nothing changes.
    pub new_token: Option<Vec<u8>>,
}

pub struct Admin {
    pub readiness: Arc<Readiness>,
    pub metrics: Arc<Metrics>,
    pub reloads: mpsc::Sender<ReloadRequest>,
    /// The Telegram monitor's latest diagnosis, shown under `/readyz`.
    pub webhook: Arc<WebhookStatus>,
    /// What the status page (`/`, `/status.json`) is made of.
    pub status: Arc<status::Sources>,
    /// The current config, whose `[admin] token_file` is the bearer token
    /// required on all but `/healthz`. Read per request, so a reload that
    /// rotates, adds or removes the token applies to the next request.
    pub state: StateHandle,
    /// The spool as the daemon has it, for `/spool`, `/readyz` and `/metrics`.
    pub spool: Arc<ArcSwap<Health>>,
}

/// Admin connections served at once. The admin listener shares the process's
/// descriptors with the proxy: without a cap, connections that send nothing
/// took them all and the proxy could not accept. Operators' tools need a few.
const MAX_CONNECTIONS: usize = 64;

/// Serves the admin endpoints on `listener` until the process exits.
///
/// A connection beyond [`MAX_CONNECTIONS`] is closed as soon as it is
/// accepted. Each request head must arrive within `[limits] header_timeout`
/// (the config's at accept) of the connection opening or of the previous
/// response, so this bounds idle keep-alive connections and slow heads alike;
/// the connection is then closed without an answer.
pub fn spawn(listener: TcpListener, admin: Arc<Admin>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        // Say so once each time the cap is reached, not once per connection.
        let mut full = false;
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                if !full {
                    tracing::warn!(%peer, "{MAX_CONNECTIONS} admin connections open; closing new ones until one ends");
                }
                full = true;
                continue;
            };
            full = false;
            let Ok(local) = stream.local_addr() else { continue };
            let header_timeout = admin.state.load().config.limits.header_timeout;
            let admin = admin.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(admin.clone(), local.ip(), req));
                let _ = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                drop(slot);
            });
        }
    });
}

/// Answers one request that came in on the local address `local`: the gate
/// first, then the endpoint.
async fn handle(admin: Arc<Admin>, local: IpAddr, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let state = admin.state.load();
    if let Err(refusal) = gate::admit(&req, local, state.config.admin_token.as_ref()) {
        if refusal == Refusal::Unauthorized
            && req.method() == Method::POST
            && req.uri().path() == "/reload"
            && let Some(token) = gate::presented_token(req.headers())
        {
            return Ok(reload(&admin, Some(token.to_vec())).await);
        }
        return Ok(refused(refusal));
    }
    let path = req.uri().path();
    // HEAD is GET without the body (RFC 9110 §9.3.2); hyper leaves the body out.
    let method = if req.method() == Method::HEAD { &Method::GET } else { req.method() };
    let response = match (method, path) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n".to_string()),
        (&Method::GET, "/") => {
            let page = status::render(&admin.status.snapshot());
            typed(StatusCode::OK, page, "text/html; charset=utf-8")
        }
        (&Method::GET, "/status.json") => {
            let json = serde_json::to_string_pretty(&admin.status.snapshot()).unwrap_or_default();
            typed(StatusCode::OK, json, "application/json")
        }
        (&Method::GET, "/readyz") => {
            let (status, phase) = match admin.readiness.get() {
                Phase::Serving => (StatusCode::OK, "ready"),
                Phase::Starting => (StatusCode::SERVICE_UNAVAILABLE, "starting"),
                Phase::Draining => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
            };
            // A broken webhook is a detail, not a reason to stop serving everything else.
            let detail = admin.webhook.get().map(|d| format!("telegram webhook: {d}\n")).unwrap_or_default();
            let repair = admin.webhook.last_repair().map(|r| format!("{REPAIR_LINE}{r}\n")).unwrap_or_default();
            text(status, format!("{phase}\n{detail}{repair}{}", spool::readyz_line(&admin)))
        }
        (&Method::GET, "/metrics") => {
            spool::refresh_metrics(&admin);
            let mut r = text(StatusCode::OK, admin.metrics.render().unwrap_or_default());
            r.headers_mut().insert(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8".parse().unwrap());
            r
        }
        (&Method::POST, "/reload") => reload(&admin, None).await,
        (_, "/reload") => not_allowed("POST"),
        (_, "/" | "/status.json" | "/healthz" | "/readyz" | "/metrics") => not_allowed("GET, HEAD"),
        (method, path) if spool::is_spool_path(path) => spool::answer(&admin, method, path, req.uri().query()).await,
        _ => text(StatusCode::NOT_FOUND, "not found\n".to_string()),
    };
    Ok(response)
}

/// The gate's answer to a refused request.
fn refused(refusal: Refusal) -> Response<Full<Bytes>> {
    let mut refused = text(refusal.status(), refusal.message().to_string());
    if refusal == Refusal::Unauthorized {
        refused.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    }
    refused
}

/// `POST /reload`: asks the daemon to reload and answers with the outcome.
/// `new_token` is a bearer token the running config refused (see `ReloadRequest`).
async fn reload(admin: &Admin, new_token: Option<Vec<u8>>) -> Response<Full<Bytes>> {
    let (reply, outcome) = oneshot::channel();
    if admin.reloads.send(ReloadRequest { reply, new_token }).await.is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".to_string());
    }
    match outcome.await {
        Ok(Ok(summary)) => text(StatusCode::OK, format!("{summary}\n")),
        Ok(Err(crate::status::ReloadError::Unauthorized)) => refused(Refusal::Unauthorized),
        Ok(Err(error)) => text(StatusCode::UNPROCESSABLE_ENTITY, format!("{error}\n")),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".to_string()),
    }
}

/// Whether `config` may serve the admin listener bound to `bound`: one off
/// loopback needs a token. `[admin] addr` is checked when the file is read, but
/// the listener keeps the address it was started with (a systemd socket, or an
/// address a reload changed), so this checks the address actually bound. A
/// reload that removes the token from a loopback listener opens it, which is
/// allowed and logged.
pub fn check_token(
    bound: Option<SocketAddr>,
    old: Option<&Config>,
    new: &Config,
    file: &Path,
) -> Result<(), ConfigError> {
    let Some(bound) = bound else { return Ok(()) };
    let had = old.is_some_and(|old| old.admin_token.is_some());
    match &new.admin_token {
        None if !bound.ip().to_canonical().is_loopback() => Err(ConfigError {
            file: file.display().to_string(),
            problems: vec![Problem {
                line: None,
                path: "admin.token_file".to_string(),
                message: format!(
                    "the admin listener on {bound} is not on loopback, so it needs a token; it keeps that address \
                     until a restart"
                ),
            }],
        }),
        None if had => {
            tracing::warn!(addr = %bound, "[admin] token_file removed: the admin endpoints no longer need a token");
            Ok(())
        }
        Some(_) if old.is_some() && !had => {
            tracing::info!("[admin] token_file added: the admin endpoints now need its token");
            Ok(())
        }
        _ => Ok(()),
    }
}

/// 405 with the `Allow` the RFC requires on it (RFC 9110 §15.5.6).
fn not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n".to_string());
    response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allow));
    response
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    typed(status, body, "text/plain; charset=utf-8")
}

fn typed(status: StatusCode, body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

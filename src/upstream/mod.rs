//! Upstreams: one pooled hyper client per upstream (for https upstreams, and
//! HTTP/2 to them, and for the spool's deliverer), and `pool`, the per-worker
//! pools of plain HTTP/1.1 connections the engine drives itself (for HTTP/1.1
//! and HTTP/2 clients alike).
//!
//! Clients are built once per config load and reused by every request, so
//! connections stay pooled and warm. Failures are classified here into the
//! `ProxyError` kinds: connect failures are 502, no head in time is 504, and a
//! client body that broke the upload keeps its own (client-side) kind.

pub mod pool;

use std::error::Error as StdError;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::{Upstream, UpstreamTls};
use crate::error::ProxyError;
use crate::hyper_glue::{BodyError, RequestBody};
use crate::metrics::UpstreamMetrics;

#[derive(Clone)]
pub struct UpstreamClient {
    pub config: Upstream,
    transport: Transport,
    pub metrics: UpstreamMetrics,
}

/// Plain upstreams skip the TLS layer entirely.
#[derive(Clone)]
enum Transport {
    Plain(Client<HttpConnector, RequestBody>),
    Tls(Client<HttpsConnector<HttpConnector>, RequestBody>),
}

impl UpstreamClient {
    pub fn new(config: Upstream, metrics: UpstreamMetrics) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let mut builder = Client::builder(TokioExecutor::new());
        // The pool rules of the engine's own pools (`pool`), as far as hyper's pool
        // has them: `max_idle` (per upstream here, per worker there) and
        // `idle_timeout`. An upstream's `Keep-Alive: timeout=N` it does not read.
        builder
            .pool_max_idle_per_host(config.max_idle)
            .pool_idle_timeout(config.idle_timeout)
            .pool_timer(TokioTimer::new())
            .set_host(false);
        let transport = match &config.tls {
            Some(tls) => {
                connector.enforce_http(false);
                Transport::Tls(builder.build(tls_connector(tls, connector)))
            }
            None => Transport::Plain(builder.build(connector)),
        };
        UpstreamClient { config, transport, metrics }
    }

    /// Sends `req` and waits up to `response_timeout` for the response head.
    /// An idempotent request without a body that the upstream closed the
    /// connection on unanswered (it closed a pooled connection as the request
    /// went out) is sent once more, as the engine does (`http1::forward::Retry`).
    pub async fn send(&self, req: Request<RequestBody>) -> Result<Response<Incoming>, ProxyError> {
        let again = retry_copy(&req);
        let error = match (self.attempt(req).await, again) {
            (Ok(response), _) => return Ok(response),
            (Err(Failed::Hyper(e)), Some(parts)) if closed_unanswered(&e) => {
                tracing::debug!(upstream = %self.config.name, "closed unanswered, sent again: {}", crate::error::chain(&e));
                match self.attempt(Request::from_parts(parts, RequestBody::whole(Bytes::new()))).await {
                    Ok(response) => return Ok(response),
                    Err(error) => error,
                }
            }
            (Err(error), _) => error,
        };
        Err(self.failed(error))
    }

    /// One try: the response head, or why none came in `response_timeout`.
    async fn attempt(&self, req: Request<RequestBody>) -> Result<Response<Incoming>, Failed> {
        let sent = async {
            match &self.transport {
                Transport::Plain(client) => client.request(req).await,
                Transport::Tls(client) => client.request(req).await,
            }
        };
        match tokio::time::timeout(self.config.response_timeout, sent).await {
            Ok(Ok(response)) => {
                self.metrics.recent.answered();
                Ok(response)
            }
            Ok(Err(e)) => Err(Failed::Hyper(e)),
            Err(_) => Err(Failed::Timeout),
        }
    }

    /// The answer to a failed request, with the metrics and the log told.
    fn failed(&self, failed: Failed) -> ProxyError {
        let (error, why) = match failed {
            Failed::Hyper(e) => {
                let why = crate::error::chain(&e);
                tracing::debug!(upstream = %self.config.name, "request failed: {why}");
                (classify(&e), why)
            }
            Failed::Timeout => (ProxyError::UpstreamTimeout, String::new()),
        };
        match error {
            // The reason goes to the status page as it is (an unknown CA, a refused connection).
            ProxyError::UpstreamUnreachable => {
                let news = self.metrics.connect_failed(&why);
                if self.config.tls.is_some() && news {
                    // TLS failures (unknown CA, wrong name) are connect errors; say which, once per news.
                    tracing::warn!(upstream = %self.config.name, "cannot connect over TLS: {why}");
                }
            }
            ProxyError::UpstreamTimeout => self.metrics.timed_out(self.config.response_timeout),
            _ => {}
        }
        error
    }
}

/// Why hyper's client gave no response head.
enum Failed {
    Hyper(hyper_util::client::legacy::Error),
    Timeout,
}

/// The head of `req` to send again, when it may be: an idempotent method
/// and no body (so all of it went out with the head, and nothing of it is
/// consumed by the first try).
fn retry_copy(req: &Request<RequestBody>) -> Option<http::request::Parts> {
    let idempotent = [Method::GET, Method::HEAD, Method::OPTIONS, Method::PUT, Method::DELETE, Method::TRACE];
    if !idempotent.contains(req.method()) || !req.body().is_end_stream() {
        return None;
    }
    let mut parts = Request::new(()).into_parts().0;
    parts.method = req.method().clone();
    parts.uri = req.uri().clone();
    parts.version = req.version();
    parts.headers = req.headers().clone();
    Some(parts)
}

/// Whether the upstream closed the connection before any response to the
/// request (hyper's "incomplete message"), rather than refusing it or
/// answering badly.
fn closed_unanswered(error: &hyper_util::client::legacy::Error) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(e) = source {
        if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
            return hyper.is_incomplete_message();
        }
        source = e.source();
    }
    false
}

/// The TLS connector for an https upstream, built from its validated settings.
fn tls_connector(tls: &UpstreamTls, http: HttpConnector) -> HttpsConnector<HttpConnector> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*tls.client_config).clone())
        .https_only()
        .with_server_name_resolver(FixedServerNameResolver::new(tls.server_name.clone()))
        .enable_http1();
    if tls.http2 { builder.enable_http2().wrap_connector(http) } else { builder.wrap_connector(http) }
}

/// Maps a client error to who is at fault.
fn classify(error: &hyper_util::client::legacy::Error) -> ProxyError {
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(e) = source {
        if let Some(body) = e.downcast_ref::<BodyError>() {
            return body.proxy_error();
        }
        source = e.source();
    }
    if error.is_connect() {
        return ProxyError::UpstreamUnreachable;
    }
    ProxyError::UpstreamBroken
}

//! Upstreams: one pooled hyper client per upstream (for HTTP/2 clients, https
//! upstreams and HTTP/2 to upstreams), and `pool`, the per-worker pools of
//! plain HTTP/1.1 connections the engine drives itself.
//!
//! Clients are built once per config load and reused by every request, so
//! connections stay pooled and warm. Failures are classified here into the
//! `ProxyError` kinds: connect failures are 502, no head in time is 504, and a
//! client body that broke the upload keeps its own (client-side) kind.

pub mod pool;

use std::error::Error as StdError;

use http::{Request, Response};
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
    pub async fn send(&self, req: Request<RequestBody>) -> Result<Response<Incoming>, ProxyError> {
        let sent = async {
            match &self.transport {
                Transport::Plain(client) => client.request(req).await,
                Transport::Tls(client) => client.request(req).await,
            }
        };
        let error = match tokio::time::timeout(self.config.response_timeout, sent).await {
            Ok(Ok(response)) => {
                self.metrics.recent.answered();
                return Ok(response);
            }
            Ok(Err(e)) => {
                let kind = classify(&e);
                tracing::debug!(upstream = %self.config.name, "request failed: {}", crate::error::chain(&e));
                if self.config.tls.is_some() && kind == ProxyError::UpstreamUnreachable {
                    // TLS failures (unknown CA, wrong name) are connect errors; say which.
                    tracing::warn!(upstream = %self.config.name, "cannot connect over TLS: {}", crate::error::chain(&e));
                }
                kind
            }
            Err(_) => ProxyError::UpstreamTimeout,
        };
        match error {
            ProxyError::UpstreamUnreachable => self.metrics.connect_failed("the connection failed"),
            ProxyError::UpstreamTimeout => self.metrics.timed_out(self.config.response_timeout),
            _ => {}
        }
        Err(error)
    }
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

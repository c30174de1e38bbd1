//! One pooled HTTP client per upstream, with its timeouts.
//!
//! Clients are built once per config load and reused by every request, so
//! connections stay pooled and warm. Failures are classified here into the
//! `ProxyError` kinds: connect failures are 502, no head in time is 504, and a
//! client body that broke the upload keeps its own (client-side) kind.

use std::error::Error as StdError;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::Upstream;
use crate::error::ProxyError;
use crate::metrics::UpstreamMetrics;
use crate::proxy::body::{BodyError, RequestBody};

/// How long an unused pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

pub struct UpstreamClient {
    pub config: Upstream,
    client: Client<HttpConnector, RequestBody>,
    metrics: UpstreamMetrics,
}

impl UpstreamClient {
    pub fn new(config: Upstream, metrics: UpstreamMetrics) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .set_host(false)
            .build(connector);
        UpstreamClient { config, client, metrics }
    }

    /// Sends `req` and waits up to `response_timeout` for the response head.
    pub async fn send(&self, req: Request<RequestBody>) -> Result<Response<Incoming>, ProxyError> {
        let error = match tokio::time::timeout(self.config.response_timeout, self.client.request(req)).await {
            Ok(Ok(response)) => return Ok(response),
            Ok(Err(e)) => classify(&e),
            Err(_) => ProxyError::UpstreamTimeout,
        };
        match error {
            ProxyError::UpstreamUnreachable => self.metrics.connect_errors.increment(1),
            ProxyError::UpstreamTimeout => self.metrics.timeouts.increment(1),
            _ => {}
        }
        Err(error)
    }
}

/// Maps a client error to who is at fault.
fn classify(error: &hyper_util::client::legacy::Error) -> ProxyError {
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(e) = source {
        if let Some(body) = e.downcast_ref::<BodyError>() {
            return match body {
                BodyError::TooLarge(_) => ProxyError::BodyTooLarge,
                BodyError::Timeout(_) => ProxyError::BodyTimeout,
                BodyError::Read(_) => ProxyError::ClientAborted,
            };
        }
        source = e.source();
    }
    if error.is_connect() {
        return ProxyError::UpstreamUnreachable;
    }
    ProxyError::UpstreamBroken
}

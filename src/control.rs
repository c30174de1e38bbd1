//! Talking to a running daemon: what `hookgate reload` sends to `[admin] addr`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// How long to wait for the daemon to answer a reload (it re-reads and binds).
const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Asks the daemon at `admin` to reload. Returns whether it succeeded and what
/// the daemon said.
pub async fn request_reload(admin: SocketAddr) -> anyhow::Result<(bool, String)> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::builder().method(Method::POST).uri(format!("http://{admin}/reload")).body(Empty::new())?;
    let exchange = async {
        let response = client.request(request).await?;
        let ok = response.status().is_success();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((ok, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(RELOAD_TIMEOUT, exchange)
        .await
        .context("the daemon did not answer the reload in time")?
        .with_context(|| format!("cannot reach the daemon's admin endpoint at {admin}; is it running?"))
}

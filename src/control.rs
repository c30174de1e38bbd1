//! Talking to a running daemon through `[admin] addr`: what `hookgate reload`
//! sends, and the `/readyz` text `hookgate telegram info` reads.

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

/// How long `/healthz` and `/readyz` may take.
const READYZ_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks the daemon at `admin` to reload. Returns whether it succeeded and what
/// the daemon said.
pub async fn request_reload(admin: SocketAddr) -> anyhow::Result<(bool, String)> {
    call(admin, Method::POST, "/reload", RELOAD_TIMEOUT).await
}

/// Whether the daemon at `admin` answers `/healthz` with 200.
pub async fn healthz(admin: SocketAddr) -> anyhow::Result<bool> {
    call(admin, Method::GET, "/healthz", READYZ_TIMEOUT).await.map(|(ok, _)| ok)
}

/// The daemon's `/readyz` text (its phase and the Telegram monitor's lines).
pub async fn readyz(admin: SocketAddr) -> anyhow::Result<String> {
    call(admin, Method::GET, "/readyz", READYZ_TIMEOUT).await.map(|(_, text)| text)
}

/// One request to the admin listener: whether it answered 2xx, and its body.
async fn call(admin: SocketAddr, method: Method, path: &str, limit: Duration) -> anyhow::Result<(bool, String)> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::builder().method(method).uri(format!("http://{admin}{path}")).body(Empty::new())?;
    let exchange = async {
        let response = client.request(request).await?;
        let ok = response.status().is_success();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((ok, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(limit, exchange)
        .await
        .with_context(|| format!("the daemon did not answer {path} within {limit:?}"))?
        .with_context(|| format!("cannot reach the daemon's admin endpoint at {admin}; is it running?"))
}

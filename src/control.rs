//! Talking to a running daemon through `[admin] addr` (with `[admin]
//! token_file`'s token when set): what `hookgate reload` sends, the `/readyz`
//! text `hookgate telegram info` reads, `/healthz` for `hookgate health`,
//! `/status.json` for `hookgate status`, and the `/spool` endpoints for
//! `hookgate spool`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::secret::Secret;

/// How long to wait for the daemon to answer a reload (it re-reads and binds).
const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `/healthz` and `/readyz` may take.
const READYZ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a `/spool` request may take (a retry of every dead letter
/// commits one change per letter).
const SPOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// Asks the daemon at `admin` to reload. Returns whether it succeeded and what
/// the daemon said.
pub async fn request_reload(admin: SocketAddr, token: Option<&Secret>) -> anyhow::Result<(bool, String)> {
    call(admin, token, Method::POST, "/reload", RELOAD_TIMEOUT).await
}

/// Whether the daemon at `admin` answers `/healthz` with 200.
pub async fn healthz(admin: SocketAddr) -> anyhow::Result<bool> {
    call(admin, None, Method::GET, "/healthz", READYZ_TIMEOUT).await.map(|(ok, _)| ok)
}

/// The daemon's `/readyz` text (its phase and the Telegram monitor's lines).
pub async fn readyz(admin: SocketAddr, token: Option<&Secret>) -> anyhow::Result<String> {
    call(admin, token, Method::GET, "/readyz", READYZ_TIMEOUT).await.map(|(_, text)| text)
}

/// The daemon's `/status.json`, parsed.
pub async fn status(admin: SocketAddr, token: Option<&Secret>) -> anyhow::Result<serde_json::Value> {
    let (ok, text) = call(admin, token, Method::GET, "/status.json", READYZ_TIMEOUT).await?;
    anyhow::ensure!(ok, "the daemon refused /status.json: {}", text.trim());
    serde_json::from_str(&text).context("the daemon's /status.json is not JSON")
}

/// One request to the spool's endpoints (`path` with its query): the
/// status the daemon answered and its body. An error for which
/// [`refused_connection`] holds means that nothing listens at `admin`.
pub async fn spool(
    admin: SocketAddr,
    token: Option<&Secret>,
    method: Method,
    path: &str,
) -> anyhow::Result<(u16, String)> {
    exchange(admin, token, method, path, SPOOL_TIMEOUT).await
}

/// Whether `error` (from this module) says that `admin` refused the
/// connection: nothing listens there, so no daemon runs behind this config.
pub fn refused_connection(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    })
}

/// One request to the admin listener: whether it answered 2xx, and its body.
async fn call(
    admin: SocketAddr,
    token: Option<&Secret>,
    method: Method,
    path: &str,
    limit: Duration,
) -> anyhow::Result<(bool, String)> {
    let (status, body) = exchange(admin, token, method, path, limit).await?;
    Ok(((200..300).contains(&status), body))
}

/// One request to the admin listener: its status and its body.
async fn exchange(
    admin: SocketAddr,
    token: Option<&Secret>,
    method: Method,
    path: &str,
    limit: Duration,
) -> anyhow::Result<(u16, String)> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::builder().method(method).uri(format!("http://{admin}{path}"));
    if let Some(token) = token {
        let mut value = b"Bearer ".to_vec();
        value.extend_from_slice(token.expose());
        request = request.header(http::header::AUTHORIZATION, value);
    }
    let request = request.body(Empty::new())?;
    let exchange = async {
        let response = client.request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(limit, exchange)
        .await
        .with_context(|| format!("the daemon did not answer {path} within {limit:?}"))?
        .with_context(|| {
            format!(
                "cannot reach the daemon's admin endpoint at {admin} (the file's [admin] addr); is it running? \
                 (A daemon started before [admin] addr was changed still listens on the old one: send it SIGHUP.)"
            )
        })
}

//! A fake XBoard backend for the Telegram webhook, for `telegram_sim`'s
//! scenarios: it checks the `access_token`, records every update it handled
//! and can be stopped, started again on its port and made slow.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// A fake XBoard backend for the webhook: answers an empty 200 when the
/// `access_token` is right, and records every update it handled (chat and
/// `update_id`, in order). It can be stopped and started on the same port,
/// and told to be slow for chosen updates.
#[derive(Clone)]
pub struct WebhookBackend {
    pub addr: SocketAddr,
    access_token: String,
    handled: Arc<Mutex<Vec<(i64, i64)>>>,
    slow: Arc<Mutex<HashMap<i64, Duration>>>,
    server: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl WebhookBackend {
    /// On a port below the ephemeral range (`free_port`): while it is
    /// stopped, no other test's server or connection can take its port.
    pub async fn start(access_token: &str) -> WebhookBackend {
        // `free_port` saw the port free, but another process may take it before this bind (CI saw
        // AddrInUse once): a few ports are tried.
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", super::free_port())).await {
                Ok(listener) => break listener,
                Err(_) if tries < 5 => tries += 1,
                Err(e) => panic!("no port for the webhook backend: {e}"),
            }
        };
        let backend = WebhookBackend {
            addr: listener.local_addr().unwrap(),
            access_token: access_token.to_string(),
            handled: Arc::default(),
            slow: Arc::default(),
            server: Arc::default(),
        };
        backend.serve(listener);
        backend
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let backend = self.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let backend = backend.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| backend.clone().handle(req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        *self.server.lock().unwrap() = Some(task);
    }

    async fn handle(self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let ok = req.uri().query() == Some(&format!("access_token={}", self.access_token));
        let body = req.into_body().collect().await.unwrap().to_bytes();
        if !ok {
            let mut refused = Response::new(Full::new(Bytes::new()));
            *refused.status_mut() = StatusCode::FORBIDDEN;
            return Ok(refused);
        }
        let update: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
        let id = update["update_id"].as_i64().unwrap_or(-1);
        let chat = update["message"]["chat"]["id"].as_i64().unwrap_or(-1);
        // Handled first (XBoard's work is done), then maybe slow to answer.
        self.handled.lock().unwrap().push((chat, id));
        let delay = self.slow.lock().unwrap().remove(&id);
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        Ok(Response::new(Full::new(Bytes::new())))
    }

    /// Refuses connections until `start_again` (aborts every open connection).
    pub fn stop(&self) {
        if let Some(task) = self.server.lock().unwrap().take() {
            task.abort();
        }
    }

    pub async fn start_again(&self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    /// Answers update `id` only `delay` after handling it, the first time.
    pub fn slow_for(&self, id: i64, delay: Duration) {
        self.slow.lock().unwrap().insert(id, delay);
    }

    /// Every update handled, in order: (chat, update_id).
    pub fn handled(&self) -> Vec<(i64, i64)> {
        self.handled.lock().unwrap().clone()
    }
}

//! Webhook senders and a backend for the store-and-forward tests (issue 30),
//! each keeping the record a test scores: what the sender was answered, and
//! what the backend handled.
//!
//! - `Backend`: an XBoard-like backend (plain or TLS) that can be taken down
//!   (its port refuses connections, open ones are cut) and brought up again
//!   on the same port, made slow, and that records every request it handled.
//! - `PaymentGateway`: an EPay-style notify sender that retries a few times
//!   with short waits, reads the body `success` as the acknowledgement, and
//!   then gives up.
//! - `post`: one POST with a deadline, for senders a test writes itself.
//! - `Rng`: a small seeded generator, so a run's random moments can be replayed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// One request as the backend handled it.
#[derive(Debug, Clone)]
pub struct Got {
    /// When it was handled.
    pub at: std::time::Instant,
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A backend that answers `answer` with 200 while it is up; or another
/// status, for every request (`answer_status`) or for one whose form body
/// asks for it (`status=404`).
#[derive(Clone)]
pub struct Backend {
    pub addr: SocketAddr,
    answer: &'static str,
    tls: Option<tokio_rustls::TlsAcceptor>,
    got: Arc<Mutex<Vec<Got>>>,
    /// How long it takes to answer after handling a request.
    slow: Arc<Mutex<Duration>>,
    /// The status of every answer, and its `Retry-After` seconds.
    status: Arc<Mutex<(u16, Option<u32>)>>,
    server: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// Connections being served, each counted until its task is dropped.
    open: Arc<std::sync::atomic::AtomicUsize>,
}

/// One connection the backend serves, counted in `Backend::open` while its
/// task lives (an aborted task is dropped a moment after `abort` returns).
struct Serving(Arc<std::sync::atomic::AtomicUsize>);

impl Serving {
    fn new(open: &Arc<std::sync::atomic::AtomicUsize>) -> Serving {
        open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Serving(open.clone())
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Backend {
    /// Up, plain HTTP.
    pub async fn start(answer: &'static str) -> Backend {
        let backend = Backend::start_down(answer).await;
        backend.up().await;
        backend
    }

    /// Down from the start: its port is chosen, but nothing listens on it
    /// yet. The port is below the ephemeral range (`free_port`), so no
    /// connection takes it as its own local port while the backend is down.
    pub async fn start_down(answer: &'static str) -> Backend {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], super::free_port()));
        let status = Arc::new(Mutex::new((200, None)));
        let (got, slow, server, open) = Default::default();
        Backend { addr, answer, tls: None, got, slow, status, server, open }
    }

    /// Down from the start, serving TLS with `acceptor` once up.
    pub async fn start_tls_down(answer: &'static str, acceptor: tokio_rustls::TlsAcceptor) -> Backend {
        Backend { tls: Some(acceptor), ..Backend::start_down(answer).await }
    }

    /// Listens again on its port.
    pub async fn up(&self) {
        if self.is_up() {
            return;
        }
        let mut bound = tokio::net::TcpListener::bind(self.addr).await;
        for _ in 0..50 {
            if bound.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            bound = tokio::net::TcpListener::bind(self.addr).await;
        }
        let listener = bound.unwrap_or_else(|e| panic!("cannot listen on {} again: {e}", self.addr));
        let backend = self.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let backend = backend.clone();
                let serving = Serving::new(&backend.open);
                connections.spawn(async move {
                    let _serving = serving;
                    let tls = backend.tls.clone();
                    let service = service_fn(move |req| backend.clone().handle(req));
                    let http1 = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http1.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(stream).await else { return };
                            let _ = http1.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        *self.server.lock().unwrap() = Some(task);
    }

    /// Stops listening and cuts every open connection: new connections are
    /// refused, and a request being answered gets no answer.
    /// Returns once the listener and every connection are gone (within 2 s):
    /// an abort only asks, so a pooled connection could otherwise still be
    /// answered on for a moment.
    pub fn down(&self) {
        if let Some(task) = self.server.lock().unwrap().take() {
            task.abort();
            let gone = || task.is_finished() && self.open.load(std::sync::atomic::Ordering::SeqCst) == 0;
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while !gone() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    pub fn is_up(&self) -> bool {
        self.server.lock().unwrap().is_some()
    }

    /// Answers every request with `status` (and `Retry-After`) from now on.
    pub fn answer_status(&self, status: u16, retry_after: Option<u32>) {
        *self.status.lock().unwrap() = (status, retry_after);
    }

    /// Answers `delay` after handling each request from now on.
    pub fn slow(&self, delay: Duration) {
        *self.slow.lock().unwrap() = delay;
    }

    async fn handle(self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let target = req.uri().path_and_query().map_or(String::new(), |p| p.to_string());
        let (parts, body) = req.into_parts();
        let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
            let mut broken = Response::new(Full::new(Bytes::new()));
            *broken.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(broken);
        };
        // The answer is decided as the request is recorded: a test that saw
        // it arrive and then changes `answer_status` changes the next answer only.
        let (mut status, retry_after) = *self.status.lock().unwrap();
        // Handled first (the backend's work is done), then maybe slow to answer.
        let at = std::time::Instant::now();
        self.got.lock().unwrap().push(Got { at, target, headers: parts.headers, body: body.clone() });
        let delay = *self.slow.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(asked) = form_field(&body, "status").and_then(|s| s.parse().ok()) {
            status = asked;
        }
        let mut response = Response::new(Full::new(Bytes::from_static(self.answer.as_bytes())));
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert("retry-after", seconds.into());
        }
        Ok(response)
    }

    /// Every request handled, in order.
    pub fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// How many times each value of the form field `name` was handled.
    pub fn counts(&self, name: &str) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for got in self.got.lock().unwrap().iter() {
            if let Some(value) = form_field(&got.body, name) {
                *counts.entry(value).or_default() += 1;
            }
        }
        counts
    }
}

/// The value of `name` in a form body (`a=1&b=2`), as it is written.
pub fn form_field(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.to_string())
    })
}

/// An HTTP/1 client for senders: pooled connections, which a daemon killed
/// under them turns into failed requests (as it would for a real sender).
pub fn sender_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(5)).build_http()
}

/// What a POST was answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// POSTs `body` to `http://{target}{path}` and reads the whole answer
/// within `timeout`. `Err`: no whole answer (refused, cut or too slow).
pub async fn post(
    client: &Client<HttpConnector, Full<Bytes>>,
    target: SocketAddr,
    path: &str,
    content_type: &str,
    body: String,
    timeout: Duration,
) -> Result<Answer, String> {
    let request = Request::post(format!("http://{target}{path}"))
        .header("host", "www.example.com")
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let exchange = async {
        let response = client.request(request).await.map_err(|e| format!("request failed: {e}"))?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| format!("answer cut: {e}"))?.to_bytes();
        Ok(Answer { status: parts.status.as_u16(), headers: parts.headers, body })
    };
    tokio::time::timeout(timeout, exchange).await.unwrap_or_else(|_| Err("no answer in time".to_string()))
}

/// A payment gateway's notify sender: each notify is sent once, then
/// retried `retries` times `wait` apart, until an answer is 200 with the
/// body `success`; after that it gives up (the order stays unpaid).
#[derive(Clone, Copy)]
pub struct PaymentGateway {
    pub retries: u32,
    pub wait: Duration,
    /// How long it waits for an answer.
    pub timeout: Duration,
}

/// One notify's fate, as the gateway saw it.
#[derive(Debug, Clone)]
pub struct Notify {
    /// The order number (`out_trade_no`).
    pub order: String,
    /// Each attempt's answer: its status (0: none) and body.
    pub answers: Vec<(u16, String)>,
    pub acknowledged: bool,
}

/// The path XBoard serves EPay's notifies on.
pub const NOTIFY_PATH: &str = "/api/v1/guest/payment/notify/EPay/5d9e7c1a";

impl PaymentGateway {
    /// Sends `count` notifies to `target`, the next `pace` after the previous
    /// one started (each one's retries run beside the next ones).
    pub async fn notify_all(self, target: SocketAddr, count: usize, pace: Duration) -> Vec<Notify> {
        let client = sender_client();
        let mut notifies = Vec::new();
        for n in 0..count {
            let client = client.clone();
            notifies.push(tokio::spawn(async move { self.notify(&client, target, &format!("2026{n:06}")).await }));
            tokio::time::sleep(pace).await;
        }
        let mut fates = Vec::new();
        for notify in notifies {
            fates.push(notify.await.unwrap());
        }
        fates
    }

    async fn notify(self, client: &Client<HttpConnector, Full<Bytes>>, target: SocketAddr, order: &str) -> Notify {
        let body = format!(
            "money=10.00&name=plan&out_trade_no={order}&pid=1001&trade_no=T{order}&trade_status=TRADE_SUCCESS\
             &type=alipay&sign=0123456789abcdef0123456789abcdef&sign_type=MD5"
        );
        let mut fate = Notify { order: order.to_string(), answers: Vec::new(), acknowledged: false };
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(self.wait).await;
            }
            let form = "application/x-www-form-urlencoded";
            match post(client, target, NOTIFY_PATH, form, body.clone(), self.timeout).await {
                Ok(answer) => {
                    let text = String::from_utf8_lossy(&answer.body).into_owned();
                    fate.acknowledged = answer.status == 200 && text.trim() == "success";
                    fate.answers.push((answer.status, text));
                }
                Err(why) => fate.answers.push((0, why)),
            }
            if fate.acknowledged {
                break;
            }
        }
        fate
    }
}

/// A small seeded generator (xorshift64*): the same seed, the same moments.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A duration between `low` and `high`.
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let spread = high.saturating_sub(low).as_millis() as u64;
        low + Duration::from_millis(if spread == 0 { 0 } else { self.next_u64() % spread })
    }
}

/// The number of kept requests in the spool file at `path` (waiting and
/// dead), read beside the daemon (read-only; WAL lets it).
pub fn spool_rows(path: &std::path::Path) -> i64 {
    let conn = read_only(path);
    conn.query_row("SELECT COUNT(*) FROM requests", [], |row| row.get(0)).unwrap()
}

/// One kept request as the spool file holds it.
#[derive(Debug, Clone)]
pub struct Kept {
    pub id: i64,
    pub dead: bool,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: String,
    /// The start of the last answer's body, as text.
    pub last_answer: String,
    /// The start of the body, as text.
    pub body: String,
}

/// Each kept request in the spool file at `path`, oldest first.
pub fn spool_contents(path: &std::path::Path) -> Vec<Kept> {
    let conn = read_only(path);
    let sql = "SELECT id, dead, attempts, last_status, last_error, last_answer, body FROM requests ORDER BY id";
    let mut select = conn.prepare(sql).unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes[..bytes.len().min(60)]).into_owned();
    let rows = select.query_map([], |row| {
        Ok(Kept {
            id: row.get(0)?,
            dead: row.get(1)?,
            attempts: row.get(2)?,
            last_status: row.get(3)?,
            last_error: row.get(4)?,
            last_answer: text(row.get(5)?),
            body: text(row.get(6)?),
        })
    });
    rows.unwrap().map(Result::unwrap).collect()
}

fn read_only(path: &std::path::Path) -> rusqlite::Connection {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    rusqlite::Connection::open_with_flags(path, flags).unwrap()
}

//! Telegram on loopback, with its timings scaled down: a fake Bot API
//! (`setWebhook`, `getWebhookInfo`, `deleteWebhook`) and a sender that
//! delivers updates the way the Bot API server's `WebhookActor` does.
//!
//! The sender keeps one queue per chat with one update in flight per chat.
//! A non-2xx answer, a dropped connection or no answer within
//! `answer_timeout` is a failure: the first retry is immediate, then the
//! delay doubles from `first_backoff` up to a random delay in `max_backoff`;
//! `Retry-After` is honoured (scaled like the rest). An update is dropped when
//! its next retry would pass its expiry. Updates go to the URL last
//! registered through `setWebhook`, with the secret registered with it
//! (`url` only clears the secret, as XBoard's button does). Failures show in
//! `getWebhookInfo` as Telegram reports them. Every update's fate is recorded
//! and scored against what the backend (`webhook_backend`) handled.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};

/// The sender's timings; Telegram's real ones divided by about 100.
#[derive(Clone, Copy)]
pub struct Timings {
    /// Telegram waits 60 s for an answer.
    pub answer_timeout: Duration,
    /// The delay after the second failure; it doubles from there.
    pub first_backoff: Duration,
    /// Telegram's cap is a random 60–120 s.
    pub max_backoff: (Duration, Duration),
    /// About 24 h after the message was sent.
    pub expiry: Duration,
    /// `Retry-After` seconds are multiplied by this.
    pub retry_after_unit: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            answer_timeout: Duration::from_millis(600),
            first_backoff: Duration::from_millis(50),
            max_backoff: (Duration::from_millis(600), Duration::from_millis(1200)),
            expiry: Duration::from_secs(120),
            retry_after_unit: Duration::from_millis(10),
        }
    }
}

/// What happened to one update, as the sender saw it.
#[derive(Debug, Clone)]
pub struct Fate {
    pub chat: i64,
    pub update_id: i64,
    pub attempts: u32,
    /// From creation to the 2xx answer.
    pub delay: Option<Duration>,
    pub dropped: bool,
}

#[derive(Default)]
struct Webhook {
    url: String,
    secret: Option<String>,
    last_error: Option<(u64, String)>,
    pending: u64,
    /// Every `setWebhook` call: when, and its parameters.
    set_calls: Vec<(Instant, Value)>,
    /// `getWebhookInfo` calls so far.
    info_calls: usize,
    /// Refuse `setWebhook` with 429 and this `retry_after` (seconds).
    rate_limited: Option<u64>,
    /// Failed delivery attempts so far, per chat.
    failures: HashMap<i64, u32>,
}

#[derive(Clone)]
pub struct TelegramSim {
    pub api_addr: SocketAddr,
    token: String,
    webhook: Arc<Mutex<Webhook>>,
}

impl TelegramSim {
    /// Starts the fake Bot API for `token`.
    pub async fn start(token: &str) -> TelegramSim {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim =
            TelegramSim { api_addr: listener.local_addr().unwrap(), token: token.to_string(), webhook: Arc::default() };
        let server = sim.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| server.clone().bot_api(req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        sim
    }

    async fn bot_api(self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let path = req.uri().path().to_string();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let params: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
        let mut webhook = self.webhook.lock().unwrap();
        let answer = match path.strip_prefix(&format!("/bot{}/", self.token)) {
            Some("setWebhook") if webhook.rate_limited.is_some() => {
                webhook.set_calls.push((Instant::now(), params.clone()));
                let retry_after = webhook.rate_limited;
                let description = "Too Many Requests: retry later";
                json!({"ok": false, "error_code": 429, "description": description, "parameters": {"retry_after": retry_after}})
            }
            Some("setWebhook") => {
                webhook.set_calls.push((Instant::now(), params.clone()));
                webhook.url = params["url"].as_str().unwrap_or_default().to_string();
                webhook.secret = params["secret_token"].as_str().map(str::to_string);
                webhook.last_error = None;
                json!({"ok": true, "result": true, "description": "Webhook was set"})
            }
            Some("getWebhookInfo") => {
                webhook.info_calls += 1;
                let mut info = json!({"url": webhook.url, "pending_update_count": webhook.pending});
                if let Some((date, message)) = &webhook.last_error {
                    info["last_error_date"] = json!(date);
                    info["last_error_message"] = json!(message);
                }
                json!({"ok": true, "result": info})
            }
            Some("deleteWebhook") => {
                webhook.url.clear();
                json!({"ok": true, "result": true, "description": "Webhook was deleted"})
            }
            _ => json!({"ok": false, "error_code": 404, "description": "Not Found"}),
        };
        let mut response = Response::new(Full::new(Bytes::from(answer.to_string())));
        if answer["ok"] != json!(true) {
            *response.status_mut() = StatusCode::NOT_FOUND;
        }
        Ok(response)
    }

    /// What XBoard's Set Webhook button sends: `setWebhook` with `url` only.
    pub async fn press_xboard_button(&self, url: &str) {
        let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let body = json!({ "url": url }).to_string();
        let request = Request::post(format!("http://{}/bot{}/setWebhook", self.api_addr, self.token))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert!(response.status().is_success());
    }

    /// From now on, `setWebhook` is refused with 429 and `retry_after` of `seconds`.
    pub fn rate_limit_set_webhook(&self, seconds: u64) {
        self.webhook.lock().unwrap().rate_limited = Some(seconds);
    }

    /// Every `setWebhook` call so far: when, and its parameters.
    pub fn set_calls(&self) -> Vec<(Instant, Value)> {
        self.webhook.lock().unwrap().set_calls.clone()
    }

    pub fn webhook_url(&self) -> String {
        self.webhook.lock().unwrap().url.clone()
    }

    /// `getWebhookInfo` calls so far: a daemon's monitor makes one per round.
    pub fn info_calls(&self) -> usize {
        self.webhook.lock().unwrap().info_calls
    }

    /// How many chats have had at least `min` failed delivery attempts.
    pub fn chats_failed(&self, min: u32) -> usize {
        self.webhook.lock().unwrap().failures.values().filter(|n| **n >= min).count()
    }

    /// Delivers `per_chat` updates in each of `chats` chats to `target` (where
    /// the webhook URL's host resolves), update `k` of a chat created at
    /// `k * pace`. Update ids start at `first_id` and are unique across chats.
    pub async fn deliver(
        &self,
        target: SocketAddr,
        chats: usize,
        per_chat: usize,
        pace: Duration,
        timings: Timings,
        first_id: i64,
    ) -> Vec<Fate> {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(5)).build_http();
        let start = Instant::now();
        let mut queues = Vec::new();
        for chat in 0..chats {
            let (sim, client) = (self.clone(), client.clone());
            queues.push(tokio::spawn(async move {
                let mut fates = Vec::new();
                for k in 0..per_chat {
                    let created = start + pace * k as u32;
                    tokio::time::sleep_until(created.into()).await;
                    let update_id = first_id + (k * chats + chat) as i64;
                    fates.push(sim.send_update(&client, target, chat as i64, update_id, created, timings).await);
                }
                fates
            }));
        }
        let mut fates = Vec::new();
        for queue in queues {
            fates.extend(queue.await.unwrap());
        }
        fates
    }

    /// One update through to a 2xx answer or its expiry.
    async fn send_update(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        target: SocketAddr,
        chat: i64,
        update_id: i64,
        created: Instant,
        timings: Timings,
    ) -> Fate {
        self.webhook.lock().unwrap().pending += 1;
        let body = json!({
            "update_id": update_id,
            "message": {"message_id": update_id, "date": unix_now(), "chat": {"id": chat, "type": "private"}, "text": "/start"}
        })
        .to_string();
        let mut fate = Fate { chat, update_id, attempts: 0, delay: None, dropped: false };
        let mut backoff = Duration::ZERO;
        loop {
            fate.attempts += 1;
            let outcome = self.attempt(client, target, &body, timings.answer_timeout).await;
            let retry_after = match outcome {
                Ok(()) => {
                    fate.delay = Some(created.elapsed());
                    break;
                }
                Err((message, retry_after)) => {
                    let mut webhook = self.webhook.lock().unwrap();
                    webhook.last_error = Some((unix_now(), message));
                    *webhook.failures.entry(chat).or_default() += 1;
                    retry_after
                }
            };
            // The first retry is immediate, then the delay doubles up to the cap.
            let cap = random_between(timings.max_backoff);
            backoff = match fate.attempts {
                1 => Duration::ZERO,
                2 => timings.first_backoff,
                _ => (backoff * 2).min(cap),
            };
            if let Some(seconds) = retry_after {
                backoff = backoff.max(timings.retry_after_unit * seconds.min(3600));
            }
            if created.elapsed() + backoff > timings.expiry {
                fate.dropped = true;
                break;
            }
            tokio::time::sleep(backoff).await;
        }
        self.webhook.lock().unwrap().pending -= 1;
        fate
    }

    /// One POST to the registered URL. `Err` holds Telegram's error text and
    /// any `Retry-After` seconds.
    async fn attempt(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        target: SocketAddr,
        body: &str,
        answer_timeout: Duration,
    ) -> Result<(), (String, Option<u32>)> {
        let (url, secret) = {
            let webhook = self.webhook.lock().unwrap();
            (webhook.url.clone(), webhook.secret.clone())
        };
        let Ok(uri) = url.parse::<Uri>() else { return Err(("Webhook is not set".to_string(), None)) };
        let target_path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = Request::post(format!("http://{target}{target_path}"))
            .header("host", uri.host().unwrap_or_default())
            .header("content-type", "application/json");
        if let Some(secret) = secret {
            request = request.header("x-telegram-bot-api-secret-token", secret);
        }
        let request = request.body(Full::new(Bytes::from(body.to_string()))).unwrap();
        let exchange = async {
            let response = client.request(request).await.map_err(|_| "Connection refused".to_string())?;
            let status = response.status();
            let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
            // The whole answer must arrive; it may carry a Bot API call.
            response.into_body().collect().await.map_err(|_| "Connection reset by peer".to_string())?;
            Ok::<_, String>((status, retry_after))
        };
        match tokio::time::timeout(answer_timeout, exchange).await {
            Err(_) => Err(("Read timeout expired".to_string(), None)),
            Ok(Err(message)) => Err((message, None)),
            Ok(Ok((status, _))) if status.is_success() => Ok(()),
            Ok(Ok((status, retry_after))) => {
                let reason = status.canonical_reason().unwrap_or("");
                Err((format!("Wrong response from the webhook: {} {reason}", status.as_u16()), retry_after))
            }
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn random_between((low, high): (Duration, Duration)) -> Duration {
    let spread = high.saturating_sub(low).as_millis() as u64;
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    low + Duration::from_millis(if spread == 0 { 0 } else { nanos % spread })
}

/// The scenario table's row: updates sent, and how often the backend handled each.
#[derive(Debug, PartialEq, Eq)]
pub struct Tally {
    pub sent: usize,
    pub once: usize,
    pub twice: usize,
    pub lost: usize,
    /// Updates the backend first handled out of order within their chat.
    pub out_of_order: usize,
}

/// Scores the sender's record against what the backend handled.
pub fn tally(fates: &[Fate], handled: &[(i64, i64)]) -> Tally {
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for (_, id) in handled {
        *counts.entry(*id).or_default() += 1;
    }
    let mut last_per_chat: HashMap<i64, i64> = HashMap::new();
    let mut out_of_order = 0;
    let mut seen = std::collections::HashSet::new();
    for (chat, id) in handled {
        if !seen.insert(*id) {
            continue;
        }
        let last = last_per_chat.entry(*chat).or_insert(i64::MIN);
        if *id < *last {
            out_of_order += 1;
        }
        *last = (*last).max(*id);
    }
    let count = |id: i64| counts.get(&id).copied().unwrap_or(0);
    Tally {
        sent: fates.len(),
        once: fates.iter().filter(|f| count(f.update_id) == 1).count(),
        twice: fates.iter().filter(|f| count(f.update_id) >= 2).count(),
        lost: fates.iter().filter(|f| count(f.update_id) == 0).count(),
        out_of_order,
    }
}

/// The median of the delivery delays, for the report.
pub fn median_delay(fates: &[Fate]) -> Duration {
    let mut delays: Vec<Duration> = fates.iter().filter_map(|f| f.delay).collect();
    delays.sort();
    delays.get(delays.len() / 2).copied().unwrap_or_default()
}

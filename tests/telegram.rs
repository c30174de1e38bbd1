//! Telegram webhook control and monitoring against a fake Bot API server that
//! speaks Telegram's documented JSON, records every call and serves scripted
//! webhook states; plus Telegram's side of a real delivery through hookgate to
//! a fake XBoard backend.

use crate::common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use md5::{Digest, Md5};
use serde_json::{Value, json};

use common::{Daemon, Webhook, eventually, raw};

const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const SECRET: &str = "hookgate_Secret-42";

fn access_token() -> String {
    Md5::digest(TOKEN.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A fake Bot API: `/bot<TOKEN>/<method>`, JSON in and out.
#[derive(Clone)]
struct FakeBotApi {
    addr: SocketAddr,
    calls: Arc<Mutex<Vec<(String, Value)>>>,
    info: Arc<Mutex<Value>>,
    /// When set, every call answers 500 with garbage.
    broken: Arc<Mutex<bool>>,
    /// `getWebhookInfo` calls, the broken ones too: the monitor's rounds.
    rounds: Arc<AtomicUsize>,
}

impl FakeBotApi {
    async fn start() -> FakeBotApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = FakeBotApi {
            addr: listener.local_addr().unwrap(),
            calls: Arc::default(),
            info: Arc::new(Mutex::new(json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0}))),
            broken: Arc::default(),
            rounds: Arc::default(),
        };
        let server = api.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| server.clone().answer(req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        api
    }

    fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap().clone()
    }

    fn script(&self, info: Value) {
        *self.info.lock().unwrap() = info;
    }

    /// Waits until the monitor has asked `n` more times than it had so far.
    fn wait_rounds(&self, n: usize) {
        let until = self.rounds.load(Ordering::SeqCst) + n;
        let asked = eventually(Duration::from_secs(10), || self.rounds.load(Ordering::SeqCst) >= until);
        assert!(asked, "the monitor did not ask {n} more times");
    }

    async fn answer(self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let path = req.uri().path().to_string();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        if path.ends_with("/getWebhookInfo") {
            self.rounds.fetch_add(1, Ordering::SeqCst);
        }
        if *self.broken.lock().unwrap() {
            return Ok(reply(StatusCode::INTERNAL_SERVER_ERROR, "<html>oops</html>".into()));
        }
        let Some(method) = path.strip_prefix(&format!("/bot{TOKEN}/")) else {
            // As a proxy in front of a Bot API server may answer: the path, token and all, echoed.
            let body = json!({"ok": false, "error_code": 404, "description": format!("Not Found: {path}")});
            return Ok(reply(StatusCode::NOT_FOUND, body.to_string()));
        };
        let params: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
        self.calls.lock().unwrap().push((method.to_string(), params.clone()));
        let answer = match method {
            "setWebhook" => {
                let url = params["url"].as_str().unwrap_or_default();
                if !url.starts_with("https://") {
                    json!({"ok": false, "error_code": 400, "description": "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"})
                } else {
                    self.info.lock().unwrap()["url"] = json!(url);
                    json!({"ok": true, "result": true, "description": "Webhook was set"})
                }
            }
            "getWebhookInfo" => json!({"ok": true, "result": self.info.lock().unwrap().clone()}),
            "deleteWebhook" => {
                self.info.lock().unwrap()["url"] = json!("");
                json!({"ok": true, "result": true, "description": "Webhook was deleted"})
            }
            _ => json!({"ok": false, "error_code": 404, "description": "Not Found"}),
        };
        let status = if answer["ok"] == json!(true) { StatusCode::OK } else { StatusCode::BAD_REQUEST };
        Ok(reply(status, answer.to_string()))
    }
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// Writes the token and secret files and a config using them.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
        std::fs::write(dir.path().join("secret"), format!("{SECRET}\n")).unwrap();
        Setup { dir }
    }

    /// A config whose webhook route forwards to `backend`; `tweak` edits the text.
    fn config(&self, api: &FakeBotApi, backend: &str, tweak: impl Fn(String) -> String) -> String {
        let webhook = Webhook::new(self.dir.path(), api.addr)
            .allow_telegram()
            .secret()
            .telegram_line(r#"allowed_updates = ["message", "callback_query"]"#)
            .telegram_line("max_connections = 40");
        tweak(format!(
            "[listen]\naddrs = [\"127.0.0.1:0\"]\n[admin]\naddr = \"127.0.0.1:0\"\n[upstreams.frontend]\n\
             url = \"http://127.0.0.1:9\"\n[upstreams.backend]\nurl = \"{backend}\"\n{}[default]\n\
             upstream = \"frontend\"\n{}",
            webhook.route(),
            webhook.telegram()
        ))
    }

    fn write(&self, config: &str) -> std::path::PathBuf {
        let path = self.dir.path().join("hookgate.toml");
        std::fs::write(&path, config).unwrap();
        path
    }
}

fn hookgate(args: &[&str], config: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hookgate")).args(args).arg("-c").arg(config).output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn assert_no_secrets(text: &str) {
    assert!(!text.contains(TOKEN), "the bot token leaked: {text}");
    assert!(!text.contains(&access_token()), "the access token leaked: {text}");
    assert!(!text.contains(SECRET), "the webhook secret leaked: {text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn set_webhook_sends_exactly_the_expected_parameters() {
    let api = FakeBotApi::start().await;
    let setup = Setup::new();
    let config = setup.write(&setup.config(&api, "http://127.0.0.1:9", |c| c));
    let out = hookgate(&["telegram", "set-webhook"], &config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("Webhook was set"), "{}", text(&out));
    assert_no_secrets(&text(&out));
    let calls = api.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, "setWebhook");
    let expected = json!({
        "url": format!("https://www.example.com/api/v1/guest/telegram/webhook?access_token={}", access_token()),
        "secret_token": SECRET,
        "allowed_updates": ["message", "callback_query"],
        "max_connections": 40,
    });
    assert_eq!(calls[0].1, expected);

    let out = hookgate(&["telegram", "delete", "--drop-pending"], &config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(api.calls()[1], ("deleteWebhook".to_string(), json!({"drop_pending_updates": true})));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_url_this_config_would_not_deliver_is_refused_before_any_call() {
    let api = FakeBotApi::start().await;
    let setup = Setup::new();
    // (what the refusal says, text to replace in the config, replacement)
    let cases = [
        ("would go to", "methods = [\"POST\"]", "methods = [\"GET\"]"),
        ("must be https", "https://www.example.com", "http://www.example.com"),
        ("port 8080", "https://www.example.com", "https://www.example.com:8080"),
        ("blocks Telegram", "allow_from = [\"127.0.0.0/8\", \"telegram\"]", "allow_from = [\"127.0.0.0/8\"]"),
        (
            "would go to",
            "upstream = \"backend\"\nallow_from",
            "host = \"api.example.com\"\nupstream = \"backend\"\nallow_from",
        ),
    ];
    for (want, from, to) in cases {
        let config = setup.write(&setup.config(&api, "http://127.0.0.1:9", |c| c.replace(from, to)));
        let out = hookgate(&["telegram", "set-webhook"], &config);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(want), "want {want:?} in {}", text(&out));
        assert_no_secrets(&text(&out));
    }
    assert!(api.calls().is_empty(), "nothing may be sent to Telegram: {:?}", api.calls());
}

#[tokio::test(flavor = "multi_thread")]
async fn telegram_errors_and_info_are_reported_in_plain_words() {
    let api = FakeBotApi::start().await;
    let setup = Setup::new();
    let config = setup.write(&setup.config(&api, "http://127.0.0.1:9", |c| c));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let url = format!("https://www.example.com/api/v1/guest/telegram/webhook?access_token={}", access_token());
    api.script(json!({
        "url": url, "has_custom_certificate": false, "pending_update_count": 5,
        "last_error_date": now - 120, "last_error_message": "Wrong response from the webhook: 404 Not Found",
        "max_connections": 40
    }));
    let out = hookgate(&["telegram", "info"], &config);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    for needle in [
        "(matches this config)",
        "pending updates: 5",
        "Wrong response from the webhook: 404 Not Found (2 min ago)",
        "does not reach the webhook handler",
        "requires x-telegram-bot-api-secret-token",
        "this config sends it to route telegram-webhook → upstream backend",
    ] {
        assert!(said.contains(needle), "missing {needle:?} in:\n{said}");
    }
    assert_no_secrets(&said);

    // A token Telegram does not know: its JSON error is shown as such.
    std::fs::write(setup.dir.path().join("token"), "999:WRONG\n").unwrap();
    let out = hookgate(&["telegram", "info"], &config);
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out);
    assert!(said.contains("Telegram refused: Not Found: /bot<token>/getWebhookInfo (error 404)"), "{said}");
    assert!(!said.contains("999:WRONG"), "the token echoed in Telegram's answer is shown: {said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_monitor_diagnoses_each_known_failure_once_and_exports_metrics() {
    let api = FakeBotApi::start().await;
    let setup = Setup::new();
    let url = format!("https://www.example.com/api/v1/guest/telegram/webhook?access_token={}", access_token());
    api.script(json!({"url": url, "pending_update_count": 0}));
    // Rounds every 100 ms: the states below are each seen for a few rounds.
    let fast = |c: String| c.replace("monitor_interval = \"1s\"", "monitor_interval = \"100ms\"");
    let mut daemon = Daemon::start(&setup.config(&api, "http://127.0.0.1:9", fast));
    let admin = daemon.admin.unwrap();
    daemon.wait_for_log("telegram webhook: healthy", Duration::from_secs(10));
    let metric = |name: &str| -> Option<f64> {
        let text = common::get(admin, "localhost", "/metrics").body_text();
        text.lines().find(|l| l.starts_with(name) && !l.starts_with('#'))?.rsplit(' ').next()?.parse().ok()
    };
    assert_eq!(metric("hookgate_telegram_webhook_url_matches_config"), Some(1.0));

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let cases = [
        ("Wrong response from the webhook: 404 Not Found", "does not reach the webhook handler"),
        ("Wrong response from the webhook: 401 Unauthorized", "XBoard's Set Webhook button cleared it"),
        (
            "SSL error {error:0A000086:SSL routines::tls_post_process_server_certificate:certificate verify failed}",
            "serve the full chain",
        ),
        ("Read timeout expired", "the backend took longer than 60 s"),
    ];
    for (i, (message, diagnosis)) in cases.iter().enumerate() {
        api.script(json!({
            "url": url, "pending_update_count": 10 + i, "last_error_date": now - 5, "last_error_message": message
        }));
        let line = daemon.wait_for_log(diagnosis, Duration::from_secs(10));
        assert!(line.contains("WARN"), "{line}");
        assert!(eventually(Duration::from_secs(5), || metric("hookgate_telegram_webhook_pending_updates")
            == Some((10 + i) as f64)));
        // A few more rounds in the same state, to be logged once below.
        api.wait_rounds(3);
    }
    assert_eq!(metric("hookgate_telegram_webhook_last_error_timestamp_seconds"), Some((now - 5) as f64));
    let readyz = common::get(admin, "localhost", "/readyz").body_text();
    assert!(readyz.starts_with("ready\ntelegram webhook: ") && readyz.contains("longer than 60 s"), "{readyz}");

    // Someone re-sets the webhook elsewhere.
    api.script(json!({"url": "https://evil.example/hook", "pending_update_count": 0}));
    daemon.wait_for_log("someone re-set it", Duration::from_secs(10));
    assert!(eventually(Duration::from_secs(5), || metric("hookgate_telegram_webhook_url_matches_config") == Some(0.0)));

    // Telegram unreachable: the error counter moves.
    *api.broken.lock().unwrap() = true;
    assert!(eventually(Duration::from_secs(10), || metric("hookgate_telegram_webhook_monitor_errors_total")
        .unwrap_or(0.0)
        >= 1.0));
    daemon.wait_for_log("telegram monitor: cannot read the webhook state", Duration::from_secs(5));

    // One line per change of state, not one per interval: more failed rounds,
    // then every line the daemon wrote.
    api.wait_rounds(3);
    // Telegram back: its answer is a change of state again, and is logged (the
    // second walkthrough of 2026-12-07 found the recovery left unsaid).
    *api.broken.lock().unwrap() = false;
    let re_set = || daemon.logs().iter().filter(|l| l.contains("someone re-set it")).count() == 2;
    assert!(eventually(Duration::from_secs(10), re_set), "{:#?}", daemon.logs());
    let logs = daemon.stop();
    assert_eq!(logs.iter().filter(|l| l.contains("longer than 60 s")).count(), 1, "{logs:#?}");
    let unreadable = logs.iter().filter(|l| l.contains("cannot read the webhook state")).count();
    assert_eq!(unreadable, 1, "the same reason is logged once: {logs:#?}");
    assert_no_secrets(&logs.join("\n"));
}

/// Telegram's documented sample update (core.telegram.org/bots/webhooks).
const UPDATE: &str = r#"{"update_id":10000,"message":{"date":1441645532,"chat":{"last_name":"Test Lastname","id":1111111,"type":"private","first_name":"Test Firstname","username":"Testusername"},"message_id":1365,"from":{"last_name":"Test Lastname","id":1111111,"first_name":"Test Firstname","username":"Testusername"},"text":"/start"}}"#;

/// A fake XBoard backend: answers an empty 200 only when `access_token` is md5(token).
async fn fake_xboard() -> (SocketAddr, Arc<Mutex<Vec<Bytes>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let sink = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let sink = sink.clone();
                    async move {
                        let ok = req.uri().query() == Some(&format!("access_token={}", access_token()));
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        if !ok {
                            return Ok::<_, Infallible>(reply(StatusCode::FORBIDDEN, String::new()));
                        }
                        sink.lock().unwrap().push(body);
                        Ok(reply(StatusCode::OK, String::new()))
                    }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (addr, received)
}

#[tokio::test(flavor = "multi_thread")]
async fn telegram_delivers_through_hookgate_to_xboard_only_with_the_secret() {
    let api = FakeBotApi::start().await;
    let (xboard, received) = fake_xboard().await;
    let setup = Setup::new();
    let daemon = Daemon::start(&setup.config(&api, &format!("http://{xboard}"), |c| c));
    let post = |secret: Option<&str>| {
        let secret = secret.map(|s| format!("X-Telegram-Bot-Api-Secret-Token: {s}\r\n")).unwrap_or_default();
        format!(
            "POST /api/v1/guest/telegram/webhook?access_token={} HTTP/1.1\r\nHost: www.example.com\r\nContent-Type: application/json\r\n{secret}Content-Length: {}\r\nConnection: close\r\n\r\n{UPDATE}",
            access_token(),
            UPDATE.len()
        )
    };
    let delivered = raw(daemon.addr, post(Some(SECRET)).as_bytes());
    assert_eq!((delivered.status, delivered.body.len()), (200, 0));
    assert_eq!(received.lock().unwrap().as_slice(), [Bytes::from_static(UPDATE.as_bytes())]);

    let refused = raw(daemon.addr, post(None).as_bytes());
    assert_eq!(refused.status, 401);
    let wrong = raw(daemon.addr, post(Some("guess")).as_bytes());
    assert_eq!(wrong.status, 403);
    assert_eq!(received.lock().unwrap().len(), 1, "a post without the secret must never reach XBoard");
    assert_no_secrets(&daemon.logs().join("\n"));
}

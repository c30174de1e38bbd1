//! The status verdict is the worst of its parts, each part as last learned:
//! a Telegram the monitor cannot reach, and an upstream that refuses every
//! connection after only a few requests, make `/status.json`, the page and
//! `hookgate status` say so (exit 1), and an upstream that answers again is
//! healthy again.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use md5::{Digest, Md5};

use common::telegram_sim::TelegramSim;
use common::{Daemon, Upstream, WEBHOOK_PATH, Webhook, eventually, raw};

const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

/// A loopback port nothing listens on (bound, then let go).
fn closed_port() -> u16 {
    common::free_port()
}

fn admin_get(admin: SocketAddr, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let response = raw(admin, request.as_bytes());
    (response.status, response.body_text())
}

fn status_json(admin: SocketAddr) -> Value {
    let (status, body) = admin_get(admin, "/status.json");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// `hookgate status` against the daemon, through a copy of its config that
/// names the bound admin address.
fn hookgate_status(daemon: &Daemon, dir: &std::path::Path) -> Output {
    let admin = daemon.admin.unwrap();
    let config = std::fs::read_to_string(&daemon.config_path).unwrap();
    let path = dir.join("cli.toml");
    std::fs::write(&path, config.replacen("addr = \"127.0.0.1:0\"", &format!("addr = \"{admin}\""), 1)).unwrap();
    Command::new(env!("CARGO_BIN_EXE_hookgate")).args(["status", "-c"]).arg(&path).output().unwrap()
}

/// `app` as the default upstream and the webhook's route, with `[admin]` and `[telegram]`.
fn webhook_config(app: &Upstream, webhook: &Webhook) -> String {
    format!(
        "[admin]\naddr = \"127.0.0.1:0\"\n[upstreams.app]\nurl = \"{}\"\n{}[default]\nupstream = \"app\"\n{}",
        app.url(),
        webhook.route(),
        webhook.telegram()
    )
}

fn trouble(s: &Value) -> Vec<String> {
    s["trouble"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_telegram_the_monitor_cannot_reach_is_not_healthy() {
    let app = Upstream::start("app").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let api = format!("127.0.0.1:{}", closed_port());
    let webhook = Webhook::new(dir.path(), &api).upstream("app").telegram_line("repair = false");
    let config = webhook_config(&app, &webhook);
    let daemon = Daemon::start(&config);
    let admin = daemon.admin.unwrap();
    let checked = || !status_json(admin)["telegram"]["webhook"].is_null();
    assert!(eventually(Duration::from_secs(10), checked), "{:#}", status_json(admin));

    let s = status_json(admin);
    let webhook = &s["telegram"]["webhook"];
    assert_eq!(webhook["state"], "cannot reach Telegram", "{webhook:#}");
    assert_eq!(webhook["healthy"], false);
    let why = webhook["unreachable"].as_str().unwrap();
    assert!(why.starts_with(&format!("cannot reach the Bot API at http://{api}: ")), "{why}");
    assert!(!why.contains(TOKEN), "{why}");
    // The same line as /readyz.
    let (_, readyz) = admin_get(admin, "/readyz");
    let explain = webhook["explain"].as_str().unwrap();
    assert!(explain.starts_with("unknown: cannot ask Telegram (cannot reach the Bot API"), "{explain}");
    assert!(readyz.contains(explain), "/readyz:\n{readyz}\nexplain: {explain}");
    assert!(
        trouble(&s).iter().any(|t| t == &format!("telegram webhook: cannot reach Telegram: {why}")),
        "{:?}",
        trouble(&s)
    );

    let (status, page) = admin_get(admin, "/");
    assert_eq!(status, 200);
    assert!(page.contains("id=\"webhook-state\">cannot reach Telegram</span>"), "{page}");
    assert!(page.contains(&format!("cannot reach the Bot API at http://{api}: ")), "the reason: {page}");
    assert!(page.contains("needs attention"), "{page}");
    assert!(!page.contains("not checked yet"), "{page}");

    let out = hookgate_status(&daemon, dir.path());
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("verdict: needs attention"), "{said}");
    assert!(said.contains(&format!("cannot reach Telegram: cannot reach the Bot API at http://{api}: ")), "{said}");
    assert!(!said.contains("not checked yet"), "{said}");
}

/// Until the monitor's first answer, Telegram's state is unknown: the
/// verdict is not healthy (found by a hostile probe: `healthy` for the 15 s
/// a hanging Bot API took to time out, and after a reload that added
/// `[telegram]`).
#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_not_checked_yet_is_not_healthy() {
    let app = Upstream::start("app").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    // Connections wait in its backlog, never answered.
    let hanging = TcpListener::bind("127.0.0.1:0").unwrap();
    let webhook = Webhook::new(dir.path(), hanging.local_addr().unwrap()).upstream("app");
    let config = webhook_config(&app, &webhook);
    let daemon = Daemon::start(&config);
    let s = status_json(daemon.admin.unwrap());
    assert!(s["telegram"]["webhook"].is_null(), "{s:#}");
    assert!(trouble(&s).contains(&"telegram webhook: not checked yet".to_string()), "{:?}", trouble(&s));
    let out = hookgate_status(&daemon, dir.path());
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("verdict: needs attention") && said.contains("not checked yet"), "{said}");

    // With the monitor off nothing will ever ask (found by a probe: `healthy`).
    let written = std::fs::read_to_string(&daemon.config_path).unwrap();
    let off = written.lines().map(|l| if l.starts_with("monitor_interval") { "monitor_interval = \"0\"" } else { l });
    daemon.rewrite_config(&off.collect::<Vec<_>>().join("\n"));
    daemon.signal("HUP");
    let unmonitored = "telegram webhook: not monitored (monitor_interval is 0s)".to_string();
    let admin = daemon.admin.unwrap();
    let shown = || trouble(&status_json(admin)).contains(&unmonitored);
    assert!(eventually(Duration::from_secs(10), shown), "{:#} {:?}", status_json(admin), daemon.logs());
    let out = hookgate_status(&daemon, dir.path());
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("verdict: needs attention") && said.contains("not monitored"), "{said}");
}

/// A reload that points `[telegram]` at another webhook (here another
/// `public_url`) is checked at once, and the old webhook's `healthy` is not
/// shown meanwhile (found by a hostile probe: shown for a whole
/// `monitor_interval`, 5 minutes, after the reload).
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_that_changes_the_webhook_is_checked_at_once() {
    let app = Upstream::start("app").await;
    let sim = TelegramSim::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let webhook = Webhook::new(dir.path(), sim.api_addr).upstream("app").monitor_interval("5m");
    let config = webhook_config(&app, &webhook);
    let access_token: String = Md5::digest(TOKEN.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    sim.press_xboard_button(&format!("https://www.example.com{WEBHOOK_PATH}?access_token={access_token}")).await;
    let daemon = Daemon::start(&config);
    let admin = daemon.admin.unwrap();
    let healthy = || status_json(admin)["telegram"]["webhook"]["healthy"] == true;
    assert!(eventually(Duration::from_secs(10), healthy), "{:#}", status_json(admin));

    let written = std::fs::read_to_string(&daemon.config_path).unwrap();
    daemon.rewrite_config(&written.replace("https://www.example.com", "https://new.example.com"));
    daemon.signal("HUP");
    let mismatch = || status_json(admin)["telegram"]["webhook"]["url_matches_config"] == false;
    assert!(eventually(Duration::from_secs(10), mismatch), "{:#}", status_json(admin));
    let s = status_json(admin);
    assert!(trouble(&s).iter().any(|t| t.starts_with("telegram webhook: ")), "{:?}", trouble(&s));
}

/// Answers every request on `listener` with 200, until the test ends.
fn answer_on(listener: TcpListener) {
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nyes");
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_refusing_connections_needs_attention_until_it_answers() {
    let app = Upstream::start("app").await;
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let config = format!(
        r#"[admin]
addr = "127.0.0.1:0"
[upstreams.app]
url = "{app}"
[upstreams.backend]
url = "http://127.0.0.1:{port}"
[[routes]]
name = "api"
path_prefix = "/api"
upstream = "backend"
[default]
upstream = "app"
"#,
        app = app.url(),
    );
    let daemon = Daemon::start(&config);
    let admin = daemon.admin.unwrap();
    let get = |path: &str| common::get(daemon.addr, "www.example.com", path).status;
    assert_eq!(get("/"), 200);
    assert_eq!(get("/api/x"), 502);
    let backend =
        |s: &Value| s["upstreams"].as_array().unwrap().iter().find(|u| u["name"] == "backend").unwrap().clone();
    // One refused connection is a blip (a restart), not a verdict.
    assert!(trouble(&status_json(admin)).is_empty(), "{:?}", trouble(&status_json(admin)));
    assert_eq!(get("/api/y"), 502);
    assert_eq!(get("/"), 200, "another upstream answering changes nothing");
    assert_eq!(get("/api/z"), 502);

    let s = status_json(admin);
    let troubles = trouble(&s);
    assert!(
        troubles.iter().any(|t| t.starts_with("upstream backend: refusing connections (the last 3 attempts failed")),
        "three requests, three refused connections: {troubles:?}"
    );
    assert!(troubles.iter().all(|t| !t.contains("upstream app")), "{troubles:?}");
    let out = hookgate_status(&daemon, dir.path());
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("verdict: needs attention") && said.contains("upstream backend: refusing connections"));
    assert_eq!(backend(&s)["state"], "refusing connections", "{:#}", backend(&s));
    assert_eq!(backend(&s)["failures_in_a_row"], 3);
    assert_eq!(backend(&s)["connect_errors"], 3);
    let (_, page) = admin_get(admin, "/");
    let row = page.split("data-upstream=\"backend\"").nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(row.contains("refusing connections"), "{row}");
    assert!(page.contains("upstream backend: refusing connections"), "the verdict's list: {page}");

    // It comes back: one answer makes it healthy again.
    answer_on(TcpListener::bind(("127.0.0.1", port)).unwrap());
    assert_eq!(get("/api/w"), 200);
    let s = status_json(admin);
    assert_eq!(backend(&s)["state"], "ok", "{:#}", backend(&s));
    assert!(trouble(&s).is_empty(), "{:?}", trouble(&s));
    assert_eq!(backend(&s)["connect_errors"], 3, "the count since start-up stays");
    let out = hookgate_status(&daemon, dir.path());
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("verdict: healthy"), "{said}");
}

/// A reload that points a refusing upstream at another `url` forgets the
/// old address's failures (found by a hostile probe: `not answering` until
/// the next request reached the new address, up to 15 minutes without
/// traffic); the counts since start-up stay.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_that_moves_an_upstream_forgets_its_old_failures() {
    let app = Upstream::start("app").await;
    let port = closed_port();
    let config = format!(
        "[admin]\naddr = \"127.0.0.1:0\"\n[upstreams.backend]\nurl = \"http://127.0.0.1:{port}\"\n\
         [default]\nupstream = \"backend\"\n"
    );
    let daemon = Daemon::start(&config);
    let admin = daemon.admin.unwrap();
    for path in ["/a", "/b"] {
        assert_eq!(common::get(daemon.addr, "www.example.com", path).status, 502);
    }
    let backend = |s: &Value| s["upstreams"][0].clone();
    assert_eq!(backend(&status_json(admin))["state"], "refusing connections");

    let written = std::fs::read_to_string(&daemon.config_path).unwrap();
    daemon.rewrite_config(&written.replace(&format!("http://127.0.0.1:{port}"), &app.url()));
    daemon.signal("HUP");
    daemon.wait_for_log("reloaded", Duration::from_secs(10));
    let s = status_json(admin);
    assert_eq!(backend(&s)["state"], "ok", "{:#}", backend(&s));
    assert!(trouble(&s).is_empty(), "{:?}", trouble(&s));
    assert_eq!(backend(&s)["connect_errors"], 2, "the count since start-up stays");
}

/// A reload of an invalid file failed: `hookgate status`, given that same
/// file, still asks the daemon (through the file's `[admin]`) and says what
/// needs attention, exit 1, after the file's own problems (found by the
/// walkthrough of 2026-12-07: it printed the problems and stopped with 78).
#[tokio::test(flavor = "multi_thread")]
async fn status_asks_the_daemon_even_when_its_file_no_longer_loads() {
    let app = Upstream::start("app").await;
    let config = format!(
        "[admin]\naddr = \"127.0.0.1:0\"\n[upstreams.app]\nurl = \"{}\"\n[default]\nupstream = \"app\"\n",
        app.url()
    );
    let daemon = Daemon::start(&config);
    daemon.rewrite_config(&config.replace("upstream = \"app\"", "upstream = \"backnd\""));
    daemon.signal("HUP");
    daemon.wait_for_log("reload failed", Duration::from_secs(10));
    let dir = tempfile::tempdir().unwrap();
    let out = hookgate_status(&daemon, dir.path());
    let (said, warned) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "stdout: {said}\nstderr: {warned}");
    assert!(warned.contains("backnd") && warned.contains("asking the daemon"), "{warned}");
    assert!(said.contains("reload failed"), "{said}");
}

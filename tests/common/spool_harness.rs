//! The set-up `spool_tools` drives the spool's operator tools with: a
//! config whose routes make dead letters, waiting and delivered requests,
//! their upstreams, and ways to ask the daemon, its admin endpoints and the
//! `hookgate spool` command, with the senders' secrets that none may show.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use super::{Daemon, RawUpstream, Upstream, eventually, raw};

pub const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nno order\n";
pub const ADMIN_TOKEN: &str = "adm1n-t0ken";
/// What the senders of `/notify` authenticate with; none of it may be shown.
pub const SECRETS: [&str; 5] = ["s3cret", "c00kie", "k3y", "tg-s3cret", "abc123"];

/// Where the test's routes send their requests.
pub struct Upstreams {
    /// `orders`: answers 404, so a request becomes a dead letter at once.
    pub orders: String,
    /// `app`: answers 200.
    pub app: String,
    /// `down`: refuses connections, so a request keeps waiting.
    pub down: String,
}

/// `notify` (dead letters, with a secret header), `later` (waits) and
/// `fine` (delivered), all `always`; the spool in `spool/` beside the file.
pub fn config(dir: &Path, admin: &str, to: &Upstreams) -> String {
    std::fs::write(dir.join("key"), "k3y").unwrap();
    format!(
        r#"[admin]
addr = "{admin}"
{token}
[spool]
dir = "spool"
[upstreams.orders]
url = "{orders}"
[upstreams.app]
url = "{app}"
[upstreams.down]
url = "{down}"
[[routes]]
name = "notify"
path = "/notify"
upstream = "orders"
store = {{ mode = "always" }}
secret_header = {{ name = "X-Hook-Key", value_file = "key", strip = false }}
[[routes]]
name = "later"
path = "/later"
upstream = "down"
store = {{ mode = "always" }}
[[routes]]
name = "fine"
path = "/fine"
upstream = "app"
store = {{ mode = "always" }}
[default]
upstream = "app"
"#,
        token = if dir.join("admin-token").exists() { "token_file = \"admin-token\"" } else { "" },
        orders = to.orders,
        app = to.app,
        down = to.down,
    )
}

pub async fn upstreams() -> (Upstreams, RawUpstream, Upstream) {
    let orders = RawUpstream::start(NOT_FOUND, None).await;
    let app = Upstream::start("app").await;
    let to = Upstreams {
        orders: format!("http://{}", orders.addr),
        app: app.url(),
        down: format!("http://127.0.0.1:{}", super::free_port()),
    };
    (to, orders, app)
}

pub fn free_admin() -> String {
    format!("127.0.0.1:{}", super::free_port())
}

/// A POST of `body` to `path` with `headers`; the status.
pub fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    let mut request = format!("POST {path} HTTP/1.1\r\nHost: shop.example\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        request += &format!("{name}: {value}\r\n");
    }
    request += "Connection: close\r\n\r\n";
    raw(addr, format!("{request}{body}").as_bytes()).status
}

/// A `/notify` as a payment gateway with every kind of credential sends it.
pub fn notify(addr: SocketAddr, order: u32) -> u16 {
    let headers = [
        ("Authorization", "Bearer s3cret"),
        ("Cookie", "sid=c00kie"),
        ("X-Hook-Key", "k3y"),
        ("X-Telegram-Bot-Api-Secret-Token", "tg-s3cret"),
    ];
    post(addr, "/notify?access_token=abc123&out_trade_no=7", &headers, &format!("{{\"order\":{order}}}"))
}

/// One request to the admin listener: status, body and `Allow`.
pub fn admin(addr: SocketAddr, method: &str, path: &str, extra: &str) -> (u16, String, Option<String>) {
    let request = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n");
    let response = raw(addr, request.as_bytes());
    (response.status, response.body_text(), response.header("allow"))
}

pub fn bearer() -> String {
    format!("Authorization: Bearer {ADMIN_TOKEN}\r\n")
}

pub fn json(addr: SocketAddr, path: &str, extra: &str) -> Value {
    let (status, body, _) = admin(addr, "GET", path, extra);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

pub fn spool_route(status: &Value, name: &str) -> Value {
    let routes = status["spool"]["routes"].as_array().unwrap();
    routes.iter().find(|r| r["route"] == name).cloned().unwrap_or(Value::Null)
}

/// The ids `GET /spool` lists (dead letters with `dead`).
pub fn ids(addr: SocketAddr, dead: bool, extra: &str) -> Vec<i64> {
    let listed = json(addr, if dead { "/spool?dead=1" } else { "/spool" }, extra);
    listed["requests"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

pub fn hookgate(args: &[&str], config: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookgate"));
    command.args(args).arg("-c").arg(config).env_remove("HOOKGATE_CONFIG").output().unwrap()
}

pub fn said(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

pub fn spool_cli(args: &[&str], config: &Path, code: i32) -> String {
    let out = hookgate(&[&["spool"], args].concat(), config);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(code), "hookgate spool {args:?}:\n{text}");
    text
}

pub fn assert_redacted(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret:?} shown:\n{text}");
    }
}

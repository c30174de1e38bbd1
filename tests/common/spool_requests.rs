//! The requests the store-and-forward tests send (`spool_delivery`,
//! `spool_outages`): the Telegram webhook route's config, an update, a form
//! POST, and the update ids a backend handled.

use super::webhook_senders::Backend;
use super::{Daemon, RawResponse, WEBHOOK_PATH, raw};

pub const ACCESS_TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// The webhook route of XBoard's Telegram bot, with `store` (the route's
/// `store = {...}` line, or nothing) and dedupe.
pub fn telegram_config(backend: std::net::SocketAddr, store: &str) -> String {
    format!(
        "[limits]\nshutdown_grace = \"2s\"\n[spool]\ndir = \"spool\"\n\
         [upstreams.frontend]\nurl = \"http://127.0.0.1:9\"\n[upstreams.backend]\nurl = \"http://{backend}\"\n\
         [[routes]]\nname = \"telegram-webhook\"\npath = \"{}\"\nmethods = [\"POST\"]\nupstream = \"backend\"\n\
         dedupe = {{ key = \"telegram_update_id\", window = \"10m\" }}\n{store}\n\
         [default]\nupstream = \"frontend\"\n",
        WEBHOOK_PATH
    )
}

/// POSTs a Telegram update of `chat` to the webhook; the answer.
pub fn update(daemon: &Daemon, chat: i64, id: i64) -> RawResponse {
    let body = format!(r#"{{"update_id":{id},"message":{{"chat":{{"id":{chat}}},"text":"hi"}}}}"#);
    let request = format!(
        "POST {}?access_token={ACCESS_TOKEN} HTTP/1.1\r\nHost: www.example.com\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        WEBHOOK_PATH,
        body.len()
    );
    raw(daemon.addr, request.as_bytes())
}

/// The update ids the backend handled, in order.
pub fn update_ids(backend: &Backend) -> Vec<i64> {
    let id = |body: &[u8]| serde_json::from_slice::<serde_json::Value>(body).ok()?["update_id"].as_i64();
    backend.got().iter().filter_map(|g| id(&g.body)).collect()
}

/// A request on a route with `store = always` or `journal`: the id in its body.
pub fn hook(daemon: &Daemon, path: &str, id: &str) -> RawResponse {
    form(daemon, path, &format!("id={id}"))
}

/// POSTs the form `body` on a connection of its own.
pub fn form(daemon: &Daemon, path: &str, body: &str) -> RawResponse {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: hooks.example\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    raw(daemon.addr, request.as_bytes())
}

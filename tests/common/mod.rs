//! Test harness: real upstream servers, the real `hookgate` binary, raw clients.
//!
//! Upstreams are small hyper servers on `127.0.0.1:0` that record every request
//! they get, so tests assert on what reached the upstream, not only on status
//! codes. The daemon is the compiled binary, started with a config written to a
//! temp file; its listening address is read from its startup log line.
//!
//! - `upstream`: recording upstreams, plain or TLS.
//! - `daemon`: the hookgate process, its logs and signals.
//! - `client`: raw-socket requests and response parsing.
//! - `raw_upstream`: an upstream (plain or TLS) that answers with fixed bytes.
//! - `telegram_sim`: a fake Bot API and a Telegram-like webhook sender.
//! - `pebble`: a real test ACME server (Debian's pebble) on loopback.
//! - `tls_client`: a throwaway CA, the two-site TLS config, rustls clients.

#![allow(dead_code, unused_imports)]

mod client;
mod daemon;
pub mod pebble;
mod raw_upstream;
pub mod telegram_sim;
pub mod tls_client;
mod upstream;

use std::time::{Duration, Instant};

pub use client::*;
pub use daemon::*;
pub use raw_upstream::*;
pub use upstream::*;

/// Waits until `f` holds, up to `timeout`.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A config with `frontend` and `backend` upstreams and the webhook rule.
pub fn two_upstream_config(frontend: &Upstream, backend: &Upstream, extra: &str) -> String {
    format!(
        r#"
[upstreams.frontend]
url = "{}"
[upstreams.backend]
url = "{}"
{extra}
[[routes]]
name = "telegram-webhook"
path = "/api/v1/guest/telegram/webhook"
methods = ["POST"]
upstream = "backend"

[[routes]]
name = "payment-notify"
path_prefix = "/api/v1/guest/payment/notify/"
upstream = "backend"

[[routes]]
name = "ws"
path = "/ws"
upstream = "backend"

[[routes]]
name = "block-admin"
path_prefix = "/admin"
respond = {{ status = 403, body = "forbidden\n", headers = {{ "x-blocked" = "yes" }} }}

[default]
upstream = "frontend"
"#,
        frontend.url(),
        backend.url()
    )
}

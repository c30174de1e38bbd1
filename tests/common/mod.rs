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
//! - `config`: the config text several test files share (the Telegram webhook).
//! - `webhook_senders`: a backend that goes down and up, a payment gateway that
//!   gives up, and the spool's row count, for the store-and-forward tests.
//!
//! Waiting: for a log line, `Daemon::wait_for_log` (woken by each line); for
//! anything else, `eventually` (polls every 20 ms up to a deadline). Neither
//! sleeps a fixed time. Both block the calling thread: in a
//! `#[tokio::test(flavor = "multi_thread")]` that is the test's own thread
//! (`block_on`'s), not a runtime worker, so the upstreams keep running.
//!
//! Tools from Debian packages (`chromium`, `pebble`, `curl`, systemd's):
//! `have_tool` lets a test skip, with one line, on a machine without them,
//! and fails it when `HOOKGATE_REQUIRE_TOOLS` is set, as `.ci/run` does.

#![allow(dead_code, unused_imports)]

mod client;
mod config;
mod daemon;
pub mod pebble;
mod raw_upstream;
pub mod redis;
pub mod scripted;
pub mod signers;
pub mod spool_harness;
pub mod spool_requests;
pub mod telegram_sim;
pub mod tls_client;
mod upstream;
pub mod webhook_backend;
pub mod webhook_senders;

use std::time::{Duration, Instant};

pub use client::*;
pub use config::*;
pub use daemon::*;
pub use raw_upstream::*;
pub use upstream::*;

/// Waits until `f` holds, up to `timeout`, asking every 20 ms.
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

/// A free port for configs that must name their address before the daemon
/// starts (the `hookgate` commands read it from the file;
/// systemd-socket-activate and pebble's validations use it), or for an address
/// where nothing may listen.
///
/// Taken below the kernel's ephemeral range (`ip_local_port_range`): a port
/// let go there stays free until the daemon binds it, however many
/// connections the tests running beside this one open meanwhile (each takes
/// its local port from the ephemeral range, and a port picked there with
/// `bind(:0)` was sometimes taken that way before the daemon could bind it:
/// "Address already in use"). No port is handed out twice in one run.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok();
    let first_ephemeral = ephemeral.and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok()).unwrap_or(32768);
    let (low, high) = (10_000u16, first_ephemeral.saturating_sub(1));
    assert!(high > low + 1000, "the ephemeral port range starts at {first_ephemeral}: no room below it");
    let span = u32::from(high - low) + 1;
    let start = std::collections::hash_map::RandomState::new().build_hasher().finish() as u32 % span;
    let mut given = GIVEN.lock().unwrap();
    for i in 0..span {
        let port = low + ((start + i) % span) as u16;
        if !given.contains(&port) && std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free port between {low} and {high}");
}

/// `1` when every test must run: a missing tool then fails the test instead
/// of skipping it. `.ci/run` sets it.
pub const REQUIRE_TOOLS: &str = "HOOKGATE_REQUIRE_TOOLS";

/// Whether the environment variable `name` is on: `1` (unset, empty or `0` is off).
pub fn switched_on(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|value| !value.is_empty() && value != "0")
}

/// Whether `tool` is on `PATH`. When it is not, the calling test should
/// return at once: this has printed one line saying it was skipped and why
/// (past the harness's output capture, so `cargo test` shows it), or, with
/// `HOOKGATE_REQUIRE_TOOLS` set, failed the test. `package` is the Debian
/// package that has it.
pub fn have_tool(tool: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| is_executable(&dir.join(tool))));
    if found {
        return true;
    }
    assert!(
        !switched_on(REQUIRE_TOOLS),
        "{tool} is not installed (Debian package {package}), and {REQUIRE_TOOLS} is set: every test must run"
    );
    say(&format!("skipped: {tool} is not installed (Debian package {package}; .ci/run installs it)"));
    false
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Writes `text` on one line to the real stderr, named after the running
/// test. The harness captures `eprintln!` from tests that pass; not this.
pub fn say(text: &str) {
    use std::io::Write;
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("test");
    let _ = writeln!(std::io::stderr().lock(), "{test}: {text}");
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

//! hookgate: a reverse proxy that routes webhook and callback paths to a
//! backend by rule and passes everything else to a frontend.
//!
//! Built for panels such as XBoard whose frontend and backend live on separate
//! domains, so that Telegram's webhook and payment notifications reach the
//! backend. See `README.md` for the configuration and the routing rules.
//!
//! # Layout
//! In the order a request meets them; imports only point down this list
//! (`tests/module_order.rs` holds the exact order and fails on an import that runs back up).
//! - [`cli`], [`init`] — the command line's declaration; `hookgate init`.
//! - [`lifecycle`], [`report`], [`telegram`], `acme`, `admin`, [`status`], [`control`] —
//!   start-up, signals, reload and shutdown; what `check`/`route` print; webhook
//!   control, monitor and repair; obtaining and renewing `[listen.tls.acme]`
//!   certificates; `/healthz` `/readyz` `/metrics` `POST /reload`; the status
//!   page and `/status.json`; the commands that talk to the daemon.
//! - [`server`] — listeners, accept loops, connection limits, TLS and PROXY
//!   handshakes, HTTP/2 timers, graceful drain.
//! - `http1` — hookgate's own HTTP/1.1 engine: client connections and plain upstreams.
//! - [`proxy`] — one request in phases: admit, canonicalise, select, guard,
//!   rewrite; error answers; hyper's service for HTTP/2 clients.
//! - [`routes`] — route selection, a pure function from request facts to a route, and its explanations.
//! - `guards` — per-route allowlists, secret headers, rate limits, in-flight
//!   caps, Telegram redelivery suppression (`dedupe`).
//! - `upstream` — per-upstream hyper clients (https, HTTP/2) and per-worker
//!   pools of plain HTTP/1.1 connections.
//! - [`access`] — the one-line-per-request access log.
//! - [`config`] — the TOML file → a validated [`config::Config`]: plain data (routes,
//!   guards, TLS settings) that the modules above run.
//! - `connection`, [`metrics`], `recent`, `error`, [`canonical`],
//!   `client_ip`, [`tls`], `secret`, [`systemd`], [`logging`] — connection
//!   facts, Prometheus metrics with pre-registered handles, the status page's
//!   per-minute counters, error statuses, the canonical path, the client
//!   address rule, certificates (files and what ACME obtained), the one
//!   redacted secret type, sd_notify, log output.
//! - `internals` — what `fuzz/`, `benches/` and `tests/` drive directly (not an API).

#![forbid(unsafe_code)]

pub(crate) mod access;
pub(crate) mod acme;
pub(crate) mod admin;
pub(crate) mod canonical;
pub mod cli;
pub(crate) mod client_ip;
pub(crate) mod config;
mod connection;
pub mod control;
pub(crate) mod error;
pub(crate) mod guards;
mod http1;
pub mod init;
#[doc(hidden)]
pub mod internals;
pub mod lifecycle;
pub mod logging;
pub(crate) mod metrics;
pub(crate) mod proxy;
pub(crate) mod recent;
pub mod report;
pub(crate) mod routes;
pub(crate) mod secret;
pub(crate) mod server;
pub(crate) mod status;
pub mod systemd;
pub(crate) mod telegram;
pub(crate) mod tls;
pub(crate) mod upstream;

// The public surface: what the binary, `examples/` and the tests use (plus
// `internals` for fuzz targets, benches and test helpers). Everything else is
// crate-private, so the compiler reports what nothing uses.
pub use access::output::before_park as access_log_before_park;
pub use config::{Config, ConfigError};
pub use connection::ListenerKind;
pub use metrics::Metrics;
pub use proxy::State;
pub use server::{Server, run as serve};
pub use status::summary as status_summary;
pub use telegram::cli as telegram_cli;

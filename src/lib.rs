//! hookgate: a reverse proxy that routes webhook and callback paths to a
//! backend by rule and passes everything else to a frontend.
//!
//! Built for panels such as XBoard whose frontend and backend live on separate
//! domains, so that Telegram's webhook and payment notifications reach the
//! backend. See `README.md` for the configuration and the routing rules.
//!
//! # Layout
//! Top to bottom: the commands, then the request path (`server` → `http1` →
//! `proxy` → what one request uses), then plain data and small shared types.
//! A module imports only modules listed below it, and no file imports a file
//! that imports it back. `tests/module_order.rs` reads the order from here
//! (the names before each entry's dash, in turn) and checks both.
//! - `internals` — what `fuzz/`, `benches/` and `tests/` drive directly (not an API).
//! - [`init`], [`cli`] — `hookgate init`; the command line's declaration.
//! - [`lifecycle`], `admin`, [`status`], [`telegram`], [`report`], `acme`, [`control`], [`logging`] —
//!   start-up, signals, reload and shutdown; `/healthz` `/readyz` `/metrics`
//!   `POST /reload`; the status page and `/status.json`; webhook control,
//!   monitor and repair; what `check`/`route` print; obtaining and renewing
//!   `[listen.tls.acme]` certificates; the commands that talk to the daemon;
//!   log output.
//! - [`server`] — listeners, accept loops, connection limits, TLS and PROXY
//!   handshakes, HTTP/2 timers, graceful drain.
//! - `http1` — hookgate's own HTTP/1.1 engine: client connections and plain upstreams.
//! - [`proxy`] — one request in phases: admit, canonicalise, select, guard,
//!   rewrite; error answers; hyper's service for HTTP/2 clients.
//! - `upstream`, [`access`] — per-upstream hyper clients (https, HTTP/2) and
//!   per-worker pools of plain HTTP/1.1 connections; the one-line-per-request
//!   access log.
//! - `connection` — connection facts: the client, the listener's kind, the
//!   connection's clock.
//! - [`config`] — the TOML file → a validated [`config::Config`]: plain data
//!   (listeners, limits, upstreams, TLS settings, and the route table with its
//!   guards) that the modules above run.
//! - [`routes`], `guards` — the route table and route selection, a pure
//!   function from request facts to a route, with its explanations; per-route
//!   allowlists, secret headers, rate limits, in-flight caps and Telegram
//!   redelivery suppression (`dedupe`). `config` builds both from the file.
//! - [`tls`], `client_ip`, `error`, [`metrics`], `recent`, [`canonical`], `secret`, [`systemd`] —
//!   certificates (files and what ACME obtained), the client address rule,
//!   error statuses, Prometheus metrics with pre-registered handles, the
//!   status page's per-minute counters, the canonical path, the one redacted
//!   secret type, sd_notify.

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

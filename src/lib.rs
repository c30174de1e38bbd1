//! hookgate: a reverse proxy that routes webhook and callback paths to a
//! backend by rule and passes everything else to a frontend.
//!
//! Built for panels such as XBoard whose frontend and backend live on separate
//! domains, so that Telegram's webhook and payment notifications reach the
//! backend. See `README.md` for the configuration and the routing rules.
//!
//! # Layout
//! - [`config`] — the TOML file → a validated [`config::Config`].
//! - `connection` — what the request path may know about its client connection.
//! - [`canonical`] — the one canonical form of a path and host.
//! - [`client_ip`] — which address a request comes from (trusted proxies).
//! - [`guards`] — per-route allowlists, secret headers, rate limits, in-flight caps.
//! - [`routes`] — the compiled route table; a pure function from request facts to a route.
//! - [`proxy`] — the hyper service: canonicalise, select, forward, map errors.
//! - [`upstream`] — one pooled client per upstream, with its timeouts.
//! - [`server`] — accept loop, connection limits, head/idle timers, graceful drain.
//! - `http1` — hookgate's own HTTP/1.1 engine: client connections and plain upstreams.
//! - [`error`] — errors hookgate answers itself and their status codes.
//! - [`access`] — the one-line-per-request access log.
//! - [`metrics`] — Prometheus metrics with pre-registered handles.
//! - [`lifecycle`] — start-up, signals, reload, watchdog, shutdown.
//! - [`systemd`] — sd_notify, the watchdog interval, socket activation.
//! - [`admin`] — `/healthz`, `/readyz`, `/metrics`, `POST /reload`.
//! - [`control`] — the client side of `hookgate reload`.
//! - [`telegram`] — webhook control (`hookgate telegram ...`) and the webhook monitor.
//! - [`logging`] — text or JSON log output.
//! - [`report`] — what `hookgate check` and `hookgate route` print.

#![forbid(unsafe_code)]

pub mod access;
pub mod admin;
pub mod canonical;
pub mod client_ip;
pub mod config;
mod connection;
pub mod control;
pub mod error;
pub mod guards;
mod http1;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod report;
pub mod routes;
pub mod server;
pub mod systemd;
pub mod telegram;
pub mod tls;
pub mod upstream;

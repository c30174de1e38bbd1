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
//! - [`init`], [`spool_cli`], [`cli`] — `hookgate init`; `hookgate spool`
//!   (through the daemon's admin endpoints, or on the spool file when no
//!   daemon runs); the command line's declaration.
//! - [`lifecycle`], `admin`, [`status`], [`telegram`], [`report`], `acme`, [`control`], [`logging`] —
//!   start-up, signals, reload and shutdown; `/healthz` `/readyz` `/metrics`
//!   `POST /reload`; the status page and `/status.json`; webhook control,
//!   monitor and repair; what `check`/`route` print; obtaining and renewing
//!   `[listen.tls.acme]` certificates; the commands that talk to the daemon;
//!   log output.
//! - `delivery` — the spool's deliverer: kept requests to their upstreams, retries, dead letters.
//! - [`server`] — listeners, accept loops, connection limits, TLS and PROXY
//!   handshakes, HTTP/2 timers, graceful drain.
//! - `http2` — HTTP/2 clients: hyper's server and its service, which plans with
//!   `proxy` and sends to plain upstreams over the engine's pools (`http1`).
//! - `http1` — hookgate's own HTTP/1.1 engine: client connections and plain upstreams.
//! - [`proxy`] — one request in phases: admit, canonicalise, select, guard,
//!   rewrite; error answers.
//! - `upstream` — per-upstream hyper clients (https, HTTP/2) and per-worker
//!   pools of plain HTTP/1.1 connections.
//! - `hyper_glue` — the adapters between hyper's types and hookgate's: the
//!   request and response bodies hyper sends, and the HTTP/2 client stream
//!   that reports to its connection's clock.
//! - [`access`] — the one-line-per-request access log.
//! - `connection` — connection facts: the client, the listener's kind, the
//!   connection's clock.
//! - [`config`] — the TOML file → a validated [`config::Config`]: plain data
//!   (listeners, limits, upstreams, TLS settings, and the route table with its
//!   guards) that the modules above run.
//! - [`routes`], `guards` — the route table and route selection, a pure
//!   function from request facts to a route, with its explanations; per-route
//!   allowlists, secret headers, rate limits, in-flight caps and Telegram
//!   redelivery suppression (`dedupe`). `config` builds both from the file.
//! - `spool` — the durable request store (one SQLite file, one writer, group
//!   commit), its delivery queues in memory and the request path's `Keeping`.
//! - `verify` — signatures checked at the edge: each sender's scheme, a pure
//!   function of a request's headers, query and body.
//! - `cluster` — several hosts sharing state through Redis (`[cluster]`): the
//!   connection with its deadlines and health, and the leader lease.
//! - [`tls`], `client_ip`, `error`, [`metrics`], `recent`, `cloudflare`, [`canonical`], `secret`, [`systemd`], `poll_clock` —
//!   certificates (files and what ACME obtained), the client address rule,
//!   error statuses, Prometheus metrics with pre-registered handles, the
//!   status page's per-minute counters, Cloudflare's address ranges and the
//!   hint for a site behind Cloudflare that does not trust it, the canonical
//!   path, the one redacted secret type, sd_notify, one clock read per poll of a connection's task.
//!
//! # Errors
//! One policy, so that a reader knows what an `Err` holds before opening it:
//! - **What callers match on is a `thiserror` enum of the module's own** (a struct when
//!   there is one kind), named for what failed: `ConfigError`, `ReloadError`, `OrderError`. On
//!   the request path the kinds say who is at fault (the client, the upstream or us) and
//!   `error::ProxyError::status` is the one place a kind becomes a status code. The
//!   `#[error]` texts are pinned by tests: reword one only together with its test.
//! - **`io::Error` only at the socket edge**: `server`, `http1`, `upstream`'s pools and the
//!   sockets `systemd` passes, and only for failures that are IO. Past that edge it travels
//!   inside one of our enums beside what was being done (the file, the address); a failure
//!   that is not IO gets a variant of its own instead of an `io::Error` made up for it.
//! - **`anyhow` only at the top**: `main`, `lifecycle` and the CLI glue (`control`), whose
//!   `anyhow::Result`s go to `main` and nowhere else. `telegram::cli` is CLI glue too, but
//!   `main` calls it with plain types. `main` prints an error once with its cause chain
//!   (`{:#}`), so an error that can reach it shows a cause in its message or returns it from
//!   `source()`, not both. `main`'s `Failure` is its exit-code table, not an error type.
//! - **No `Result<_, ()>`, no `&'static str` or `String` errors**: a failure has a type that
//!   says what failed. A walk that stops early and is not failing returns `ControlFlow`.
//! - **No third-party error type in a signature that crosses a module**: it is wrapped in a
//!   variant of ours (`#[from]`, or `#[error(transparent)]` to keep its text). Trait methods
//!   whose signature a crate fixes (hyper's `Body`, rustls' verifiers, instant-acme's
//!   `HttpClient`) are the exception.
//! - **`Option` means absent, not failed**: a function that can fail returns `Result`, and its
//!   caller decides whether to log. The one exception is `config`'s validator, which records
//!   each problem (with its line) and returns `None` for what it could not build, so that a
//!   file's every problem is reported at once.

#![forbid(unsafe_code)]

pub(crate) mod access;
pub(crate) mod acme;
pub(crate) mod admin;
pub(crate) mod canonical;
pub mod cli;
pub(crate) mod client_ip;
pub(crate) mod cloudflare;
pub(crate) mod cluster;
pub(crate) mod config;
mod connection;
pub mod control;
mod delivery;
pub(crate) mod error;
pub(crate) mod guards;
mod http1;
mod http2;
mod hyper_glue;
pub mod init;
#[doc(hidden)]
pub mod internals;
pub mod lifecycle;
pub mod logging;
pub(crate) mod metrics;
pub(crate) mod poll_clock;
pub(crate) mod proxy;
pub(crate) mod recent;
pub mod report;
pub(crate) mod routes;
pub(crate) mod secret;
pub(crate) mod server;
mod spool;
pub mod spool_cli;
pub(crate) mod status;
pub mod systemd;
pub(crate) mod telegram;
pub(crate) mod tls;
pub(crate) mod upstream;
pub(crate) mod verify;

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

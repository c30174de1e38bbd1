//! What the request path may know about its client connection: who is at the
//! other end, what kind of listener accepted it, and its clock (the "request
//! in progress" mark and why a response was cut). The connection layer
//! (`server`, `http1`) fills these in; `proxy` and `access` only read them, so
//! nothing below the connection layer needs to reach up into it. `Shutdown`
//! is how a connection is told to drain or to close.

mod clock;
mod held;
pub mod timer;
mod watch;

use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderValue;
use tokio::sync::OwnedSemaphorePermit;

use crate::metrics::Metrics;

pub use clock::{AbortReason, ActiveRequest, ConnClock, Expired, SERVED_RESET_BURST, SERVED_RESETS_PER_SECOND};
pub use held::HeldChunk;
pub use watch::Watch;

/// How long a cut connection may take to write the `503` of a request still
/// waiting for its upstream (HTTP/1.1) or of its streams (HTTP/2) before it is dropped.
pub const LAST_ANSWER: std::time::Duration = std::time::Duration::from_millis(200);

/// The two ways shutdown reaches a connection, whichever front end serves it.
pub struct Shutdown {
    /// Finish the request in progress, then close.
    pub drain: tokio_util::sync::CancellationToken,
    /// `shutdown_grace` ran out: close now.
    pub cut: tokio_util::sync::CancellationToken,
}

/// What a request handler may know about its connection.
pub struct ConnContext {
    pub peer: SocketAddr,
    /// The peer's address as a header value (`X-Forwarded-For`), made once.
    pub peer_value: HeaderValue,
    pub kind: ListenerKind,
    pub clock: Arc<ConnClock>,
    /// This connection's `max_connections` slot, held, never read: it is
    /// released when the last holder of this context (a tunnel, say) is done.
    pub _slot: Arc<OwnedSemaphorePermit>,
    pub metrics: Arc<Metrics>,
}

impl ConnContext {
    /// `peer` as `X-Forwarded-For` names it: the address without the port.
    pub fn peer_value(peer: SocketAddr) -> HeaderValue {
        HeaderValue::try_from(peer.ip().to_string()).unwrap_or(HeaderValue::from_static("unknown"))
    }
}

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// Plain HTTP (`[listen] addrs`, or sockets from systemd).
    Plain,
    /// HTTPS (`[listen.tls] addrs`).
    Tls,
    /// Plain HTTP that redirects to HTTPS (`[listen.redirect] addrs`).
    Redirect,
}

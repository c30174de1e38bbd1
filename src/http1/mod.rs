//! hookgate's own HTTP/1.1 engine, for every plain and TLS HTTP/1.1 client
//! connection, and for every plain upstream (hyper serves HTTP/2 clients, see
//! `http2`, and speaks to https upstreams).
//!
//! One task per client connection drives the client socket and the upstream
//! connection it borrows, with no channel hand-off or second task per request;
//! buffers come from a per-worker free list and go back whenever the
//! connection is idle. The data path, in order:
//! - `serve`: the connection loop: heads, timers, drain, local answers.
//! - `head`: request and response heads (httparse + RFC 9112 framing rules).
//! - `forward`: one request to a plain upstream over a pooled connection.
//! - `gate`: bodies read whole first, on `dedupe` routes (redeliveries of an
//!   answered Telegram update) and `store` routes (kept in the spool).
//! - `upstream_side`: a pooled upstream connection's part of an exchange:
//!   the head out, the response head in, the retry rule (HTTP/2 clients' too).
//! - `request_body`, `response_body`, `unframing` and `chunked`: body copies
//!   each way, where a response body stands, chunked decoding.
//! - `splice`: long pass-through response bodies moved inside the kernel.
//! - `tunnel`: WebSocket and other upgrades.
//! - `hyper_path`: requests to https upstreams, through hyper's client.
//! - `date`: the `Date` header for responses that have none.

pub(crate) mod buffers;
pub(crate) mod chunked;
mod client;
mod date;
mod exchange;
mod forward;
mod gate;
pub(crate) mod head;
mod hyper_path;
mod io;
mod request_body;
mod response_body;
mod serve;
mod splice;
mod tunnel;
pub(crate) mod unframing;
pub(crate) mod upstream_side;
pub(crate) mod wire;

pub use buffers::{TRIM_EVERY as BUFFER_TRIM_EVERY, trim as trim_buffers};
pub use serve::serve;

#[cfg(test)]
mod tests;

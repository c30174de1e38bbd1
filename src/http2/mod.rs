//! HTTP/2 clients: hyper's server drives the connection, and `service` is
//! its service, one request in and one response out. It plans the request
//! with `proxy`, like the HTTP/1 engine does, and forwards it (`upstream`):
//! to a plain upstream in HTTP/1.1 over the engine's per-worker pools, from
//! the stream's own task (`pooled`), to an https one through its hyper client.
//! - `gate`: bodies read whole first, on `verify`, `dedupe` and `store` routes.
//! - `response_body`: the body hyper's server sends, with its read timeout
//!   and what a `dedupe` route read of it ahead.

mod gate;
mod pooled;
mod response_body;
mod service;
mod upstream;

pub use response_body::ResponseBody;
pub use service::handle;

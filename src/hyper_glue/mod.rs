//! The adapters between hyper's types and hookgate's, in one place: the
//! bodies hyper sends (`RequestBody` to an upstream through hyper's client,
//! `ResponseBody` to an HTTP/2 client through hyper's server), the error a
//! streamed body stops with (`BodyError`), and the stream wrapper that tells a
//! connection's clock about HTTP/2 traffic (`ClockedIo`).
//!
//! The two places that drive hyper use these and stay with what they drive:
//! `proxy::hyper_service` is the HTTP/2 front end (it plans with `proxy`), and
//! `http1::hyper_path` is the engine's way to https upstreams (it reads the
//! client with the engine). Not for protocol logic: nothing here decides what
//! a request or a response is, only how its bytes reach hyper.

mod clocked_io;
mod request_body;
mod response_body;

pub use clocked_io::ClockedIo;
pub use request_body::{BodyError, RequestBody};
pub use response_body::{ReadAhead, ResponseBody};

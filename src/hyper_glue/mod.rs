//! The adapters between hyper's types and hookgate's, in one place: the
//! client's body on its way to an upstream (`RequestBody`), the error a
//! streamed body stops with (`BodyError`) and the pause limit both body
//! directions use (`poll_timed_frame`), and the stream wrapper that tells a
//! connection's clock about HTTP/2 traffic (`ClockedIo`).
//!
//! The places that drive hyper use these and stay with what they drive:
//! `http2` is the HTTP/2 front end (with its `ResponseBody`, the body hyper's
//! server sends), and `http1::hyper_path` is the engine's way to https
//! upstreams (it reads the client with the engine). Not for protocol logic: nothing here decides what
//! a request or a response is, only how its bytes reach hyper.

mod clocked_io;
mod request_body;

pub use clocked_io::ClockedIo;
pub use request_body::{BodyError, RequestBody, poll_timed_frame};

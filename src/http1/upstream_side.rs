//! The upstream side of one exchange on a pooled plain-HTTP connection,
//! shared by the engine (`forward`) and HTTP/2 clients' requests
//! (`http2::pooled`): a failed connect counted and logged, the request head
//! written and the response head read within `response_timeout`, why no head
//! came, and the rule for sending a request again on a fresh connection.

use bytes::{Buf, BytesMut};
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::ReadHalf;

use super::buffers;
use super::head::{self, Framing, ResponseHead, ResponseHeadError};
use crate::connection::timer::{Deadline, Watchdog};
use crate::error::ProxyError;
use crate::poll_clock;
use crate::upstream::UpstreamClient;
use crate::upstream::pool::UpstreamConn;

/// Longest response head accepted from an upstream.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// The retry rule: a request goes out again, once, on a fresh connection
/// when a reused pooled connection failed before any of the response came
/// (the upstream had closed it while it sat idle). Only when the upstream
/// cannot have acted on it twice: the method is idempotent and the whole
/// request, body included, went out in the first write.
pub struct Retry {
    allowed: bool,
}

impl Retry {
    pub fn new(method: &Method, body_left: Framing) -> Self {
        let idempotent =
            [Method::GET, Method::HEAD, Method::OPTIONS, Method::PUT, Method::DELETE, Method::TRACE].contains(method);
        Retry { allowed: idempotent && body_left == Framing::Empty }
    }

    /// Whether to try again after `conn` failed; true at most once.
    pub fn again(&mut self, conn: &UpstreamConn) -> bool {
        let again = self.allowed && conn.reused;
        self.allowed &= !again;
        again
    }
}

/// No connection to `upstream` could be made: counted, logged, and answered 502.
pub fn connect_failed(upstream: &UpstreamClient, error: &std::io::Error) -> ProxyError {
    let name = &upstream.config.name;
    // Why, once: when it starts failing or the reason changes, not for every request while it does.
    if upstream.metrics.connect_failed(&error.to_string()) {
        tracing::warn!(upstream = %name, url = %upstream.config.url, "cannot connect: {error}");
    } else {
        tracing::debug!(upstream = %name, "connect failed: {error}");
    }
    ProxyError::UpstreamUnreachable
}

/// Writes the head (and a body already here) within `response_timeout` of the first wait.
pub async fn write_upstream(
    stream: &mut (impl AsyncWrite + Unpin),
    bytes: &[u8],
    watchdog: &mut Watchdog,
    upstream: &UpstreamClient,
) -> std::io::Result<()> {
    let limit = upstream.config.response_timeout;
    let written = watchdog.run(Deadline::In(limit), stream.write_all(bytes)).await;
    written.unwrap_or(Err(std::io::ErrorKind::TimedOut.into()))
}

/// Why no response head came from the upstream.
#[derive(Debug, thiserror::Error)]
pub enum HeadFailure {
    #[error("no response head within response_timeout")]
    Timeout,
    /// Closed or reset before a whole head.
    #[error("the upstream closed before a whole response head")]
    Closed,
    #[error(transparent)]
    Invalid(ResponseHeadError),
}

impl HeadFailure {
    /// The answer to the client, with the upstream's metrics and log told.
    pub fn into_error(self, upstream: &UpstreamClient) -> ProxyError {
        match self {
            HeadFailure::Timeout => {
                upstream.metrics.timed_out(upstream.config.response_timeout);
                ProxyError::UpstreamTimeout
            }
            HeadFailure::Closed => {
                // Not an invalid response: none came (an overloaded upstream resets, for one).
                tracing::warn!(upstream = %upstream.config.name, "{self}");
                ProxyError::UpstreamBroken
            }
            HeadFailure::Invalid(why) => {
                tracing::warn!(upstream = %upstream.config.name, "upstream sent an invalid response head: {why}");
                ProxyError::UpstreamBroken
            }
        }
    }
}

/// Completes once the upstream answers while the request body is still
/// going out: the start of a final response head is in `buf`, or the
/// upstream closed. Interim heads (`100 Continue` sent on its own) are
/// dropped as they come, and the body goes on: such an upstream waits for it.
pub async fn early_answer(stream: &ReadHalf<'_>, buf: &mut BytesMut) {
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        buffers::ensure(buf);
        match stream.try_read_buf(buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        }
        loop {
            match head::parse_response(buf, false, MAX_RESPONSE_HEAD) {
                Ok(Some(head)) if is_interim(head.status) => {
                    buf.advance(head.len);
                    buffers::give_ranges(head.headers);
                }
                // Nothing, or part of a head: which kind it is shows once it is whole.
                Ok(None) if buf.len() < STATUS_LINE_START => break,
                Ok(None) if buf.starts_with(b"HTTP/1.1 1") || buf.starts_with(b"HTTP/1.0 1") => break,
                // A final head, the start of one, or a head that is not valid (`read_response_head` says why).
                Ok(_) | Err(_) => return,
            }
        }
    }
}

/// Enough bytes of a status line to tell an interim head (`HTTP/1.1 1xx`) from a final one.
const STATUS_LINE_START: usize = b"HTTP/1.1 1".len();

/// An interim response, which is not passed on (`101` ends the exchange's HTTP instead).
fn is_interim(status: u16) -> bool {
    (100..200).contains(&status) && status != 101
}

/// Reads the final response head (interim 1xx heads other than 101 are
/// skipped) within `response_timeout`, counted from the end of the request
/// however long its body took. The head stays at the start of `buf`.
pub async fn read_response_head(
    conn: &mut UpstreamConn,
    buf: &mut BytesMut,
    is_head: bool,
    watchdog: &mut Watchdog,
    upstream: &UpstreamClient,
) -> Result<ResponseHead, HeadFailure> {
    let deadline = poll_clock::now() + upstream.config.response_timeout;
    loop {
        if !buf.is_empty() {
            match head::parse_response(buf, is_head, MAX_RESPONSE_HEAD) {
                Err(why) => return Err(HeadFailure::Invalid(why)),
                Ok(Some(head)) if is_interim(head.status) => {
                    buf.advance(head.len);
                    continue;
                }
                Ok(Some(head)) if head.headers.len() > head::RESPONSE_FIELDS => {
                    return Err(HeadFailure::Invalid(ResponseHeadError::Malformed("too many headers")));
                }
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
            }
        }
        buffers::ensure(buf);
        match watchdog.run(Deadline::At(deadline), conn.stream.read_buf(buf)).await {
            None => return Err(HeadFailure::Timeout),
            Some(Ok(0) | Err(_)) => return Err(HeadFailure::Closed),
            Some(Ok(_)) => {}
        }
    }
}

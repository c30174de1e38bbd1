//! The client side of an engine connection: its socket, the bytes read and
//! not yet used, the limits it is held to and the one timer its waits share.
//! Reading heads and body bytes, answering `Expect: 100-continue`, and
//! recording why a write to the client failed happen here; what to send is
//! decided by the exchange (`forward`, the answer path in `exchange`).

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::buffers;
use super::head::{self, HeadError, HeadLimits, RequestHead};
use super::io::{Io, SendError, send_all, timed};
use crate::config::Limits;
use crate::connection::timer::{Deadline, Watchdog};
use crate::connection::{AbortReason, ConnContext};
use crate::error::ProxyError;

/// How long a closing connection may keep reading what its client still sends (see `Client::close`).
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(5);
/// ... and how long the client may pause meanwhile.
const LINGER_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// The client side of a connection and what it is held to.
pub struct Client<S> {
    pub io: S,
    /// Bytes read from the client and not yet used; unallocated while idle.
    pub rbuf: BytesMut,
    pub limits: Arc<Limits>,
    pub conn: Arc<ConnContext>,
    /// Times the waits for the next request, its head, the upstream write and the response head.
    pub watchdog: Watchdog,
    /// The client may still be sending a request body nobody read: `close` lingers.
    pub linger: bool,
}

/// Why no request head was read.
#[derive(Debug, thiserror::Error)]
pub enum HeadRead {
    /// The client closed (or reset) before sending a whole head.
    #[error("the client closed before a whole request head")]
    Closed,
    #[error("request head not complete within header_timeout")]
    Timeout,
    #[error(transparent)]
    Refused(HeadError),
}

/// Why no more request body bytes were read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Nothing arrived for `body_timeout`.
    #[error("no request body bytes within body_timeout")]
    Timeout,
    /// The client closed or reset the connection.
    #[error("the client closed before its body ended")]
    Closed,
}

impl From<ReadError> for ProxyError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Timeout => ProxyError::BodyTimeout,
            ReadError::Closed => ProxyError::ClientAborted,
        }
    }
}

impl<S: Io> Client<S> {
    pub fn new(io: S, conn: Arc<ConnContext>, limits: Arc<Limits>) -> Self {
        Client { io, rbuf: BytesMut::new(), limits, conn, watchdog: Watchdog::default(), linger: false }
    }

    /// Reads until a whole head is buffered, within `header_timeout` of its first byte.
    pub async fn read_head(&mut self) -> Result<RequestHead, HeadRead> {
        let limits = HeadLimits {
            max_header_bytes: self.limits.max_header_bytes,
            max_uri_bytes: self.limits.max_uri_bytes,
            max_headers: self.limits.max_headers,
        };
        let deadline = crate::poll_clock::now() + self.limits.header_timeout;
        buffers::ensure(&mut self.rbuf);
        loop {
            if !self.rbuf.is_empty() {
                match head::parse_request(&mut self.rbuf, limits) {
                    Ok(Some(head)) => return Ok(head),
                    Ok(None) => {}
                    Err(e) => return Err(HeadRead::Refused(e)),
                }
            }
            if self.rbuf.capacity() - self.rbuf.len() < 1024 {
                self.rbuf.reserve(buffers::BUF_SIZE);
            }
            match self.watchdog.run(Deadline::At(deadline), self.io.read_buf(&mut self.rbuf)).await {
                None => return Err(HeadRead::Timeout),
                Some(Ok(0) | Err(_)) => return Err(HeadRead::Closed),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Reads more of a request body into `rbuf`, within `body_timeout`.
    pub async fn read_body(&mut self) -> Result<(), ReadError> {
        buffers::ensure(&mut self.rbuf);
        if self.rbuf.capacity() - self.rbuf.len() < 1024 {
            self.rbuf.reserve(buffers::BUF_SIZE);
        }
        match timed(self.limits.body_timeout, self.io.read_buf(&mut self.rbuf)).await {
            None => Err(ReadError::Timeout),
            Some(Ok(0) | Err(_)) => Err(ReadError::Closed),
            Some(Ok(_)) => Ok(()),
        }
    }

    /// hookgate answers the client's `Expect: 100-continue` itself, once the
    /// request is routed and admitted (the upstream never sees the header).
    /// Returns whether the client can still be written to.
    pub async fn send_continue(&mut self) -> bool {
        match send_all(&mut self.io, b"HTTP/1.1 100 Continue\r\n\r\n", self.limits.send_timeout, |_| {}).await {
            Ok(()) => true,
            Err(e) => {
                self.note_send_error(e);
                false
            }
        }
    }

    /// Closes the connection after its last response: the write side is
    /// shut down (within `send_timeout`), so the client reads the end. When
    /// the client may still be sending a body that was not read, what it
    /// sends is read and dropped for a while first, as nginx's lingering
    /// close does: a socket closed with unread bytes is reset by the kernel,
    /// and the reset can destroy the response before the client has read it.
    pub async fn close(&mut self) {
        let _ = tokio::time::timeout(self.limits.send_timeout, self.io.shutdown()).await;
        if self.linger {
            Box::pin(self.drop_what_comes()).await;
        }
    }

    /// Reads and drops the client's bytes until it closes, pauses for
    /// `LINGER_PAUSE` or `LINGER_TIME` has passed.
    async fn drop_what_comes(&mut self) {
        let until = crate::poll_clock::now() + LINGER_TIME;
        buffers::ensure(&mut self.rbuf);
        loop {
            self.rbuf.clear();
            let pause = until.min(crate::poll_clock::now() + LINGER_PAUSE);
            match tokio::time::timeout_at(pause, self.io.read_buf(&mut self.rbuf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
        }
    }

    /// Records why a write to the client failed, for the access log.
    pub fn note_send_error(&self, error: SendError) {
        match error {
            SendError::Timeout => {
                self.conn.clock.set_abort(AbortReason::ClientTimeout);
                tracing::warn!(client = %self.conn.peer, "client read nothing for send_timeout; closing");
            }
            SendError::Closed => self.conn.clock.set_abort(AbortReason::ClientClosed),
        }
    }
}

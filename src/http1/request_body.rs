//! Request bodies, from the client to where they go: `pump` carries a body
//! to a `BodySink` (an upstream socket, which gets hookgate's own chunked
//! framing, or the channel feeding hyper's client), enforcing `body_timeout`
//! on every read and `max_body` on the total. Chunked bodies are decoded and
//! checked on the way. Not for responses: `response_body` copies those.

use std::time::Duration;

use bytes::{Buf, Bytes};
use http::header::HeaderMap;
use http_body::Frame;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::chunked::{ChunkedDecoder, write_size};
use super::client::Client;
use super::head::Framing;
use super::io::{Io, timed};
use crate::error::{BadRequest, ProxyError};
use crate::hyper_glue::BodyError;

/// Why a request body did not get through.
#[derive(Debug, thiserror::Error)]
pub enum PumpError {
    /// The client's fault: too slow, too large, cut off or malformed.
    #[error(transparent)]
    Client(ProxyError),
    /// The upstream stopped taking it.
    #[error(transparent)]
    Upstream(#[from] SinkClosed),
}

/// The request body's destination stopped taking it (the upstream closed,
/// stopped reading for its write timeout, or hyper's client dropped the channel).
#[derive(Debug, thiserror::Error)]
#[error("the upstream stopped taking the request body")]
pub struct SinkClosed;

/// Where a request body goes.
pub trait BodySink {
    /// Body bytes (decoded).
    async fn data(&mut self, bytes: &[u8]) -> Result<(), SinkClosed>;
    /// The end of a chunked body, with its trailer lines (each ending in CRLF).
    async fn end_chunked(&mut self, trailers: &[u8]) -> Result<(), SinkClosed>;
}

/// An upstream socket (or its write half): chunked bodies are framed again by hookgate.
pub struct SocketSink<W> {
    pub stream: W,
    pub chunked: bool,
    pub write_timeout: Duration,
    pub scratch: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> SocketSink<W> {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), SinkClosed> {
        match timed(self.write_timeout, self.stream.write_all(bytes)).await {
            Some(Ok(())) => Ok(()),
            _ => Err(SinkClosed),
        }
    }
}

impl<W: AsyncWrite + Unpin> BodySink for SocketSink<W> {
    async fn data(&mut self, bytes: &[u8]) -> Result<(), SinkClosed> {
        if !self.chunked {
            return self.write(bytes).await;
        }
        let mut framed = std::mem::take(&mut self.scratch);
        framed.clear();
        write_size(&mut framed, bytes.len());
        framed.extend_from_slice(bytes);
        framed.extend_from_slice(b"\r\n");
        let written = self.write(&framed).await;
        self.scratch = framed;
        written
    }

    async fn end_chunked(&mut self, trailers: &[u8]) -> Result<(), SinkClosed> {
        let mut end = Vec::with_capacity(5 + trailers.len());
        end.extend_from_slice(b"0\r\n");
        end.extend_from_slice(trailers);
        end.extend_from_slice(b"\r\n");
        self.write(&end).await
    }
}

/// The channel feeding hyper's client (which frames the body itself).
pub struct ChannelSink(pub mpsc::Sender<Result<Frame<Bytes>, BodyError>>);

impl BodySink for ChannelSink {
    async fn data(&mut self, bytes: &[u8]) -> Result<(), SinkClosed> {
        self.0.send(Ok(Frame::data(Bytes::copy_from_slice(bytes)))).await.map_err(|_| SinkClosed)
    }

    /// The trailer lines (checked by the chunked decoder) become a trailers
    /// frame; hyper sends those the request's `Trailer` header declares.
    async fn end_chunked(&mut self, trailers: &[u8]) -> Result<(), SinkClosed> {
        let fields: HeaderMap = super::wire::trailer_fields(trailers).collect();
        if fields.is_empty() {
            return Ok(());
        }
        self.0.send(Ok(Frame::trailers(fields))).await.map_err(|_| SinkClosed)
    }
}

/// Copies the client's request body, framed as `framing`, to `sink`.
pub async fn pump<S: Io>(
    client: &mut Client<S>,
    sink: &mut impl BodySink,
    framing: Framing,
    max_body: u64,
) -> Result<(), PumpError> {
    let mut left = match framing {
        Framing::Length(n) => n,
        Framing::Chunked => u64::MAX,
        Framing::Empty | Framing::UntilClose => return Ok(()),
    };
    let mut decoder = (framing == Framing::Chunked).then(|| ChunkedDecoder::new(client.limits.max_header_bytes));
    let mut decoded = Vec::new();
    let mut total = 0u64;
    loop {
        if !client.rbuf.is_empty() {
            let data: &[u8] = match decoder.as_mut() {
                None => {
                    let take = (client.rbuf.len() as u64).min(left) as usize;
                    decoded.clear();
                    decoded.extend_from_slice(&client.rbuf[..take]);
                    client.rbuf.advance(take);
                    left -= take as u64;
                    &decoded
                }
                Some(decoder) => {
                    decoded.clear();
                    let used = decoder
                        .decode(&client.rbuf, &mut decoded)
                        .map_err(|_| PumpError::Client(ProxyError::BadRequest(BadRequest::MalformedBody)))?;
                    client.rbuf.advance(used);
                    &decoded
                }
            };
            total += data.len() as u64;
            if total > max_body {
                return Err(PumpError::Client(ProxyError::BodyTooLarge));
            }
            if !data.is_empty() {
                sink.data(data).await?;
            }
            match &decoder {
                Some(decoder) if decoder.is_done() => {
                    return Ok(sink.end_chunked(decoder.trailers()).await?);
                }
                None if left == 0 => return Ok(()),
                _ => {}
            }
        }
        client.read_body().await.map_err(|e| PumpError::Client(e.into()))?;
    }
}

//! Where a response body from an upstream stands while it is read: how
//! many bytes a length still expects, the chunked decoder, or whether the
//! close that ends it has come. The engine's body copy (`response_body`) and
//! HTTP/2's pooled responses (`http2::pooled`) read bodies through it.

use bytes::{Buf, BytesMut};

use super::chunked::{ChunkError, ChunkedDecoder};
use super::head::Framing;

/// Where a response body stands while it is read.
pub enum Unframing {
    Empty,
    /// Bytes still expected.
    Length(u64),
    /// The decoder, and the body bytes it decoded last.
    Chunked(ChunkedDecoder, Vec<u8>),
    /// Runs until the upstream closes; whether it has.
    UntilClose(bool),
}

impl Unframing {
    /// `max_trailers`: how many bytes of trailer fields a chunked body may
    /// end with (`max_header_bytes`, as for a request's).
    pub fn new(from: Framing, max_trailers: usize) -> Self {
        match from {
            Framing::Empty => Unframing::Empty,
            Framing::Length(n) => Unframing::Length(n),
            Framing::Chunked => Unframing::Chunked(ChunkedDecoder::new(max_trailers), Vec::new()),
            Framing::UntilClose => Unframing::UntilClose(false),
        }
    }

    /// Takes the body bytes now in `ubuf`: how many of its bytes are body
    /// bytes to pass on as they are (a chunked body is decoded instead, its
    /// framing consumed), and whether the body is done.
    #[inline(always)]
    pub fn next(&mut self, ubuf: &mut BytesMut) -> Result<(usize, bool), ChunkError> {
        match self {
            Unframing::Empty => Ok((0, true)),
            Unframing::Length(left) => {
                let take = (ubuf.len() as u64).min(*left) as usize;
                *left -= take as u64;
                Ok((take, *left == 0))
            }
            Unframing::Chunked(decoder, decoded) => {
                decoded.clear();
                let used = decoder.decode(ubuf, decoded)?;
                ubuf.advance(used);
                Ok((0, decoder.is_done()))
            }
            Unframing::UntilClose(closed) => Ok((ubuf.len(), *closed)),
        }
    }

    /// The body bytes `next` found: decoded chunks, or the first `raw` bytes of `ubuf`.
    #[inline]
    pub fn data<'a>(&'a self, ubuf: &'a [u8], raw: usize) -> &'a [u8] {
        match self {
            Unframing::Chunked(_, decoded) => decoded,
            _ => &ubuf[..raw],
        }
    }

    pub fn trailers(&self) -> &[u8] {
        match self {
            Unframing::Chunked(decoder, _) => decoder.trailers(),
            _ => &[],
        }
    }

    /// Bytes a `Length` body still expects (0 for the others).
    pub fn left(&self) -> u64 {
        if let Unframing::Length(left) = self { *left } else { 0 }
    }

    pub fn upstream_closed(&mut self) {
        if let Unframing::UntilClose(closed) = self {
            *closed = true;
        }
    }
}

//! Request and response heads: parsed with `httparse`, then held to RFC
//! 9112's rules before anything is trusted.
//!
//! A request head is refused (never forwarded) when its framing is ambiguous:
//! Content-Length together with Transfer-Encoding, a repeated or non-numeric
//! Content-Length, a Transfer-Encoding other than one `chunked`, a line ending
//! in a bare LF or CR, obs-fold, or bytes `httparse` rejects (NUL, invalid
//! token characters). A response head from an upstream gets the same framing
//! checks (and a transfer coding other than `chunked`, which hookgate would
//! drop but cannot undo); what fails them is a broken upstream (502), never
//! passed on.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri, Version, request};

use super::buffers;
use crate::proxy::HeadFacts;
use facts::Facts;

/// The most header lines either parser looks at; `max_headers` is checked below it.
const HEADER_SLOTS: usize = 256;

/// The most header lines the engine forwards from an upstream's response head
/// (more is a 502): the head hookgate writes for the client adds up to four of
/// its own (`Via`, `Date`, the framing, `Connection`), and must still be one
/// its own parser (and a hookgate in front of it) reads.
pub const RESPONSE_FIELDS: usize = HEADER_SLOTS - 8;

thread_local! {
    /// Each header's name and where its value sits, between parsing a head and
    /// splitting it off the read buffer (the values then share the head's
    /// bytes). Kept per thread, so a request allocates nothing for it.
    static PARSED: RefCell<Vec<(HeaderName, Range<usize>)>> = const { RefCell::new(Vec::new()) };
}

/// The start of HTTP/2's connection preface (RFC 9113 §3.4), which httparse
/// refuses as a bad version.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// How a message's body is framed on the wire (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all.
    Empty,
    Length(u64),
    Chunked,
    /// The body runs until the sender closes the connection (responses only).
    UntilClose,
}

/// Why a request head was refused, and so which status answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("request target longer than max_uri_bytes")]
    UriTooLong,
    #[error("request head larger than max_header_bytes")]
    TooLarge,
    #[error("request head with more than max_headers fields")]
    TooManyFields,
    #[error("both Content-Length and Transfer-Encoding")]
    FramingConflict,
    #[error("malformed request head: {0}")]
    Malformed(&'static str),
    /// HTTP/2's connection preface (prior knowledge, or h2c): HTTP/2 is served over TLS only.
    #[error("HTTP/2 connection preface on a listener that speaks HTTP/1.1")]
    CleartextHttp2,
}

/// Why an upstream's response head cannot be passed on: the upstream is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResponseHeadError {
    #[error("response head too large")]
    TooLarge,
    #[error("status code outside 100-599")]
    Status,
    #[error("invalid Content-Length")]
    ContentLength,
    #[error("both Content-Length and Transfer-Encoding")]
    FramingConflict,
    #[error("Transfer-Encoding other than chunked")]
    Coding,
    #[error("{0}")]
    Malformed(&'static str),
}

/// A request head, ready for the proxy.
#[derive(Debug)]
pub struct RequestHead {
    pub parts: request::Parts,
    pub framing: Framing,
    /// The client may send another request on this connection.
    pub keep_alive: bool,
    /// `Expect: 100-continue` was sent.
    pub expects_continue: bool,
    /// What its framing and `Host`/`Upgrade` fields said, for planning.
    pub facts: HeadFacts,
}

/// The limits a request head is held to.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub max_header_bytes: usize,
    pub max_uri_bytes: usize,
    pub max_headers: usize,
}

/// Parses a request head from the start of `buf` and takes it off the front.
/// `Ok(None)` means more bytes are needed (and `buf` is still within the
/// limits). The head's bytes are shared, not copied: the target and every
/// header value point into them.
pub fn parse_request(buf: &mut BytesMut, limits: HeadLimits) -> Result<Option<RequestHead>, HeadError> {
    // Uninitialised slots: zeroing 256 of them cost more than parsing a head.
    let mut slots = [const { MaybeUninit::uninit() }; HEADER_SLOTS];
    let mut req = httparse::Request::new(&mut []);
    let status = req.parse_with_uninit_headers(buf, &mut slots).map_err(|e| match e {
        httparse::Error::TooManyHeaders => HeadError::TooManyFields,
        other => HeadError::Malformed(describe(other)),
    });
    let len = match status {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return partial(buf, limits).map(|()| None),
        Err(HeadError::Malformed(_)) if request_line_len(buf) > limits.max_uri_bytes + 64 => {
            return Err(HeadError::UriTooLong);
        }
        Err(HeadError::Malformed(_)) if buf.starts_with(HTTP2_PREFACE) => return Err(HeadError::CleartextHttp2),
        Err(e) => return Err(e),
    };
    if len > limits.max_header_bytes {
        return Err(HeadError::TooLarge);
    }
    if req.headers.len() > limits.max_headers {
        return Err(HeadError::TooManyFields);
    }
    check_line_endings(&buf[..len])?;
    let target = req.path.unwrap_or_default();
    if target.len() > limits.max_uri_bytes {
        return Err(HeadError::UriTooLong);
    }
    // A request target has no fragment (RFC 9112 §3.2); the URI parser would drop it without a word.
    if memchr::memchr(b'#', target.as_bytes()).is_some() {
        return Err(HeadError::Malformed("fragment in request target"));
    }
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
        .map_err(|_| HeadError::Malformed("invalid method"))?;
    let version = if req.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    // Where the parts sit in the head, so they can share its bytes once it is split off.
    let target = range_in(buf, target.as_bytes());
    let count = req.headers.len();
    let facts = note_headers(req.headers, buf)?;
    // Checked before the head is taken off `buf`: a refused head stays there, for its log line.
    let framing = facts.request_framing(version)?;
    let head = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(target)).map_err(|_| HeadError::Malformed("invalid request target"))?;
    let (headers, host) = shared_headers(&head, count)?;
    let keep_alive = facts.keep_alive(version);
    // Filled in directly: `request::Builder` moves the parts through a closure per field.
    let (mut parts, ()) = request::Request::new(()).into_parts();
    (parts.method, parts.uri, parts.version, parts.headers) = (method, uri, version, headers);
    // An HTTP/1.0 client cannot have meant Expect (RFC 9110 §10.1.1): no 100 for it.
    let expects_continue = facts.expects_continue && version == Version::HTTP_11;
    // The framing was checked above: any other Transfer-Encoding is refused there.
    let (hosts, host) = (facts.hosts.min(2), host.filter(|_| facts.hosts == 1));
    let upgrade = facts.upgrade && version == Version::HTTP_11;
    let facts = HeadFacts { host, hosts, framing_ok: true, content_length: facts.content_length, upgrade };
    Ok(Some(RequestHead { parts, framing, keep_alive, expects_continue, facts }))
}

/// Checks each header's name and notes what the framing and connection
/// headers say; the names and where each value sits in `buf` wait in
/// `PARSED` until the head is split off (`shared_headers`).
#[inline(always)]
fn note_headers(fields: &[httparse::Header<'_>], buf: &[u8]) -> Result<Facts, HeadError> {
    let mut facts = Facts::default();
    PARSED.with_borrow_mut(|parsed| {
        parsed.clear();
        for h in fields {
            // Dropped, as nginx does by default: a CGI-style upstream (PHP's
            // `$_SERVER`, Symfony's header bag) reads `X_Forwarded_For` as
            // `X-Forwarded-For`, which hookgate sets and rules read.
            if h.name.as_bytes().contains(&b'_') {
                continue;
            }
            let name =
                HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| HeadError::Malformed("invalid header name"))?;
            facts.note(h.name.as_bytes(), h.value)?;
            parsed.push((name, range_in(buf, h.value)));
        }
        Ok::<_, HeadError>(())
    })?;
    Ok(facts)
}

/// The header map (from the worker's free list), its values sharing
/// `head`'s bytes, and the (last) `Host` value. The map has room for the client's `count` headers at least: the engine
/// writes the ones hookgate adds straight into the upstream's head (`headers::Added`).
#[inline(always)]
fn shared_headers(head: &Bytes, count: usize) -> Result<(HeaderMap, Option<HeaderValue>), HeadError> {
    let mut headers = buffers::take_map(count);
    let mut host = None;
    PARSED.with_borrow_mut(|parsed| {
        for (name, value) in parsed.drain(..) {
            let value = HeaderValue::from_maybe_shared(head.slice(value))
                .map_err(|_| HeadError::Malformed("invalid header value"))?;
            if name == http::header::HOST {
                host = Some(value.clone());
            }
            headers.append(name, value);
        }
        Ok((headers, host))
    })
}

/// What the access line of a refused head can say of it: its request line.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestLine {
    pub method: Method,
    /// Without its query, which may hold a secret.
    pub path: String,
    /// `None` for a version other than HTTP/1.0 and HTTP/1.1.
    pub version: Option<Version>,
}

/// The request line of a refused head, if its method and target could be
/// read (a target longer than `max_uri_bytes` is not kept).
pub fn request_line(buf: &[u8], max_uri_bytes: usize) -> Option<RequestLine> {
    let mut req = httparse::Request::new(&mut []);
    // The line is read before the fields, so it is there whatever they are.
    let _ = req.parse(buf);
    let method = Method::from_bytes(req.method?.as_bytes()).ok()?;
    let path = req.path.filter(|target| target.len() <= max_uri_bytes)?;
    let path = path.split('?').next().unwrap_or_default().to_string();
    let version = req.version.map(|minor| if minor == 0 { Version::HTTP_10 } else { Version::HTTP_11 });
    Some(RequestLine { method, path, version })
}

/// A head that has not ended yet is fine while it is within the limits. Its
/// line endings are checked once it is whole, not again on every read.
fn partial(buf: &[u8], limits: HeadLimits) -> Result<(), HeadError> {
    if request_line_len(buf) > limits.max_uri_bytes + 64 {
        return Err(HeadError::UriTooLong);
    }
    if buf.len() > limits.max_header_bytes {
        return Err(HeadError::TooLarge);
    }
    Ok(())
}

/// Length of the request line so far (leading empty lines skipped).
fn request_line_len(buf: &[u8]) -> usize {
    let start = buf.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(buf.len());
    buf[start..].iter().position(|&b| b == b'\n').unwrap_or(buf.len() - start)
}

/// Every line must end in CRLF: a bare LF or a bare CR is refused, since
/// another parser could split the head differently (RFC 9112 §2.2).
fn check_line_endings(head: &[u8]) -> Result<(), HeadError> {
    // Only the line-ending bytes are looked at, found with a vectorised search.
    for i in memchr::memchr2_iter(b'\r', b'\n', head) {
        match head[i] {
            b'\n' if i == 0 || head[i - 1] != b'\r' => return Err(HeadError::Malformed("bare LF")),
            b'\r' if head.get(i + 1).is_some_and(|&next| next != b'\n') => {
                return Err(HeadError::Malformed("bare CR"));
            }
            _ => {}
        }
    }
    Ok(())
}

fn describe(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

/// A response head from an upstream, kept as offsets into the read buffer so
/// it can be written on without copying into a map.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: u16,
    /// Bytes of the head, up to and including its blank line.
    pub len: usize,
    pub reason: Range<usize>,
    /// Each header's name and value.
    pub headers: buffers::HeaderRanges,
    pub framing: Framing,
    /// The upstream will close the connection after this response.
    pub close: bool,
    /// Its `Connection` header names headers that must not be passed on.
    pub names_headers: bool,
    /// How many seconds the upstream keeps an idle connection, if it said
    /// (`Keep-Alive: timeout=N`). Seconds in a `u16`: every exchange holds it.
    idle_hint_seconds: Option<u16>,
}

impl ResponseHead {
    /// How long the upstream keeps an idle connection, if it said.
    pub fn idle_hint(&self) -> Option<Duration> {
        self.idle_hint_seconds.map(|seconds| Duration::from_secs(seconds.into()))
    }
}

/// Parses an upstream's response head from the start of `buf`; `Ok(None)`
/// means more bytes are needed. `head_request` says the body is absent
/// whatever the headers claim. An error means the upstream is broken.
pub fn parse_response(
    buf: &[u8],
    head_request: bool,
    max_bytes: usize,
) -> Result<Option<ResponseHead>, ResponseHeadError> {
    let mut slots = [const { MaybeUninit::uninit() }; HEADER_SLOTS];
    let mut res = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut res, buf, &mut slots);
    let len = match parsed.map_err(|e| ResponseHeadError::Malformed(describe(e)))? {
        // The limit holds however the head arrived: whole in one read or in pieces.
        httparse::Status::Complete(len) if len > max_bytes => return Err(ResponseHeadError::TooLarge),
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial if buf.len() > max_bytes => return Err(ResponseHeadError::TooLarge),
        httparse::Status::Partial => return Ok(None),
    };
    let status = res.code.unwrap_or_default();
    // Three digits, the first 1-5 (RFC 9110 §15): `020` or `600` cannot be
    // passed on (it would go out as `20`, not a status line at all).
    if !(100..600).contains(&status) {
        return Err(ResponseHeadError::Status);
    }
    let version = if res.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    let reason = res.reason.map_or(0..0, |r| range_in(buf, r.as_bytes()));
    let mut facts = Facts::default();
    let mut headers = buffers::take_ranges(res.headers.len());
    for h in res.headers.iter() {
        // httparse has checked the name is a token.
        facts.note(h.name.as_bytes(), h.value).map_err(|_| ResponseHeadError::ContentLength)?;
        headers.push((range_in(buf, h.name.as_bytes()), range_in(buf, h.value)));
    }
    let bodiless = head_request || (100..200).contains(&status) || status == 204 || status == 304;
    let framing = match (facts.transfer_encoding, facts.content_length) {
        _ if bodiless => Framing::Empty,
        (Some(_), Some(_)) => return Err(ResponseHeadError::FramingConflict),
        (Some(true), None) => Framing::Chunked,
        // Another coding (`gzip, chunked`, or `gzip` alone, or codings over two
        // lines): hookgate would have to remove it, since Transfer-Encoding is
        // hop-by-hop, and cannot undo it, so the response is refused (RFC 9112
        // §6.1: a proxy that removes a coding must decode it), as nginx does.
        (Some(false), None) => return Err(ResponseHeadError::Coding),
        (None, Some(0)) => Framing::Empty,
        (None, Some(n)) => Framing::Length(n),
        (None, None) => Framing::UntilClose,
    };
    let close = facts.close || (version == Version::HTTP_10 && !facts.keep_alive) || framing == Framing::UntilClose;
    Ok(Some(ResponseHead {
        status,
        len,
        reason,
        headers,
        framing,
        close,
        names_headers: facts.names_headers,
        idle_hint_seconds: facts.idle_hint,
    }))
}

/// Where `part`, a slice httparse took from `buf`, sits in `buf`. An empty
/// part (an empty reason phrase or header value) may be a static `""` that
/// is not inside `buf` at all: it gets an empty range (found by fuzzing).
fn range_in(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
    if part.is_empty() || start > buf.len() || buf.len() - start < part.len() {
        return 0..0;
    }
    start..start + part.len()
}

mod facts;
#[cfg(test)]
mod tests;

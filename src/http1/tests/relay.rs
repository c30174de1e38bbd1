//! The harness the response-body tests share: an upstream's response (its
//! head and the body bytes read with it, then more from a loopback socket)
//! relayed by `response_body::copy_response` to a client whose every received
//! byte is kept, and what the access line says about it.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};
use tokio::time::Instant;

use super::super::head::{Framing, parse_response};
use super::super::response_body::{BodyCopy, NoTee, copy_response};
use super::super::wire::{client_framing, write_response_head};

use super::{client, delivery, socket_pair};
use crate::config::Limits;

/// The upstream's longest pause between body bytes (its `response_timeout`).
pub(super) const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The client's: no byte taken for this long and it is cut.
pub(super) const SEND_TIMEOUT: Duration = Duration::from_secs(7);

/// What the upstream sends for one response.
pub(super) struct Upstream<'a> {
    /// Read along with the head: the head, and the body bytes that came with it.
    pub(super) with_head: &'a [u8],
    /// Sent on the socket after that.
    pub(super) later: &'a [u8],
    pub(super) then: Then,
}

/// What the upstream does once it has sent everything.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Then {
    /// Holds its connection open, silent.
    Holds,
    Closes,
    /// Resets its connection (a close with SO_LINGER 0).
    Resets,
}

/// The client's request, as far as the response's framing cares.
#[derive(Clone, Copy)]
pub(super) struct Asked {
    pub(super) http10: bool,
    pub(super) keep_alive: bool,
    /// It was a HEAD request.
    pub(super) head: bool,
}

pub(super) const GET_11: Asked = Asked { http10: false, keep_alive: true, head: false };
pub(super) const GET_10: Asked = Asked { http10: true, keep_alive: false, head: false };

/// What the client does with its end.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Peer {
    Reads,
    /// Reads nothing; 16 bytes fill its socket.
    StopsReading,
    /// Closed its end before the response began.
    Gone,
}

/// How one response went.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Relayed {
    /// Every byte the client received, hookgate's own `date` shown as `<now>`.
    pub(super) received: String,
    /// The body ended where its framing said (its connection may be pooled).
    pub(super) upstream_clean: bool,
    /// All of it reached the client's socket.
    pub(super) client_ok: bool,
    /// What the access line says: status, `bytes`, `aborted=`, `error=`.
    pub(super) line: (u16, u64, Option<&'static str>, Option<String>),
    /// Bytes read from the upstream and not used, which keep its connection out of the pool.
    pub(super) unread: Vec<u8>,
}

/// Relays `upstream`'s response to a client that asked `asked`, as
/// `forward` does: the client's framing from `wire::client_framing`, the
/// head from `wire::write_response_head`, the body by `copy_response`.
/// Also returns how long the copy took.
pub(super) async fn relay(asked: Asked, upstream: Upstream<'_>, peer: Peer) -> (Relayed, Duration) {
    let (mut ours, mut theirs) = socket_pair().await;
    let (later, then) = (upstream.later.to_vec(), upstream.then);
    let sender = tokio::spawn(async move {
        theirs.write_all(&later).await.unwrap();
        match then {
            Then::Holds => Some(theirs),
            Then::Closes => None,
            Then::Resets => {
                socket2::SockRef::from(&theirs).set_linger(Some(Duration::ZERO)).unwrap();
                None
            }
        }
    });
    let mut ubuf = BytesMut::from(upstream.with_head);
    let head = parse_response(&ubuf, asked.head, 64 * 1024).unwrap().unwrap();
    let to = client_framing(head.framing, asked.http10);
    let keep_alive = asked.keep_alive && to != Framing::UntilClose;
    let mut head_out = Vec::new();
    write_response_head(&mut head_out, &ubuf, &head, to, keep_alive, asked.http10);
    ubuf.advance(head.len);

    let (io, far) = duplex(if peer == Peer::StopsReading { 16 } else { 64 * 1024 });
    let (reader, far) = match peer {
        Peer::Reads => (Some(tokio::spawn(read_all(far))), None),
        Peer::StopsReading => (None, Some(far)),
        Peer::Gone => {
            drop(far);
            (None, None)
        }
    };
    let limits = Limits { send_timeout: SEND_TIMEOUT, ..Limits::default() };
    let mut client = client(io, limits);
    let delivery = delivery(&client, StatusCode::from_u16(head.status).unwrap());
    let copy = BodyCopy { from: head.framing, to, read_timeout: READ_TIMEOUT, head: head_out };
    let start = Instant::now();
    let outcome = copy_response(&mut client, &mut ours, &mut ubuf, (copy, NoTee), &delivery).await;
    let took = start.elapsed();
    drop(client);
    let received = match (reader, far) {
        (Some(reader), _) => reader.await.unwrap(),
        (None, Some(far)) => read_all(far).await,
        (None, None) => Vec::new(),
    };
    drop(sender.await.unwrap());
    let relayed = Relayed {
        received: shown(received),
        upstream_clean: outcome.upstream_clean,
        client_ok: outcome.client_ok,
        line: delivery.line_so_far(),
        unread: ubuf.to_vec(),
    };
    (relayed, took)
}

pub(super) async fn read_all(mut from: tokio::io::DuplexStream) -> Vec<u8> {
    let mut got = Vec::new();
    from.read_to_end(&mut got).await.unwrap();
    got
}

/// `bytes` as text, with the value of hookgate's own `date` line (checked to be one) as `<now>`.
pub(super) fn shown(bytes: Vec<u8>) -> String {
    let text = String::from_utf8(bytes).unwrap();
    let Some(at) = text.find("\r\ndate: ").map(|at| at + "\r\ndate: ".len()) else { return text };
    let end = at + text[at..].find("\r\n").unwrap();
    assert!(httpdate::parse_http_date(&text[at..end]).is_ok(), "{text}");
    format!("{}<now>{}", &text[..at], &text[end..])
}

/// A response that reached the client whole: `received`, and `bytes` body bytes logged.
pub(super) fn whole(received: &str, bytes: u64, upstream_clean: bool) -> Relayed {
    Relayed {
        received: received.to_string(),
        upstream_clean,
        client_ok: true,
        line: (200, bytes, None, None),
        unread: Vec::new(),
    }
}

/// A response cut after its head went out because of the upstream: logged
/// `aborted=upstream` with `why`.
pub(super) fn cut(received: &str, bytes: u64, why: &str) -> Relayed {
    Relayed {
        received: received.to_string(),
        upstream_clean: false,
        client_ok: false,
        line: (200, bytes, Some("upstream"), Some(why.to_string())),
        unread: Vec::new(),
    }
}

pub(super) const DATE: &str = "Date: Tue, 01 Jan 2030 00:00:00 GMT";

pub(super) const CHUNKED_HEAD: &str = "HTTP/1.1 200 OK\r\nDate: Tue, 01 Jan 2030 00:00:00 GMT\r\nTransfer-Encoding: chunked\r\n\
                            Trailer: X-Sum\r\n\r\n";
/// What the client gets for `CHUNKED_HEAD`: the upstream's Transfer-Encoding
/// dropped (hop-by-hop), hookgate's own written.
pub(super) const CHUNKED_HEAD_OUT: &str = "HTTP/1.1 200 OK\r\nDate: Tue, 01 Jan 2030 00:00:00 GMT\r\nTrailer: X-Sum\r\n\
                                via: 1.1 hookgate\r\ntransfer-encoding: chunked\r\n\r\n";
pub(super) const CHUNKED_BODY: &str = "5;ext=\"x\"\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: abc\r\n\r\n";

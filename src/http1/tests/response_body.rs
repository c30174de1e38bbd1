//! `body::copy_response` and the head `wire` writes for it, the response
//! direction: an upstream's response (its head and the body bytes read with
//! it, then more from a loopback socket) relayed to a client whose every
//! received byte is asserted. What must hold, as README's "Forwarding" and
//! status-code sections say: lengths stay; chunked is decoded and framed
//! again with its trailers; a body that ends at the upstream's close reaches
//! HTTP/1.1 clients chunked and HTTP/1.0 clients until close; HEAD, 204 and
//! 304 answers are heads only; bytes beyond a response are never taken for
//! its body; a body broken in the bytes read with the head becomes hookgate's
//! own 502; and a body that fails after its head went out (a close, a reset,
//! broken chunks, `response_timeout`) is cut, never ended as if complete,
//! and logged `aborted=upstream` with why.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};
use tokio::time::Instant;

use super::super::body::{BodyCopy, copy_response};
use super::super::head::{Framing, parse_response};
use super::super::wire::{client_framing, write_response_head};
use std::sync::Arc;

use super::{client, delivery, delivery_counted_in, socket_pair};
use crate::config::Limits;
use crate::error::ProxyError;
use crate::metrics::Metrics;

/// The upstream's longest pause between body bytes (its `response_timeout`).
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The client's: no byte taken for this long and it is cut.
const SEND_TIMEOUT: Duration = Duration::from_secs(7);

/// What the upstream sends for one response.
struct Upstream<'a> {
    /// Read along with the head: the head, and the body bytes that came with it.
    with_head: &'a [u8],
    /// Sent on the socket after that.
    later: &'a [u8],
    then: Then,
}

/// What the upstream does once it has sent everything.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    /// Holds its connection open, silent.
    Holds,
    Closes,
    /// Resets its connection (a close with SO_LINGER 0).
    Resets,
}

/// The client's request, as far as the response's framing cares.
#[derive(Clone, Copy)]
struct Asked {
    http10: bool,
    keep_alive: bool,
    /// It was a HEAD request.
    head: bool,
}

const GET_11: Asked = Asked { http10: false, keep_alive: true, head: false };
const GET_10: Asked = Asked { http10: true, keep_alive: false, head: false };

/// What the client does with its end.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Peer {
    Reads,
    /// Reads nothing; 16 bytes fill its socket.
    StopsReading,
    /// Closed its end before the response began.
    Gone,
}

/// How one response went.
#[derive(Debug, PartialEq, Eq)]
struct Relayed {
    /// Every byte the client received, hookgate's own `date` shown as `<now>`.
    received: String,
    /// The body ended where its framing said (its connection may be pooled).
    upstream_clean: bool,
    /// All of it reached the client's socket.
    client_ok: bool,
    /// What the access line says: status, `bytes`, `aborted=`, `error=`.
    line: (u16, u64, Option<&'static str>, Option<String>),
    /// Bytes read from the upstream and not used, which keep its connection out of the pool.
    unread: Vec<u8>,
}

/// Relays `upstream`'s response to a client that asked `asked`, as
/// `forward` does: the client's framing from `wire::client_framing`, the
/// head from `wire::write_response_head`, the body by `copy_response`.
/// Also returns how long the copy took.
async fn relay(asked: Asked, upstream: Upstream<'_>, peer: Peer) -> (Relayed, Duration) {
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
    let outcome = copy_response(&mut client, &mut ours, &mut ubuf, copy, &delivery).await;
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

async fn read_all(mut from: tokio::io::DuplexStream) -> Vec<u8> {
    let mut got = Vec::new();
    from.read_to_end(&mut got).await.unwrap();
    got
}

/// `bytes` as text, with the value of hookgate's own `date` line (checked to be one) as `<now>`.
fn shown(bytes: Vec<u8>) -> String {
    let text = String::from_utf8(bytes).unwrap();
    let Some(at) = text.find("\r\ndate: ").map(|at| at + "\r\ndate: ".len()) else { return text };
    let end = at + text[at..].find("\r\n").unwrap();
    assert!(httpdate::parse_http_date(&text[at..end]).is_ok(), "{text}");
    format!("{}<now>{}", &text[..at], &text[end..])
}

/// A response that reached the client whole: `received`, and `bytes` body bytes logged.
fn whole(received: &str, bytes: u64, upstream_clean: bool) -> Relayed {
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
fn cut(received: &str, bytes: u64, why: &str) -> Relayed {
    Relayed {
        received: received.to_string(),
        upstream_clean: false,
        client_ok: false,
        line: (200, bytes, Some("upstream"), Some(why.to_string())),
        unread: Vec::new(),
    }
}

const DATE: &str = "Date: Tue, 01 Jan 2030 00:00:00 GMT";

#[test]
fn client_framing_keeps_lengths_and_chunks_the_rest_for_http11() {
    let table = [
        (Framing::Empty, false, Framing::Empty),
        (Framing::Empty, true, Framing::Empty),
        (Framing::Length(7), false, Framing::Length(7)),
        (Framing::Length(7), true, Framing::Length(7)),
        (Framing::Chunked, false, Framing::Chunked),
        (Framing::Chunked, true, Framing::UntilClose),
        (Framing::UntilClose, false, Framing::Chunked),
        (Framing::UntilClose, true, Framing::UntilClose),
    ];
    for (upstream, http10, want) in table {
        assert_eq!(client_framing(upstream, http10), want, "{upstream:?}, http10 {http10}");
    }
}

#[tokio::test]
async fn a_length_body_passes_as_it_came() {
    // Part with the head, the rest later; no Date from the upstream, so hookgate adds one.
    let upstream = Upstream {
        with_head: b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello",
        later: b" world",
        then: Then::Holds,
    };
    let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
    let want = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: text/plain\r\nvia: 1.1 hookgate\r\n\
                date: <now>\r\n\r\nhello world";
    assert_eq!(relayed, whole(want, 11, true));
}

#[tokio::test]
async fn bytes_beyond_a_length_body_are_never_taken_for_it() {
    let with_head = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n\r\n");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b"", then: Then::Holds };
    let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
    let want = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 5\r\nvia: 1.1 hookgate\r\n\r\nhello");
    assert_eq!(relayed, Relayed { unread: b"HTTP/1.1 200 OK\r\n\r\n".to_vec(), ..whole(&want, 5, true) });
}

#[tokio::test]
async fn a_long_length_body_is_copied_when_the_client_is_not_a_tcp_socket() {
    // Past splice::MIN_BODY, but splicing needs both ends to be plain TCP.
    let body: Vec<u8> = (0..300 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let head = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: {}\r\n\r\n", body.len());
    let with_head = [head.as_bytes(), &body[..1000]].concat();
    let upstream = Upstream { with_head: &with_head, later: &body[1000..], then: Then::Holds };
    let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
    let head_out = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: {}\r\nvia: 1.1 hookgate\r\n\r\n", body.len());
    let want = whole(&(head_out + std::str::from_utf8(&body).unwrap()), body.len() as u64, true);
    assert!(relayed == want, "received {} bytes, line {:?}", relayed.received.len(), relayed.line);
}

const CHUNKED_HEAD: &str = "HTTP/1.1 200 OK\r\nDate: Tue, 01 Jan 2030 00:00:00 GMT\r\nTransfer-Encoding: chunked\r\n\
                            Trailer: X-Sum\r\n\r\n";
/// What the client gets for `CHUNKED_HEAD`: the upstream's Transfer-Encoding
/// dropped (hop-by-hop), hookgate's own written.
const CHUNKED_HEAD_OUT: &str = "HTTP/1.1 200 OK\r\nDate: Tue, 01 Jan 2030 00:00:00 GMT\r\nTrailer: X-Sum\r\n\
                                via: 1.1 hookgate\r\ntransfer-encoding: chunked\r\n\r\n";
const CHUNKED_BODY: &str = "5;ext=\"x\"\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: abc\r\n\r\n";

#[tokio::test]
async fn chunked_is_framed_again_with_its_trailers_however_it_is_split() {
    // The body split at every byte between what came with the head and what
    // came later: each part's decoded bytes go out as one chunk of
    // hookgate's (none for a part with no data), extensions dropped, the
    // trailers after the last chunk.
    let (hello, world) = (CHUNKED_BODY.find("hello").unwrap(), CHUNKED_BODY.find(" world").unwrap());
    let is_data = |i: &usize| (hello..hello + 5).contains(i) || (world..world + 6).contains(i);
    let decoded = |bytes: std::ops::Range<usize>| -> String {
        bytes.filter(is_data).map(|i| char::from(CHUNKED_BODY.as_bytes()[i])).collect()
    };
    let chunk = |data: String| if data.is_empty() { data } else { format!("{:x}\r\n{data}\r\n", data.len()) };
    for at in 0..=CHUNKED_BODY.len() {
        let (early, late) = CHUNKED_BODY.split_at(at);
        let with_head = format!("{CHUNKED_HEAD}{early}");
        let upstream = Upstream { with_head: with_head.as_bytes(), later: late.as_bytes(), then: Then::Holds };
        let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
        let body = chunk(decoded(0..at)) + &chunk(decoded(at..CHUNKED_BODY.len())) + "0\r\nX-Sum: abc\r\n\r\n";
        assert_eq!(relayed, whole(&format!("{CHUNKED_HEAD_OUT}{body}"), 11, true), "split at {at}: {early:?}");
    }
}

#[tokio::test]
async fn chunked_reaches_an_http10_client_until_close_without_trailers() {
    let with_head = format!("{CHUNKED_HEAD}{CHUNKED_BODY}");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b"", then: Then::Holds };
    let (relayed, _) = relay(GET_10, upstream, Peer::Reads).await;
    let want = format!(
        "HTTP/1.1 200 OK\r\n{DATE}\r\nTrailer: X-Sum\r\nvia: 1.1 hookgate\r\nconnection: close\r\n\r\nhello world"
    );
    assert_eq!(relayed, whole(&want, 11, true));
}

#[tokio::test]
async fn a_body_ended_by_the_upstreams_close_is_chunked_for_http11_clients() {
    // Their connection stays open: no `connection: close`.
    let with_head = format!("HTTP/1.0 200 OK\r\n{DATE}\r\n\r\nhello");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b" world", then: Then::Closes };
    let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
    let want = format!(
        "HTTP/1.1 200 OK\r\n{DATE}\r\nvia: 1.1 hookgate\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    );
    assert_eq!(relayed, whole(&want, 11, false));
}

#[tokio::test]
async fn a_body_ended_by_the_upstreams_close_reaches_http10_clients_until_close() {
    let with_head = format!("HTTP/1.0 200 OK\r\n{DATE}\r\n\r\nhello");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b" world", then: Then::Closes };
    let (relayed, _) = relay(GET_10, upstream, Peer::Reads).await;
    let want = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nvia: 1.1 hookgate\r\nconnection: close\r\n\r\nhello world");
    assert_eq!(relayed, whole(&want, 11, false));
}

#[tokio::test]
async fn the_client_is_told_whether_its_connection_stays() {
    let with_head = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 2\r\n\r\nok");
    let cases = [
        // An HTTP/1.0 client that asked to keep its connection.
        (Asked { keep_alive: true, ..GET_10 }, "connection: keep-alive\r\n"),
        // An HTTP/1.1 client that asked to close it.
        (Asked { keep_alive: false, ..GET_11 }, "connection: close\r\n"),
    ];
    for (asked, connection) in cases {
        let upstream = Upstream { with_head: with_head.as_bytes(), later: b"", then: Then::Holds };
        let (relayed, _) = relay(asked, upstream, Peer::Reads).await;
        let want = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 2\r\nvia: 1.1 hookgate\r\n{connection}\r\nok");
        assert_eq!(relayed, whole(&want, 2, true));
    }
}

#[tokio::test]
async fn head_204_and_304_answers_are_heads_only() {
    // A HEAD answer's and a 304's Content-Length describe the resource and stay.
    let cases = [
        (true, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n", ""),
        (true, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n", ""),
        (false, "HTTP/1.1 204 No Content\r\n", ""),
        (false, "HTTP/1.1 304 Not Modified\r\nContent-Length: 11\r\n", ""),
        // Bytes after a bodiless answer are not its body.
        (false, "HTTP/1.1 204 No Content\r\n", "hello"),
    ];
    for (head, status_and_framing, after) in cases {
        let with_head = format!("{status_and_framing}{DATE}\r\n\r\n{after}");
        let upstream = Upstream { with_head: with_head.as_bytes(), later: b"", then: Then::Holds };
        let (relayed, _) = relay(Asked { head, ..GET_11 }, upstream, Peer::Reads).await;
        let kept = status_and_framing.replace("Transfer-Encoding: chunked\r\n", "");
        let status = kept[9..12].parse().unwrap();
        let want = Relayed {
            line: (status, 0, None, None),
            unread: after.as_bytes().to_vec(),
            ..whole(&format!("{kept}{DATE}\r\nvia: 1.1 hookgate\r\n\r\n"), 0, true)
        };
        assert_eq!(relayed, want, "{with_head:?}");
    }
}

#[tokio::test]
async fn an_upstream_that_closes_inside_a_length_body_cuts_the_response() {
    let with_head = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 11\r\n\r\nhello");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b" wo", then: Then::Closes };
    let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
    let want = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 11\r\nvia: 1.1 hookgate\r\n\r\nhello wo");
    assert_eq!(relayed, cut(&want, 8, "the upstream closed before its body ended"));
}

#[tokio::test]
async fn a_chunked_body_cut_short_never_gets_its_last_chunk() {
    let with_head = format!("{CHUNKED_HEAD}5\r\nhello\r\n");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b"6\r\n wo", then: Then::Closes };
    let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
    let want = format!("{CHUNKED_HEAD_OUT}5\r\nhello\r\n3\r\n wo\r\n");
    assert_eq!(relayed, cut(&want, 8, "the upstream closed before its body ended"));
}

#[tokio::test]
async fn a_reset_ends_no_body_even_one_framed_by_the_close() {
    let with_head = format!("HTTP/1.0 200 OK\r\n{DATE}\r\n\r\nhello");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b"", then: Then::Resets };
    let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
    let want =
        format!("HTTP/1.1 200 OK\r\n{DATE}\r\nvia: 1.1 hookgate\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n");
    assert_eq!(relayed, cut(&want, 5, "Connection reset by peer (os error 104)"));
}

#[tokio::test]
async fn a_chunked_body_broken_before_its_head_went_out_gets_hookgates_502() {
    // The break is in the bytes read with the head, so the head is never
    // sent: a bad size line, and a size line past 4 KiB with its extensions.
    let long_line = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(5000));
    for broken in ["5\r\nhello\r\nzz\r\n", &long_line] {
        let with_head = format!("{CHUNKED_HEAD}{broken}");
        let upstream = Upstream { with_head: with_head.as_bytes(), later: b"", then: Then::Holds };
        let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
        let want = Relayed {
            received: "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain; charset=utf-8\r\ndate: <now>\r\n\
                       content-length: 34\r\nconnection: close\r\n\r\nupstream sent an invalid response\n"
                .to_string(),
            upstream_clean: false,
            client_ok: false,
            // Logged as the complete 502 it is, not as a cut response.
            line: (502, 34, None, None),
            // Left unread; the connection is closed, not pooled.
            unread: broken.as_bytes().to_vec(),
        };
        assert_eq!(relayed, want, "{broken:.20}");
    }
}

#[tokio::test]
async fn a_chunked_body_broken_after_its_head_went_out_is_cut() {
    let with_head = format!("{CHUNKED_HEAD}5\r\nhello\r\n");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b"zz\r\n", then: Then::Holds };
    let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
    let want = format!("{CHUNKED_HEAD_OUT}5\r\nhello\r\n");
    let broken = cut(&want, 5, "invalid chunked body: missing chunk size");
    assert_eq!(relayed, Relayed { unread: b"zz\r\n".to_vec(), ..broken });
}

/// hookgate's 502 for a body broken before its head went out is listed on
/// the status page as hookgate's error, not as "upstream app answered 502"
/// (the upstream answered 200).
#[tokio::test]
async fn a_replaced_answer_is_listed_as_hookgates_error() {
    let (io, _far) = duplex(1024);
    let client = client(io, Limits::default());
    let metrics = Arc::new(Metrics::disabled().route("hook", "app"));
    let delivery = delivery_counted_in(&client, StatusCode::OK, metrics.clone());
    delivery.replace_with(ProxyError::UpstreamBroken, &"its chunked body is broken");
    drop(delivery);
    let listed: Vec<(u16, String)> = metrics.problems.list().into_iter().map(|p| (p.status, p.reason)).collect();
    assert_eq!(listed, [(502, ProxyError::UpstreamBroken.to_string())]);
}

/// Response trailers are held to `max_header_bytes` (32 KiB here), as a
/// request's are: README's "Forwarding" says so for both directions.
#[tokio::test]
async fn response_trailers_are_held_to_max_header_bytes() {
    let with_head = format!("{CHUNKED_HEAD}5\r\nhello\r\n");
    let later = format!("0\r\nX-Sum: {}\r\n\r\n", "a".repeat(33 * 1024));
    let upstream = Upstream { with_head: with_head.as_bytes(), later: later.as_bytes(), then: Then::Holds };
    let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
    let want = format!("{CHUNKED_HEAD_OUT}5\r\nhello\r\n");
    let broken = cut(&want, 5, "invalid chunked body: trailers too large");
    assert_eq!(Relayed { unread: Vec::new(), ..relayed }, broken);
}

#[tokio::test(start_paused = true)]
async fn an_upstream_silent_for_its_response_timeout_cuts_the_response() {
    // Each framing: what came with the head, and what the client got before the cut.
    let cases = [
        (
            format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 11\r\n\r\nhello"),
            format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 11\r\nvia: 1.1 hookgate\r\n\r\nhello"),
        ),
        (format!("{CHUNKED_HEAD}5\r\nhello\r\n"), format!("{CHUNKED_HEAD_OUT}5\r\nhello\r\n")),
        (
            format!("HTTP/1.0 200 OK\r\n{DATE}\r\n\r\nhello"),
            format!(
                "HTTP/1.1 200 OK\r\n{DATE}\r\nvia: 1.1 hookgate\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n"
            ),
        ),
    ];
    for (with_head, want) in cases {
        let upstream = Upstream { with_head: with_head.as_bytes(), later: b"", then: Then::Holds };
        let (relayed, took) = relay(GET_11, upstream, Peer::Reads).await;
        assert_eq!((relayed, took), (cut(&want, 5, "no response body bytes for 5s"), READ_TIMEOUT), "{with_head:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_cut_after_send_timeout() {
    let with_head = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 11\r\n\r\nhello world");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b"", then: Then::Holds };
    let (relayed, took) = relay(GET_11, upstream, Peer::StopsReading).await;
    let want = Relayed {
        // What fit in its socket.
        received: "HTTP/1.1 200 OK\r".to_string(),
        upstream_clean: false,
        client_ok: false,
        line: (200, 0, Some("client_timeout"), None),
        unread: b"hello world".to_vec(),
    };
    assert_eq!((relayed, took), (want, SEND_TIMEOUT));
}

#[tokio::test]
async fn a_client_that_left_is_logged_as_gone() {
    let with_head = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 11\r\n\r\nhello world");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b"", then: Then::Holds };
    let (relayed, _) = relay(GET_11, upstream, Peer::Gone).await;
    let want = Relayed {
        received: String::new(),
        upstream_clean: false,
        client_ok: false,
        line: (200, 0, Some("client_closed"), None),
        unread: b"hello world".to_vec(),
    };
    assert_eq!(relayed, want);
}

//! `body::pump`, the request direction: a body framed by Content-Length or
//! chunked, read from a scripted client (each scripted piece is one read),
//! handed to a sink. What must hold: the sink gets exactly the body (chunked
//! decoded, extensions dropped, trailers passed once at the end) however the
//! reads split it; bytes after the body stay for the next request; and each
//! way a body can go wrong ends with the error whose status README promises
//! (malformed chunked 400, over `max_body` 413, cut off 400, paused past
//! `body_timeout` 408) or, when the upstream stops taking it, not as the
//! client's fault at all.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_test::io::Builder;

use super::super::head::Framing;
use super::super::request_body::{BodySink, PumpError, SinkClosed, SocketSink, pump};
use super::{client, socket_pair};
use crate::config::Limits;
use crate::error::{BadRequest, ProxyError};

/// What a sink was given.
#[derive(Debug, Default)]
struct Collect {
    data: Vec<u8>,
    /// The length of each `data` call: nothing empty is passed on.
    pieces: Vec<usize>,
    /// The trailer lines, once the chunked body ended.
    trailers: Option<Vec<u8>>,
    /// Refuses data past this many bytes, as an upstream that stopped reading.
    room: Option<usize>,
}

impl BodySink for Collect {
    async fn data(&mut self, bytes: &[u8]) -> Result<(), SinkClosed> {
        assert!(self.trailers.is_none(), "data after the end of the body");
        if self.room.is_some_and(|room| self.data.len() + bytes.len() > room) {
            return Err(SinkClosed);
        }
        self.pieces.push(bytes.len());
        self.data.extend_from_slice(bytes);
        Ok(())
    }

    async fn end_chunked(&mut self, trailers: &[u8]) -> Result<(), SinkClosed> {
        assert!(self.trailers.is_none(), "the body ended twice");
        self.trailers = Some(trailers.to_vec());
        Ok(())
    }
}

/// How a pump ended, comparable.
#[derive(Debug, PartialEq, Eq)]
enum Pumped {
    Done,
    Client(ProxyError),
    Upstream,
}

impl From<Result<(), PumpError>> for Pumped {
    fn from(result: Result<(), PumpError>) -> Self {
        match result {
            Ok(()) => Pumped::Done,
            Err(PumpError::Client(error)) => Pumped::Client(error),
            Err(PumpError::Upstream(_)) => Pumped::Upstream,
        }
    }
}

/// What a client sends, one read each.
type Reads<'a> = &'a [&'a [u8]];

const MALFORMED: Pumped = Pumped::Client(ProxyError::BadRequest(BadRequest::MalformedBody));

/// A body framed as `framing` from a client that had sent `with_head` along
/// with the request head and then sends `reads`, one read each, then closes.
struct Upload<'a> {
    with_head: &'a [u8],
    reads: Reads<'a>,
    framing: Framing,
    max_body: u64,
}

impl<'a> Upload<'a> {
    fn new(framing: Framing, reads: Reads<'a>) -> Self {
        Upload { with_head: b"", reads, framing, max_body: 1 << 20 }
    }

    /// Pumps it into `sink`; returns how it ended and what is left in the
    /// client's read buffer (the next request's bytes).
    async fn pump_into(self, sink: &mut impl BodySink, limits: Limits) -> (Pumped, Vec<u8>) {
        let mut script = Builder::new();
        for read in self.reads {
            script.read(read);
        }
        let mut client = client(script.build(), limits);
        client.rbuf = BytesMut::from(self.with_head);
        let pumped = pump(&mut client, sink, self.framing, self.max_body).await.into();
        (pumped, client.rbuf.to_vec())
    }

    /// Pumps it into a `Collect` sink, under the default limits.
    async fn collect(self) -> (Pumped, Collect, Vec<u8>) {
        let mut sink = Collect::default();
        let (pumped, left) = self.pump_into(&mut sink, Limits::default()).await;
        (pumped, sink, left)
    }
}

#[tokio::test]
async fn a_length_body_arriving_in_pieces_reaches_the_sink_whole() {
    let upload = Upload { with_head: b"he", ..Upload::new(Framing::Length(11), &[b"llo", b" wor", b"ld"]) };
    let (pumped, sink, left) = upload.collect().await;
    assert_eq!(pumped, Pumped::Done);
    assert_eq!((&sink.data[..], &sink.pieces[..], sink.trailers), (&b"hello world"[..], &[2, 3, 4, 2][..], None));
    assert!(left.is_empty());
}

#[tokio::test]
async fn bytes_after_a_length_body_stay_for_the_next_request() {
    // All of it with the head, or the next request arriving in the body's last read.
    let cases: &[(&[u8], Reads)] =
        &[(b"helloGET /next HTTP/1.1\r\n", &[]), (b"", &[b"hel", b"loGET /next HTTP/1.1\r\n"])];
    for (with_head, reads) in cases {
        let (pumped, sink, left) = Upload { with_head, ..Upload::new(Framing::Length(5), reads) }.collect().await;
        assert_eq!((pumped, &sink.data[..]), (Pumped::Done, &b"hello"[..]), "{reads:?}");
        assert_eq!(left, b"GET /next HTTP/1.1\r\n");
    }
}

#[tokio::test]
async fn no_body_framing_reads_nothing() {
    // A read would find the scripted client closed and fail the pump.
    for framing in [Framing::Empty, Framing::UntilClose] {
        let upload = Upload { with_head: b"GET /next HTTP/1.1\r\n", ..Upload::new(framing, &[]) };
        let (pumped, sink, left) = upload.collect().await;
        assert_eq!((pumped, sink.data.len(), sink.trailers), (Pumped::Done, 0, None), "{framing:?}");
        assert_eq!(left, b"GET /next HTTP/1.1\r\n");
    }
}

/// Chunk extensions (one quoted), two chunks and two trailer fields.
const CHUNKED: &[u8] = b"5;name=\"quoted; value\"\r\nhello\r\n6;x\r\n world\r\n0\r\nX-Sum: abc\r\nX-Two: 2\r\n\r\n";

#[tokio::test]
async fn a_chunked_body_decodes_the_same_however_the_reads_split_it() {
    // Every split into two reads: inside a size line and its extensions,
    // between each CR and its LF, inside the data, inside each trailer line;
    // then one byte per read, all of those at once.
    let bytes: Vec<&[u8]> = CHUNKED.chunks(1).collect();
    let splits = (0..=CHUNKED.len()).map(|at| vec![&CHUNKED[..at], &CHUNKED[at..]]);
    for reads in splits.chain([bytes]) {
        let reads: Vec<&[u8]> = reads.into_iter().filter(|r| !r.is_empty()).collect();
        let (pumped, sink, left) = Upload::new(Framing::Chunked, &reads).collect().await;
        let trailers = sink.trailers.as_deref();
        assert_eq!(pumped, Pumped::Done, "{reads:?}");
        assert_eq!((&sink.data[..], trailers), (&b"hello world"[..], Some(&b"X-Sum: abc\r\nX-Two: 2\r\n"[..])));
        assert!(!sink.pieces.contains(&0) && left.is_empty(), "{reads:?}");
    }
}

#[tokio::test]
async fn bytes_after_the_last_chunk_stay_for_the_next_request() {
    let body = [&b"3\r\nabc\r\n0\r\n\r\n"[..], b"GET /next HTTP/1.1\r\n"].concat();
    let (pumped, sink, left) = Upload::new(Framing::Chunked, &[&body]).collect().await;
    assert_eq!((pumped, &sink.data[..], sink.trailers.as_deref()), (Pumped::Done, &b"abc"[..], Some(&b""[..])));
    assert_eq!(left, b"GET /next HTTP/1.1\r\n");
}

/// What an upstream socket receives for a body pumped from `reads`.
async fn upstream_receives(framing: Framing, reads: Reads<'_>) -> (Pumped, String) {
    let (mut ours, mut theirs) = socket_pair().await;
    let chunked = framing == Framing::Chunked;
    let mut sink =
        SocketSink { stream: &mut ours, chunked, write_timeout: Duration::from_secs(5), scratch: Vec::new() };
    let (pumped, _) = Upload::new(framing, reads).pump_into(&mut sink, Limits::default()).await;
    ours.shutdown().await.unwrap();
    let mut received = Vec::new();
    theirs.read_to_end(&mut received).await.unwrap();
    (pumped, String::from_utf8(received).unwrap())
}

#[tokio::test]
async fn an_upstream_socket_gets_hookgates_own_chunk_framing() {
    // One chunk per read's decoded bytes, extensions gone, the trailers after the last chunk.
    let (pumped, sent) =
        upstream_receives(Framing::Chunked, &[b"5;ext=1\r\nhel", b"lo\r\n6\r\n world\r\n0\r\nX-Sum: abc\r\n\r\n"])
            .await;
    assert_eq!((pumped, &sent[..]), (Pumped::Done, "3\r\nhel\r\n8\r\nlo world\r\n0\r\nX-Sum: abc\r\n\r\n"));
    let (pumped, sent) = upstream_receives(Framing::Chunked, &[b"0\r\n", b"\r\n"]).await;
    assert_eq!((pumped, &sent[..]), (Pumped::Done, "0\r\n\r\n"));
    // A length-framed body passes as it came.
    let (pumped, sent) = upstream_receives(Framing::Length(11), &[b"hello", b" world"]).await;
    assert_eq!((pumped, &sent[..]), (Pumped::Done, "hello world"));
}

#[tokio::test]
async fn a_malformed_chunked_body_is_the_clients_fault() {
    // Each: the reads, and what reached the sink before the fault was found.
    let cases: &[(Reads, &[u8])] = &[
        (&[b"5\r\nhello\r\nzz\r\n"], b""),
        (&[b"5\r\nhello\r\n", b"zz\r\n"], b"hello"),
        (&[b"5\nhello\r\n"], b""),
        (&[b"5\r\nhello\n0\r\n\r\n"], b""),
        (&[b"5\r\nhel", b"loXX0\r\n\r\n"], b"hel"),
        (&[b"-5\r\n"], b""),
        (&[b"10000000000000000\r\n"], b""),
        (&[b"0\r\nNo-Colon\r\n\r\n"], b""),
        (&[b"0\r\nX: a\nb\r\n\r\n"], b""),
    ];
    for (reads, before) in cases {
        let (pumped, sink, _) = Upload::new(Framing::Chunked, reads).collect().await;
        assert_eq!((pumped, &sink.data[..], sink.trailers), (MALFORMED, *before, None), "{reads:?}");
    }
    // A size line past 4 KiB, with its extensions.
    let long_line = [&b"1;"[..], &[b'e'; 5000], b"\r\nx\r\n0\r\n\r\n"].concat();
    let (pumped, sink, _) = Upload::new(Framing::Chunked, &[&long_line]).collect().await;
    assert_eq!((pumped, sink.data.len()), (MALFORMED, 0));
}

#[tokio::test]
async fn chunked_trailers_are_held_to_max_header_bytes() {
    let limits = Limits { max_header_bytes: 16, ..Limits::default() };
    // 16 bytes of trailers with their CRLF.
    let within = Upload::new(Framing::Chunked, &[b"1\r\na\r\n0\r\nX-Sum: 0123456\r\n\r\n"]);
    let (pumped, _) = within.pump_into(&mut Collect::default(), limits.clone()).await;
    assert_eq!(pumped, Pumped::Done);
    // A line longer than the limit (the decoder counts a line's CRLF only once it is in).
    let over = Upload::new(Framing::Chunked, &[b"1\r\na\r\n0\r\nX-Sum: 0123456789\r\n\r\n"]);
    let (pumped, _) = over.pump_into(&mut Collect::default(), limits).await;
    assert_eq!(pumped, MALFORMED);
}

#[tokio::test]
async fn max_body_counts_body_bytes_and_refuses_one_more() {
    let too_large = Pumped::Client(ProxyError::BodyTooLarge);
    let chunked: Reads = &[b"5;a-long-extension-is-not-body\r\nhello\r\n", b"6\r\n world\r\n0\r\n\r\n"];
    // Framing, reads, max_body: how it ends and what reached the sink.
    let cases: &[(Framing, Reads, u64, &Pumped, &[u8])] = &[
        (Framing::Length(11), &[b"hello ", b"world"], 11, &Pumped::Done, b"hello world"),
        (Framing::Length(11), &[b"hello ", b"world"], 10, &too_large, b"hello "),
        (Framing::Chunked, chunked, 11, &Pumped::Done, b"hello world"),
        (Framing::Chunked, chunked, 10, &too_large, b"hello"),
        (Framing::Chunked, &[b"5\r\nhello\r\n6\r\n world\r\n"], 10, &too_large, b""),
    ];
    for (framing, reads, max_body, want, sent) in cases {
        let (pumped, sink, _) = Upload { max_body: *max_body, ..Upload::new(*framing, reads) }.collect().await;
        assert_eq!((&pumped, &sink.data[..]), (*want, *sent), "{framing:?} {reads:?} max_body {max_body}");
    }
}

#[tokio::test]
async fn a_client_that_leaves_mid_body_aborted_its_upload() {
    let aborted = Pumped::Client(ProxyError::ClientAborted);
    let cases: &[(Framing, Reads, &[u8])] = &[
        (Framing::Length(11), &[b"hello"], b"hello"),
        (Framing::Chunked, &[b"5\r\nhel"], b"hel"),
        // Everything but the blank line that ends the trailers.
        (Framing::Chunked, &[b"5\r\nhello\r\n0\r\nX-Sum: 1\r\n"], b"hello"),
    ];
    for (framing, reads, sent) in cases {
        let (pumped, sink, _) = Upload::new(*framing, reads).collect().await;
        assert_eq!((&pumped, &sink.data[..], &sink.trailers), (&aborted, *sent, &None), "{reads:?}");
    }
    // A reset rather than a close.
    let script = Builder::new().read(b"hello").read_error(std::io::ErrorKind::ConnectionReset.into()).build();
    let mut sink = Collect::default();
    let pumped = pump(&mut client(script, Limits::default()), &mut sink, Framing::Length(11), 100).await.into();
    assert_eq!((pumped, &sink.data[..]), (aborted, &b"hello"[..]));
}

#[tokio::test]
async fn an_upstream_that_stops_taking_the_body_is_not_the_clients_fault() {
    for framing in [Framing::Length(11), Framing::Chunked] {
        let reads: Reads = if framing == Framing::Chunked {
            &[b"5\r\nhello\r\n", b"6\r\n world\r\n0\r\n\r\n"]
        } else {
            &[b"hello", b" world"]
        };
        let mut sink = Collect { room: Some(5), ..Collect::default() };
        let (pumped, _) = Upload::new(framing, reads).pump_into(&mut sink, Limits::default()).await;
        assert_eq!((pumped, &sink.data[..]), (Pumped::Upstream, &b"hello"[..]), "{framing:?}");
    }
}

/// A client that sends `first`, then nothing for an hour, under a 5 s `body_timeout`.
async fn stalls_after(first: &[u8], framing: Framing) -> (Pumped, Collect, Duration) {
    let limits = Limits { body_timeout: Duration::from_secs(5), ..Limits::default() };
    let script = Builder::new().read(first).wait(Duration::from_secs(3600)).build();
    let mut client = client(script, limits);
    let mut sink = Collect::default();
    let start = Instant::now();
    let pumped = pump(&mut client, &mut sink, framing, 100).await.into();
    (pumped, sink, start.elapsed())
}

#[tokio::test(start_paused = true)]
async fn a_body_that_pauses_for_body_timeout_times_out() {
    let (pumped, sink, took) = stalls_after(b"hello", Framing::Length(11)).await;
    assert_eq!(
        (pumped, &sink.data[..], took),
        (Pumped::Client(ProxyError::BodyTimeout), &b"hello"[..], Duration::from_secs(5))
    );
    // Paused inside a size line.
    let (pumped, sink, took) = stalls_after(b"5\r\nhello\r\n6", Framing::Chunked).await;
    assert_eq!(
        (pumped, &sink.data[..], took),
        (Pumped::Client(ProxyError::BodyTimeout), &b"hello"[..], Duration::from_secs(5))
    );
}

#[tokio::test(start_paused = true)]
async fn body_timeout_limits_each_pause_not_the_whole_upload() {
    let limits = Limits { body_timeout: Duration::from_secs(5), ..Limits::default() };
    let pause = Duration::from_millis(4900);
    let script =
        Builder::new().read(b"he").wait(pause).read(b"ll").wait(pause).read(b"o ").wait(pause).read(b"world").build();
    let mut sink = Collect::default();
    let start = Instant::now();
    let pumped: Pumped = pump(&mut client(script, limits), &mut sink, Framing::Length(11), 100).await.into();
    assert_eq!((pumped, &sink.data[..], start.elapsed()), (Pumped::Done, &b"hello world"[..], 3 * pause));
}

#[tokio::test]
async fn an_expected_100_continue_is_answered_then_the_body_read() {
    // The interim answer's exact bytes (the mock fails on any other write), then the body.
    let script = Builder::new().write(b"HTTP/1.1 100 Continue\r\n\r\n").read(b"hello").build();
    let mut client = client(script, Limits::default());
    assert!(client.send_continue().await);
    let mut sink = Collect::default();
    let pumped: Pumped = pump(&mut client, &mut sink, Framing::Length(5), 100).await.into();
    assert_eq!((pumped, &sink.data[..]), (Pumped::Done, &b"hello"[..]));
}

//! The HTTP/1.1 engine over real sockets: RFC 9112 rules on what clients
//! send, what a misbehaving upstream sends, pipelining, HTTP/1.0 keep-alive,
//! and upstream connection reuse. Upstreams here are raw sockets that answer
//! with scripted bytes, so each test controls the exact framing.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::scripted::Scripted;
use common::{Daemon, Upstream, raw, read_head, read_response};

async fn frontend() -> (Upstream, Daemon) {
    let upstream = Upstream::start("frontend").await;
    let daemon =
        Daemon::start(&format!("[upstreams.app]\nurl = \"{}\"\n[default]\nupstream = \"app\"\n", upstream.url()));
    (upstream, daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn heads_that_parsers_could_read_two_ways_get_400_and_reach_nobody() {
    let (upstream, daemon) = frontend().await;
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\rX-A: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Folded: a\r\n b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Nul: a\0b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;\x01\r\nhello\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET / HTTP/9.9\r\nHost: h\r\n\r\n",
        b"G\x01T / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"POST /both?access_token=s3cr3t HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ];
    for request in cases {
        let response = raw(daemon.addr, request);
        assert_eq!(response.status, 400, "{:?}", String::from_utf8_lossy(request));
        assert_eq!(response.header("connection").as_deref(), Some("close"));
    }
    let bodies: Vec<_> = upstream.seen().iter().filter(|s| s.complete && !s.body.is_empty()).cloned().collect();
    assert!(bodies.is_empty(), "a refused body reached the upstream: {bodies:?}");
    // The chunked ones were routed (their heads are fine) but their bodies never completed.
    assert!(common::eventually(Duration::from_secs(5), || upstream.seen().len() == 2), "{:?}", upstream.seen());
    assert!(upstream.seen().iter().all(|s| s.method == "POST" && !s.complete), "{:?}", upstream.seen());
    // Their log lines name what broke: the body, not the head.
    let body_broke = || daemon.logs().iter().filter(|l| l.contains("malformed chunked request body")).count() == 2;
    assert!(common::eventually(Duration::from_secs(5), body_broke), "{:?}", daemon.logs());
    // A head whose request line could not be read names no method, host or path: each is `-`.
    let unread = daemon.wait_for_log("hookgate::access: client=127.0.0.1 method=- ", Duration::from_secs(5));
    assert!(unread.contains(" method=- host=- path=- proto=- route=- upstream=- status=400 "), "{unread}");
    // One whose line was read names its method and path (never its query: it may hold a secret).
    let read = daemon
        .wait_for_log("hookgate::access: client=127.0.0.1 method=POST host=- path=/both ", Duration::from_secs(5));
    assert!(read.contains(" proto=HTTP/1.1 route=- upstream=- status=400 "), "{read}");
    daemon.wait_for_log("bad request: both Content-Length and Transfer-Encoding", Duration::from_secs(5));
    assert!(daemon.logs().iter().all(|l| !l.contains("s3cr3t")), "{:#?}", daemon.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_past_64_kib_gets_414_not_431() {
    let (upstream, daemon) = frontend().await;
    let huge = format!("GET /{} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "a".repeat(70 * 1024));
    assert_eq!(raw(daemon.addr, huge.as_bytes()).status, 414);
    assert!(upstream.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn pipelined_requests_are_answered_in_order() {
    let (upstream, daemon) = frontend().await;
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut pipeline = Vec::new();
    for i in 0..5 {
        pipeline.extend_from_slice(
            format!("GET /slow?ms={} HTTP/1.1\r\nHost: h\r\nX-N: {i}\r\n\r\n", 50 - i * 10).as_bytes(),
        );
    }
    pipeline.extend_from_slice(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nlast");
    stream.write_all(&pipeline).unwrap();
    for _ in 0..5 {
        let response = read_response(&mut stream).unwrap();
        assert_eq!((response.status, response.body_text().as_str()), (200, "slow done"));
    }
    assert_eq!(read_response(&mut stream).unwrap().body_text(), "last");
    let order: Vec<String> =
        upstream.seen().iter().filter_map(|s| s.headers.get("x-n")).map(|v| v.to_str().unwrap().to_string()).collect();
    assert_eq!(order, ["0", "1", "2", "3", "4"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn http_1_0_clients_get_keep_alive_only_when_they_ask() {
    let (_, daemon) = frontend().await;
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for _ in 0..2 {
        stream.write_all(b"GET /a HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n").unwrap();
        let response = read_response(&mut stream).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("connection").as_deref(), Some("keep-alive"));
        assert!(response.header("transfer-encoding").is_none(), "no chunked framing for HTTP/1.0");
    }
    // A streamed (chunked) body goes to an HTTP/1.0 client raw, ended by the close.
    stream.write_all(b"GET /big?bytes=100000 HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n").unwrap();
    let response = read_response(&mut stream).unwrap();
    assert_eq!((response.status, response.body.len()), (200, 100000));
    assert_eq!(response.header("connection").as_deref(), Some("close"));
    let plain = raw(daemon.addr, b"GET /b HTTP/1.0\r\nHost: h\r\n\r\n");
    assert_eq!(plain.header("connection").as_deref(), Some("close"));
    daemon.wait_for_log(" path=/b proto=HTTP/1.0 ", Duration::from_secs(5));
}

/// Answers hookgate makes itself (a `respond` route) keep an HTTP/1.0
/// connection alive the same way, when asked.
#[test]
fn http_1_0_keep_alive_holds_for_local_answers_too() {
    let daemon = Daemon::start(
        "[[routes]]\nname = \"r\"\npath = \"/r\"\nrespond = { status = 204 }\n[default]\nrespond = { status = 200, body = \"here\\n\" }\n",
    );
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for target in ["/", "/r", "/"] {
        stream
            .write_all(format!("GET {target} HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n").as_bytes())
            .unwrap();
        let response = read_response(&mut stream).unwrap();
        assert!(response.status == 200 || response.status == 204, "{target}: {}", response.status);
        assert_eq!(response.header("connection").as_deref(), Some("keep-alive"), "{target}");
    }
    let plain = raw(daemon.addr, b"GET / HTTP/1.0\r\nHost: h\r\n\r\n");
    assert_eq!((plain.status, plain.header("connection").as_deref()), (200, Some("close")));
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_connections_are_reused_and_a_closed_one_is_retried_once() {
    let ok: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let upstream = Scripted::start(&[ok], usize::MAX);
    let daemon = Daemon::start(&format!("[runtime]\nworkers = 1\n{}", upstream.config("")));
    for _ in 0..5 {
        let response = common::get(daemon.addr, "h", "/");
        assert_eq!((response.status, response.body_text().as_str()), (200, "ok"));
    }
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 1, "one pooled connection serves them all");

    // An upstream that closes every connection after one answer: an idempotent
    // request on a connection it has closed meanwhile gets a fresh one.
    let once = Scripted::start(&[ok], 1);
    let daemon = Daemon::start(&format!("[runtime]\nworkers = 1\n{}", once.config("")));
    for _ in 0..3 {
        assert_eq!(common::get(daemon.addr, "h", "/").status, 200);
    }
    assert_eq!(once.connections.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn max_idle_caps_the_pool() {
    let ok: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let upstream = Scripted::start(&[ok], usize::MAX);
    let daemon = Daemon::start(&format!("[runtime]\nworkers = 1\n{}", upstream.config("max_idle = 0")));
    for _ in 0..3 {
        assert_eq!(common::get(daemon.addr, "h", "/").status, 200);
    }
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 3, "max_idle = 0 keeps nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_upstream_connections_are_closed_when_their_time_is_up() {
    let request: &[u8] = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    let closed_within = |upstream: &Scripted, seconds| {
        common::eventually(Duration::from_secs(seconds), || upstream.closed_by_proxy.load(Ordering::SeqCst) == 1)
    };
    // idle_timeout, with no later request to notice it.
    let plain = Scripted::start(&[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"], usize::MAX);
    let daemon = Daemon::start(&plain.config("idle_timeout = \"1s\""));
    assert_eq!(raw(daemon.addr, request).status, 200);
    assert!(closed_within(&plain, 5), "the pooled connection outlived idle_timeout");
    // The upstream's own, shorter timeout (a second is kept in hand); idle_timeout is 60 s here.
    let hinted =
        Scripted::start(&[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=2\r\n\r\nok"], usize::MAX);
    let daemon = Daemon::start(&hinted.config(""));
    let response = raw(daemon.addr, request);
    assert_eq!(response.status, 200);
    assert!(response.header("keep-alive").is_none(), "Keep-Alive is hop-by-hop");
    assert!(closed_within(&hinted, 5), "the pooled connection outlived the upstream's Keep-Alive timeout");
    assert_eq!(hinted.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_upstream_framing_is_never_passed_on() {
    let cases: &[(&[u8], u16)] = &[
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 502),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 502),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 502),
        (b"NOT HTTP AT ALL\r\n\r\n", 502),
    ];
    for (response, status) in cases {
        let upstream = Scripted::start(&[response], 1);
        let daemon = Daemon::start(&upstream.config(""));
        assert_eq!(common::get(daemon.addr, "h", "/").status, *status, "{:?}", String::from_utf8_lossy(response));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_framing_is_rewritten_for_the_client() {
    // Interim 103 is dropped; chunked with extensions and trailers is decoded and framed again.
    let chunked: &[u8] = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n";
    let upstream = Scripted::start(&[chunked], 1);
    let daemon = Daemon::start(&upstream.config(""));
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).unwrap();
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(!text.contains("ext=1"), "chunk extensions must not pass: {text}");
    assert!(text.ends_with("\r\n\r\n5\r\nabcde\r\n0\r\nX-Sum: 5\r\n\r\n"), "{text}");

    // A body that ends when the upstream closes reaches an HTTP/1.1 client chunked.
    let until_close: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it";
    let upstream = Scripted::start(&[until_close], 1);
    let daemon = Daemon::start(&upstream.config(""));
    let response = raw(daemon.addr, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(response.body_text(), "all of it");
    assert_eq!(response.header("transfer-encoding").as_deref(), Some("chunked"));

    // A chunked body cut short is logged as aborted and the client sees no clean end.
    let cut: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
    let upstream = Scripted::start(&[cut], 1);
    let daemon = Daemon::start(&upstream.config(""));
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(read_head(&mut stream).unwrap().status, 200);
    assert!(read_response(&mut stream).is_err() || common::read_chunked(&mut std::io::BufReader::new(stream)).is_err());
    daemon.wait_for_log("aborted=upstream", Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_uploads_are_framed_again_with_their_trailers() {
    let ok: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let upstream = Scripted::start(&[ok], 1);
    let daemon = Daemon::start(&upstream.config(""));
    let request = b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2;a=b\r\nhe\r\n3\r\nllo\r\n0\r\nX-Check: 1\r\n\r\n";
    assert_eq!(raw(daemon.addr, request).status, 200);
    let seen = upstream.requests.lock().unwrap().clone();
    assert!(seen[0].to_ascii_lowercase().contains("transfer-encoding: chunked"), "{seen:?}");
    assert!(seen[0].ends_with("\r\n\r\n5\r\nhello\r\n0\r\nX-Check: 1\r\n\r\n"), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn chunk_extensions_are_limited_across_a_whole_body() {
    let ok: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let upstream = Scripted::start(&[ok], 1);
    let daemon = Daemon::start(&upstream.config(""));
    // Each size line is well under the per-line limit; 20 of them pass 16 KiB.
    let upload = |chunks: usize| {
        let chunk = format!("1;{}\r\nx\r\n", "e".repeat(1000));
        let head = "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        format!("{head}{}0\r\n\r\n", chunk.repeat(chunks))
    };
    assert_eq!(raw(daemon.addr, upload(10).as_bytes()).status, 200);
    let response = raw(daemon.addr, upload(20).as_bytes());
    assert_eq!((response.status, response.body_text().as_str()), (400, "bad request\n"));
    // Only the first body reached the upstream whole, framed again without its extensions.
    let seen = upstream.requests.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (_, body) = seen[0].split_once("\r\n\r\n").unwrap();
    assert!(!body.contains(';'), "chunk extensions must not pass: {body:?}");
    assert_eq!(common::read_chunked(&mut body.as_bytes()).unwrap(), b"x".repeat(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_cancels_its_upstream_exchange() {
    let (upstream, daemon) = frontend().await;
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    stream.write_all(b"GET /slow?ms=20000 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert!(common::eventually(Duration::from_secs(5), || !upstream.seen().is_empty()));
    drop(stream);
    // Logged long before the upstream would have answered.
    let line = daemon.wait_for_log("status=499", Duration::from_secs(10));
    assert!(line.contains("aborted=client_closed") && line.contains("path=/slow"), "{line}");
}

/// A long body of varied bytes (so a shifted or repeated piece shows).
fn long_body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// A response with `head` and `body`, leaked for the scripted upstream.
fn leaked_response(head: &str, body: &[u8]) -> &'static [u8] {
    let mut response = head.as_bytes().to_vec();
    response.extend_from_slice(body);
    Box::leak(response.into_boxed_slice())
}

#[tokio::test(flavor = "multi_thread")]
async fn long_bodies_pass_through_byte_for_byte() {
    // Long enough to be spliced between the two sockets, on a plain client and upstream.
    let body = long_body(3 * 1024 * 1024 + 7);
    let sized = leaked_response(&format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()), &body);
    let upstream = Scripted::start(&[sized], usize::MAX);
    let daemon = Daemon::start(&format!("[runtime]\nworkers = 1\n{}", upstream.config("")));
    let mut client = TcpStream::connect(daemon.addr).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    for round in 0..3 {
        client.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        let response = read_response(&mut client).unwrap();
        assert_eq!(response.status, 200, "round {round}");
        assert!(response.body == body, "round {round}: the body changed on the way");
    }
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 1, "a whole long body leaves the connection reusable");

    // Close-delimited, to an HTTP/1.0 client: it ends where the upstream closes.
    let until_close = leaked_response("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", &body);
    let upstream = Scripted::start(&[until_close], 1);
    let daemon = Daemon::start(&upstream.config(""));
    let response = raw(daemon.addr, b"GET / HTTP/1.0\r\nHost: h\r\n\r\n");
    assert_eq!(response.status, 200);
    assert!(response.body == body, "close-delimited: {} of {} bytes", response.body.len(), body.len());
}

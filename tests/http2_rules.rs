//! The forwarding rules of the HTTP/1.1 path, held over HTTP/2 clients too
//! (issue 32's list): `Via` names the protocol the request came in,
//! (`forwarding` checks HTTP/1.0's), `max_headers` refuses a head with too many fields, and `Expect` stops at
//! hookgate, an upstream's hop-by-hop headers stop here, each checked on both
//! front ends of the same TLS listener; a lower-case method is refused, and
//! over HTTP/2 a `host` other than `:authority`; and
//! the upstream pool's `max_idle`, `idle_timeout` and retry for HTTP/2 clients.

use crate::common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{Full, StreamBody};

use common::scripted::Scripted;
use common::tls_client::{Front, Pki, tls_config};
use common::{Daemon, Upstream};

fn webhook(builder: http::request::Builder) -> Request<Full<Bytes>> {
    builder.body(Full::new(Bytes::from_static(br#"{"update_id":1}"#))).unwrap()
}

const WEBHOOK: &str = "https://a.test/api/v1/guest/telegram/webhook";

#[tokio::test(flavor = "multi_thread")]
async fn via_names_the_protocol_each_request_came_in() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&tls_config(&pki, &app, ""));
    for http2 in [false, true] {
        let mut front = Front::connect(&pki, daemon.addr, http2).await;
        let (status, _) = front.send(webhook(Request::post(WEBHOOK).header("host", "a.test"))).await;
        assert_eq!(status, 200);
    }
    let vias: Vec<String> = app.seen().iter().map(|s| s.headers["via"].to_str().unwrap().to_string()).collect();
    assert_eq!(vias, ["1.1 hookgate", "2 hookgate"], "RFC 9110 §7.6.3: the received protocol");
}

/// RFC 9110 §7.6.1: an upstream's hop-by-hop headers, and those its
/// `Connection` names, stop at hookgate over either protocol; `Via` is added.
#[tokio::test(flavor = "multi_thread")]
async fn an_upstreams_hop_by_hop_headers_stop_here_over_either_protocol() {
    const HOPPY: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\n\
X-Secret: s\r\nProxy-Connection: keep-alive\r\nX-Kept: k\r\nContent-Length: 2\r\n\r\nok";
    let pki = Pki::two_sites();
    for http2 in [false, true] {
        let upstream = Scripted::start(&[HOPPY], 1);
        let daemon = Daemon::start(&upstream.behind_tls(&pki, ""));
        let mut front = Front::connect(&pki, daemon.addr, http2).await;
        let request = Request::get("https://a.test/page").header("host", "a.test").body(Full::new(Bytes::new()));
        let (status, headers, body) = front.exchange(request.unwrap()).await;
        assert_eq!((status, &body[..]), (200, &b"ok"[..]), "http2 {http2}");
        for gone in ["x-secret", "keep-alive", "proxy-connection", "connection"] {
            assert!(!headers.contains_key(gone), "http2 {http2}: {gone} passed: {headers:?}");
        }
        assert_eq!(headers["x-kept"], "k", "http2 {http2}");
        assert_eq!(headers["via"], "1.1 hookgate", "http2 {http2}: the upstream answered in HTTP/1.1");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn max_headers_refuses_the_same_head_over_either_protocol() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&format!("{}\n[limits]\nmax_headers = 40\n", tls_config(&pki, &app, "")));
    for http2 in [false, true] {
        let mut front = Front::connect(&pki, daemon.addr, http2).await;
        let mut within = Request::post(WEBHOOK).header("host", "a.test");
        let mut over = Request::post(WEBHOOK).header("host", "a.test");
        for i in 0..30 {
            within = within.header(format!("x-field-{i}"), "v");
        }
        for i in 0..60 {
            over = over.header(format!("x-field-{i}"), "v");
        }
        assert_eq!(front.send(webhook(within)).await.0, 200, "http2 {http2}: 30 fields are within 40");
        let mut front = Front::connect(&pki, daemon.addr, http2).await;
        assert_eq!(front.send(webhook(over)).await.0, 431, "http2 {http2}: 60 fields are over 40");
    }
    assert_eq!(app.seen().len(), 2, "only the heads within the limit were forwarded");
}

#[tokio::test(flavor = "multi_thread")]
async fn expect_stops_at_hookgate_over_either_protocol() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&tls_config(&pki, &app, ""));
    for http2 in [false, true] {
        let mut front = Front::connect(&pki, daemon.addr, http2).await;
        let request = Request::post(WEBHOOK).header("host", "a.test").header("expect", "100-continue");
        assert_eq!(front.send(webhook(request)).await.0, 200);
    }
    let seen = app.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert!(!s.headers.contains_key("expect"), "Expect reached the upstream over {:?}", s.headers.get("via"));
        assert_eq!(s.body, &br#"{"update_id":1}"#[..]);
    }
}

/// A method with a lower-case letter is refused before routing, as nginx
/// does: PHP frameworks upper-case it, so `post` would reach the webhook's
/// handler past the `methods = ["POST"]` route and its guards.
#[tokio::test(flavor = "multi_thread")]
async fn a_method_in_lower_case_is_refused_over_either_protocol() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&tls_config(&pki, &app, ""));
    for http2 in [false, true] {
        for (method, status) in [("post", 400), ("Post", 400), ("POST", 200)] {
            let mut front = Front::connect(&pki, daemon.addr, http2).await;
            let request = Request::builder().method(method).uri(WEBHOOK).header("host", "a.test");
            let (got, body) = front.send(webhook(request)).await;
            assert_eq!(got, status, "http2 {http2}, {method}: {body:?}");
        }
    }
    assert_eq!(app.seen().len(), 2, "only the upper-case POSTs were forwarded");
    assert!(daemon.logs().iter().any(|l| l.contains("method not in upper case")), "{:#?}", daemon.logs());
}

/// RFC 9113 §8.3.1: a `host` naming another host than `:authority` is
/// malformed; the same name in another case, or with its default port, is not.
#[tokio::test(flavor = "multi_thread")]
async fn an_http2_host_that_differs_from_the_authority_is_refused() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&tls_config(&pki, &app, ""));
    for (host, status) in [("b.test", 400), ("evil.example", 400), ("A.Test", 200), ("a.test:443", 200)] {
        let mut front = Front::connect(&pki, daemon.addr, true).await;
        let (got, body) = front.send(webhook(Request::post(WEBHOOK).header("host", host))).await;
        assert_eq!(got, status, "host {host}: {body:?}");
    }
    let seen = app.seen();
    assert_eq!(seen.len(), 2, "only the matching heads were forwarded");
    assert!(seen.iter().all(|s| s.headers["host"] == "a.test"), "the upstream is told :authority");
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// `max_idle = 0`: a connection per request. (Without it hyper's pool may
/// or may not have the last connection back when the next request comes, so
/// the count of the default is not exact.)
#[tokio::test(flavor = "multi_thread")]
async fn max_idle_holds_for_http2_clients() {
    let pki = Pki::two_sites();
    let upstream = Scripted::start(&[OK], usize::MAX);
    let daemon = Daemon::start(&upstream.behind_tls(&pki, "max_idle = 0"));
    let mut front = Front::connect(&pki, daemon.addr, true).await;
    for _ in 0..3 {
        assert_eq!(front.send(webhook(Request::post(WEBHOOK))).await, (200, Bytes::from_static(b"ok")));
    }
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 3, "max_idle = 0 keeps nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_timeout_holds_for_http2_clients() {
    let pki = Pki::two_sites();
    let upstream = Scripted::start(&[OK], usize::MAX);
    let daemon = Daemon::start(&upstream.behind_tls(&pki, "idle_timeout = \"1s\""));
    let mut front = Front::connect(&pki, daemon.addr, true).await;
    assert_eq!(front.send(webhook(Request::post(WEBHOOK))).await.0, 200);
    let closed = || upstream.closed_by_proxy.load(Ordering::SeqCst) == 1;
    assert!(common::eventually(Duration::from_secs(6), closed), "the pooled connection outlived idle_timeout");
}

/// A body of unknown length (no `content-length`), in two DATA frames, with
/// trailers if given: what an HTTP/2 client streams.
type Frames = futures_util::stream::Iter<std::vec::IntoIter<Result<http_body::Frame<Bytes>, std::convert::Infallible>>>;

fn streamed(builder: http::request::Builder, trailers: Option<http::HeaderMap>) -> Request<StreamBody<Frames>> {
    let mut frames = vec![
        Ok(http_body::Frame::data(Bytes::from_static(b"hello "))),
        Ok(http_body::Frame::data(Bytes::from_static(b"world"))),
    ];
    if let Some(trailers) = trailers {
        frames.push(Ok(http_body::Frame::trailers(trailers)));
    }
    builder.body(StreamBody::new(futures_util::stream::iter(frames))).unwrap()
}

/// A GET body hyper's client would have dropped (it assumes none without a
/// length), and a POST's declared trailers, with and without a
/// `content-length` (HTTP/2 allows both), all chunked to the upstream.
#[tokio::test(flavor = "multi_thread")]
async fn streamed_bodies_and_trailers_reach_the_upstream_over_http2() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let pki = Pki::two_sites();
    let upstream = Scripted::start(&[OK], usize::MAX);
    let daemon = Daemon::start(&upstream.behind_tls(&pki, ""));
    let stream = common::tls_client::connect(&common::tls_client::client(&pki, &[b"h2"]), daemon.addr, "a.test").await;
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-sum", "42".parse().unwrap());
    let requests = [
        streamed(Request::get("https://a.test/search"), None),
        streamed(Request::post(WEBHOOK).header("trailer", "x-sum").header("te", "trailers"), Some(trailers.clone())),
        streamed(Request::post(WEBHOOK).header("trailer", "x-sum").header("content-length", "11"), Some(trailers)),
    ];
    for request in requests {
        let response = send.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let seen: Vec<String> = upstream.requests.lock().unwrap().iter().map(|r| r.to_ascii_lowercase()).collect();
    for (request, what) in seen.iter().zip(["the GET's body", "the POST's body", "the POST with a length"]) {
        assert!(request.contains("transfer-encoding: chunked\r\n"), "{what} is framed: {request}");
        assert!(request.contains("6\r\nhello \r\n5\r\nworld\r\n0\r\n"), "{what} arrived whole: {request}");
    }
    for request in &seen[1..] {
        assert!(request.ends_with("0\r\nx-sum: 42\r\n\r\n"), "the declared trailer reached the upstream: {request}");
    }
    assert!(!seen[2].contains("content-length"), "chunked instead of the length: {}", seen[2]);
}

/// An upstream that reads a connection's second request and closes without
/// answering it (it closed the connection as the request went out): an
/// idempotent request is sent again on a fresh connection, once, over HTTP/1.1
/// and HTTP/2 alike; a POST is not (502).
#[tokio::test(flavor = "multi_thread")]
async fn a_get_the_upstream_closed_on_unanswered_is_sent_again() {
    let pki = Pki::two_sites();
    for http2 in [false, true] {
        let upstream = Scripted::start(&[OK, b""], 2);
        let daemon = Daemon::start(&upstream.behind_tls(&pki, ""));
        let mut front = Front::connect(&pki, daemon.addr, http2).await;
        for i in 0..3 {
            let request = Request::get("https://a.test/page").header("host", "a.test").body(Full::new(Bytes::new()));
            assert_eq!(front.send(request.unwrap()).await.0, 200, "http2 {http2}: GET {i}");
        }
        let post = front.send(webhook(Request::post(WEBHOOK).header("host", "a.test"))).await.0;
        assert_eq!(post, 502, "http2 {http2}: a POST the upstream may have acted on is not sent twice");
    }
    // Once, not again and again, and only on a reused connection: an upstream that never
    // answers gets the GET on one fresh connection over either protocol (HTTP/2 clients'
    // requests go over the engine's pools and retry rule too).
    for (http2, tries) in [(false, 1), (true, 1)] {
        let upstream = Scripted::start(&[b""], 1);
        let daemon = Daemon::start(&upstream.behind_tls(&pki, ""));
        let mut front = Front::connect(&pki, daemon.addr, http2).await;
        let request = Request::get("https://a.test/page").header("host", "a.test").body(Full::new(Bytes::new()));
        assert_eq!(front.send(request.unwrap()).await.0, 502, "http2 {http2}");
        assert_eq!(upstream.connections.load(Ordering::SeqCst), tries, "http2 {http2}");
    }
}

//! HTTP/2 clients' requests over the engine's per-worker upstream pools
//! (issue 32): many streams of one connection sharing pooled connections, a
//! stream reset mid-body closing its upstream connection, a large upload
//! under HTTP/2 flow control, an upstream's `Keep-Alive: timeout=N`, guards,
//! a client resetting served streams sent away, and a graceful shutdown with
//! streams in flight.

use crate::common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;

use common::scripted::Scripted;
use common::tls_client::{Pki, h2, tls_config};
use common::{Daemon, Upstream};

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(format!("https://a.test{path}")).body(Full::new(Bytes::new())).unwrap()
}

/// Sends `request` on `send`; its status and whole body.
async fn fetch(send: &SendRequest<Full<Bytes>>, request: Request<Full<Bytes>>) -> (u16, Bytes) {
    let response = send.clone().send_request(request).await.unwrap();
    let status = response.status().as_u16();
    (status, response.into_body().collect().await.unwrap().to_bytes())
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// 48 concurrent streams on one connection, twice: each gets its answer, on
/// at most one upstream connection per stream in flight at once; then 48
/// more, one at a time, find those connections in the pool and open none.
#[tokio::test(flavor = "multi_thread")]
async fn many_streams_of_one_connection_share_the_pooled_upstream_connections() {
    let pki = Pki::two_sites();
    let upstream = Scripted::start(&[OK], usize::MAX);
    let daemon = Daemon::start(&upstream.behind_tls(&pki, ""));
    let send = h2(&pki, daemon.addr).await;
    for _ in 0..2 {
        let streams = (0..48).map(|i| fetch(&send, get(&format!("/page/{i}"))));
        for answer in futures_util::future::join_all(streams).await {
            assert_eq!(answer, (200, Bytes::from_static(b"ok")));
        }
    }
    let opened = upstream.connections.load(Ordering::SeqCst);
    // Never more than the streams in flight at once: the second 48 took the first's back from the pool.
    assert!((1..=48).contains(&opened), "2 × 48 concurrent streams opened {opened} upstream connections");
    for i in 0..48 {
        assert_eq!(fetch(&send, get(&format!("/again/{i}"))).await, (200, Bytes::from_static(b"ok")));
    }
    assert_eq!(upstream.connections.load(Ordering::SeqCst), opened, "the pooled connections were reused");
    assert_eq!(upstream.requests.lock().unwrap().len(), 144);
}

/// A client that resets its stream after the first bytes of a long body: the
/// upstream connection, with the rest of that body unread, is closed, and
/// the next request goes on a fresh one.
#[tokio::test(flavor = "multi_thread")]
async fn a_stream_reset_mid_body_closes_its_upstream_connection() {
    const PARTIAL: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nthe first bytes";
    let pki = Pki::two_sites();
    let upstream = Scripted::start(&[PARTIAL], usize::MAX);
    let daemon = Daemon::start(&upstream.behind_tls(&pki, ""));
    let send = h2(&pki, daemon.addr).await;
    let response = send.clone().send_request(get("/download")).await.unwrap();
    assert_eq!(response.headers()["content-length"], "1000000");
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, Bytes::from_static(b"the first bytes"));
    drop(body); // RST_STREAM (CANCEL)
    let closed = || upstream.closed_by_proxy.load(Ordering::SeqCst) == 1;
    assert!(common::eventually(Duration::from_secs(5), closed), "the connection with a body unread was not closed");
    let response = send.clone().send_request(get("/download")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 2, "the reset stream's connection was not reused");
}

/// 8 MiB up and back over one stream, far past HTTP/2's flow-control
/// windows, with and without a declared length: every byte arrives, in order.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_upload_streams_through_flow_control_both_ways() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&tls_config(&pki, &app, ""));
    let send = h2(&pki, daemon.addr).await;
    let payload: Bytes = (0..8 << 20).map(common::pattern_byte).collect::<Vec<u8>>().into();
    for declared in [true, false] {
        let mut request = Request::post("https://a.test/echo");
        if declared {
            request = request.header("content-length", payload.len());
        }
        let (status, echoed) = fetch(&send, request.body(Full::new(payload.clone())).unwrap()).await;
        assert_eq!(status, 200, "declared length {declared}");
        assert!(echoed == payload, "declared length {declared}: {} bytes came back", echoed.len());
    }
    let seen = app.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.complete && s.body == payload), "the upstream got every byte");
}

/// An upstream that says it closes idle connections after a second: the
/// connection is not kept for HTTP/2 clients' requests either.
#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_keep_alive_timeout_holds_for_http2_clients() {
    const SHORT: &[u8] = b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok";
    let pki = Pki::two_sites();
    let upstream = Scripted::start(&[SHORT], usize::MAX);
    let daemon = Daemon::start(&upstream.behind_tls(&pki, ""));
    let send = h2(&pki, daemon.addr).await;
    for _ in 0..2 {
        assert_eq!(fetch(&send, get("/page")).await, (200, Bytes::from_static(b"ok")));
    }
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 2, "a connection the upstream closes in 1 s was kept");
}

/// A route's guards hold over HTTP/2: `allow_from` refuses a client outside
/// it, and `rate_limit` answers 429 past its burst, before the upstream.
#[tokio::test(flavor = "multi_thread")]
async fn guards_hold_over_http2() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let guarded = "[[routes]]\nname = \"office\"\npath = \"/office\"\nupstream = \"app\"\n\
                   allow_from = [\"127.0.0.2/32\"]\n\
                   [[routes]]\nname = \"limited\"\npath = \"/limited\"\nupstream = \"app\"\n\
                   rate_limit = { per_second = 0.1, burst = 2 }\n";
    let daemon = Daemon::start(&tls_config(&pki, &app, guarded));
    let send = h2(&pki, daemon.addr).await;
    assert_eq!(fetch(&send, get("/office")).await.0, 403);
    let statuses = [fetch(&send, get("/limited")).await.0, fetch(&send, get("/limited")).await.0];
    assert_eq!(statuses, [200, 200]);
    assert_eq!(fetch(&send, get("/limited")).await.0, 429);
    assert_eq!(app.seen().len(), 2, "only the two within the burst reached the upstream");
}

/// Rapid reset of served streams (CVE-2023-44487 with each stream sent
/// upstream before its reset, found by a hostile-client probe): batches of
/// 20 streams, each reset once the upstream has it. Past 100 such resets in
/// quick succession the connection is sent away with GOAWAY, and the log
/// says why.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_resetting_served_streams_is_sent_away() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&tls_config(&pki, &app, ""));
    let send = h2(&pki, daemon.addr).await;
    for round in 0..6 {
        reset_served_batch(&send, &app, round, 20).await;
    }
    let line = daemon.wait_for_log("HTTP/2 streams before their answers", Duration::from_secs(5));
    assert!(line.contains("more than 100") && line.contains("GOAWAY"), "{line}");
    // GOAWAY, then the connection closes at once: a client that never answers the GOAWAY's PING gets no more streams.
    assert!(common::eventually(Duration::from_secs(5), || send.is_closed()), "the connection stayed open");
    assert!(send.clone().send_request(get("/after")).await.is_err());
}

/// The limit forgives 10 resets a second, so a long-lived connection that
/// resets streams at a visitor's pace (a CDN's, carrying many of them) is
/// never sent away: 135 resets in three batches over about ten seconds, and
/// the connection still answers.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_resetting_served_streams_slowly_keeps_its_connection() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&tls_config(&pki, &app, ""));
    let send = h2(&pki, daemon.addr).await;
    for round in 0..3 {
        if round > 0 {
            tokio::time::sleep(Duration::from_millis(4600)).await;
        }
        reset_served_batch(&send, &app, round, 45).await;
    }
    assert_eq!(fetch(&send, get("/after")).await.0, 200, "the connection was sent away");
    let warned = daemon.logs().iter().any(|line| line.contains("HTTP/2 streams before their answers"));
    assert!(!warned, "the log warned of a rapid reset");
}

/// Opens `count` streams to a slow upstream path and resets them all once
/// the upstream has every one.
async fn reset_served_batch(send: &SendRequest<Full<Bytes>>, app: &Upstream, round: usize, count: usize) {
    let batch = (0..count).map(|i| send.clone().send_request(get(&format!("/slow?ms=30000&r={round}&i={i}"))));
    let batch = futures_util::future::join_all(batch);
    let served = app.seen().len() + count;
    let upstream_has_them = async {
        while app.seen().len() < served {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::select! {
        answers = batch => panic!("round {round}: answered before the upstream had them: {answers:?}"),
        // Dropping the batch resets its streams.
        () = upstream_has_them => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => panic!("round {round}: the upstream saw {}", app.seen().len()),
    }
}

/// SIGTERM with four streams waiting on a slow upstream: each is answered
/// in full, then hookgate exits cleanly.
#[tokio::test(flavor = "multi_thread")]
async fn a_graceful_shutdown_finishes_the_streams_in_flight() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let mut daemon = Daemon::start(&tls_config(&pki, &app, ""));
    let send = h2(&pki, daemon.addr).await;
    let streams: Vec<_> = (0..4).map(|_| tokio::spawn(fetch_owned(send.clone(), get("/slow?ms=1500")))).collect();
    assert!(common::eventually(Duration::from_secs(5), || app.seen().len() == 4), "the streams reached the upstream");
    daemon.signal("TERM");
    for stream in streams {
        assert_eq!(stream.await.unwrap(), (200, Bytes::from_static(b"slow done")));
    }
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)), Some(0));
}

/// SIGTERM with a stream still waiting for its upstream when the grace runs
/// out: over HTTP/2 too it gets `503 shutting down, retry later`, as over
/// HTTP/1.1 (found by the walkthrough of 2026-12-07: the connection was
/// dropped at once, and the access line said 503 to a client that got nothing).
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_grace_answers_a_waiting_stream_503() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let mut daemon = Daemon::start(&tls_config(&pki, &app, "[limits]\nshutdown_grace = \"500ms\""));
    let send = h2(&pki, daemon.addr).await;
    let stream = tokio::spawn(fetch_owned(send.clone(), get("/slow?ms=20000")));
    assert!(common::eventually(Duration::from_secs(5), || app.seen().len() == 1), "the stream reached the upstream");
    daemon.signal("TERM");
    let answer = tokio::time::timeout(Duration::from_secs(10), stream).await.unwrap().unwrap();
    assert_eq!(answer, (503, Bytes::from_static(b"shutting down, retry later\n")));
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), Some(0));
    let access = daemon.wait_for_log("path=/slow", Duration::from_secs(1));
    assert!(access.contains("status=503") && access.contains("proto=HTTP/2"), "{access}");
}

async fn fetch_owned(send: SendRequest<Full<Bytes>>, request: Request<Full<Bytes>>) -> (u16, Bytes) {
    fetch(&send, request).await
}

/// SIGTERM while a client is still reading a long body over HTTP/2, at
/// about 8 MiB/s, so that the rest waits in the kernel's buffers: the body
/// arrives whole. hyper hands the last bytes to the socket and ends the
/// connection while the client still sends its window updates; a close with
/// those unread would reset the connection, and the client would lose what
/// it had not read yet (found by a README walkthrough: 1.7 of 50 MiB lost).
#[tokio::test(flavor = "multi_thread")]
async fn a_graceful_shutdown_lets_a_slow_reader_finish_its_download() {
    const SIZE: usize = 24 << 20;
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let mut daemon = Daemon::start(&tls_config(&pki, &app, ""));
    let tls = common::tls_client::connect(&common::tls_client::client(&pki, &[b"h2"]), daemon.addr, "a.test").await;
    let io = hyper_util::rt::TokioIo::new(Throttled { inner: tls, pause: None });
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(conn);
    let response = send.send_request(get(&format!("/big?bytes={SIZE}&length"))).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let (mut read, mut signalled) = (0, false);
    while let Some(frame) = body.frame().await {
        read += frame.expect("the download was cut").into_data().map_or(0, |data| data.len());
        if read > SIZE / 8 && !signalled {
            daemon.signal("TERM");
            signalled = true;
        }
    }
    assert!(signalled);
    assert_eq!(read, SIZE, "the whole body arrived");
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)), Some(0));
}

/// A stream read 16 KiB at a time, 2 ms apart.
struct Throttled<T> {
    inner: T,
    pause: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Throttled<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::future::Future;
        if let Some(pause) = self.pause.as_mut() {
            std::task::ready!(pause.as_mut().poll(cx));
            self.pause = None;
        }
        let mut bytes = vec![0u8; buf.remaining().min(16 * 1024)];
        let mut small = tokio::io::ReadBuf::new(&mut bytes);
        std::task::ready!(std::pin::Pin::new(&mut self.inner).poll_read(cx, &mut small))?;
        buf.put_slice(small.filled());
        self.pause = Some(Box::pin(tokio::time::sleep(Duration::from_millis(2))));
        std::task::Poll::Ready(Ok(()))
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Throttled<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

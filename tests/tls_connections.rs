//! The life of an HTTPS connection: a handshake that never finishes, idle
//! keep-alive between requests, a drain, and a client that leaves while the
//! upstream thinks. Same set-up as `tls.rs` (`common::tls_client`).

use crate::common;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::client::TlsStream;

use common::tls_client::{Pki, client, connect, h2_with, tls_config};
use common::{Daemon, Upstream};

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_finishes_the_handshake_is_cut_off() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let config =
        tls_config(&pki, &app, "").replace("certificates = [", "handshake_timeout = \"500ms\"\ncertificates = [");
    let daemon = Daemon::start(&config);
    let mut tcp = tokio::net::TcpStream::connect(daemon.addr).await.unwrap();
    tcp.write_all(&[0x16, 0x03, 0x01]).await.unwrap(); // the start of a record, then silence
    let start = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "expected the connection to be closed");
    assert!(start.elapsed() < Duration::from_secs(5), "cut after {:?}", start.elapsed());
}

/// One keep-alive GET over `stream` (HTTP/1.1); the whole response as text.
async fn tls_get(stream: &mut TlsStream<tokio::net::TcpStream>) -> String {
    stream.write_all(b"GET /idle HTTP/1.1\r\nHost: a.test\r\n\r\n").await.unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\r\n\r\n") {
        let n = stream.read(&mut chunk).await.expect("response");
        assert!(n > 0, "closed before the response: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&seen).to_string()
}

/// Between requests a TLS connection is idle (idle_timeout), not slow
/// (header_timeout): it is not closed with a 408 once header_timeout passes.
#[tokio::test(flavor = "multi_thread")]
async fn an_idle_https_keep_alive_connection_outlives_header_timeout() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let limits = "[limits]\nheader_timeout = \"300ms\"\nidle_timeout = \"10s\"\n";
    let daemon = Daemon::start(&format!("{limits}{}", tls_config(&pki, &app, "")));
    let mut stream = connect(&client(&pki, &[b"http/1.1"]), daemon.addr, "a.test").await;
    assert!(tls_get(&mut stream).await.starts_with("HTTP/1.1 200"));
    // Idle for two and a half header timeouts.
    tokio::time::sleep(Duration::from_millis(750)).await;
    assert!(tls_get(&mut stream).await.starts_with("HTTP/1.1 200"), "the idle connection was kept");
    assert!(!daemon.logs().iter().any(|l| l.contains("status=408")), "no 408 for an idle connection");
}

/// A graceful shutdown closes idle TLS connections at once, as it does plain
/// ones, instead of waiting for shutdown_grace to cut them.
#[tokio::test(flavor = "multi_thread")]
async fn shutdown_does_not_wait_for_idle_https_connections() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let limits = "[limits]\nshutdown_grace = \"60s\"\n";
    let mut daemon = Daemon::start(&format!("{limits}{}", tls_config(&pki, &app, "")));
    let mut stream = connect(&client(&pki, &[b"http/1.1"]), daemon.addr, "a.test").await;
    assert!(tls_get(&mut stream).await.starts_with("HTTP/1.1 200"));
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)), Some(0), "exited without waiting the 60 s grace");
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "nothing more was sent on the idle connection");
}

/// Connections with no request in flight do not hold up the exit (issue 27
/// §11): one that never sends a ClientHello and one with half a request head
/// once kept a 60 s grace waiting for the 10 s handshake and head timeouts.
#[tokio::test(flavor = "multi_thread")]
async fn shutdown_does_not_wait_for_handshakes_or_half_heads() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let limits = "[limits]\nshutdown_grace = \"60s\"\nheader_timeout = \"30s\"\n";
    let config = format!("{limits}{}", tls_config(&pki, &app, ""))
        .replace("certificates = [", "handshake_timeout = \"30s\"\ncertificates = [");
    let mut daemon = Daemon::start(&config);
    let mut silent = tokio::net::TcpStream::connect(daemon.addr).await.unwrap();
    let mut half = connect(&client(&pki, &[b"http/1.1"]), daemon.addr, "a.test").await;
    half.write_all(b"GET /half HTTP/1.1\r\nHost: a.te").await.unwrap();
    // Both are accepted (and counted) before the signal.
    let admin = daemon.admin.unwrap();
    let open = || common::get(admin, "localhost", "/metrics").body_text().contains("\nhookgate_open_connections 2\n");
    assert!(
        common::eventually(Duration::from_secs(10), open),
        "{}",
        common::get(admin, "localhost", "/metrics").body_text()
    );
    let start = std::time::Instant::now();
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(Duration::from_secs(40)), Some(0));
    assert!(start.elapsed() < Duration::from_secs(5), "exit took {:?}", start.elapsed());
    let mut buf = [0u8; 64];
    assert_eq!(silent.read(&mut buf).await.unwrap_or(0), 0, "the silent connection was closed");
    assert!(app.seen().is_empty(), "the half request was never forwarded");
}

/// An HTTPS client that leaves while the upstream is still thinking cancels
/// the exchange, as a plain one does (TLS hides the socket, so hookgate reads).
#[tokio::test(flavor = "multi_thread")]
async fn an_https_client_that_leaves_cancels_its_upstream_exchange() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&tls_config(&pki, &app, ""));
    let mut stream = connect(&client(&pki, &[b"http/1.1"]), daemon.addr, "a.test").await;
    stream.write_all(b"GET /slow?ms=20000 HTTP/1.1\r\nHost: a.test\r\n\r\n").await.unwrap();
    assert!(common::eventually(Duration::from_secs(5), || !app.seen().is_empty()));
    drop(stream);
    // Logged long before the upstream would have answered.
    let line = daemon.wait_for_log("status=499", Duration::from_secs(10));
    assert!(line.contains("aborted=client_closed") && line.contains("path=/slow"), "{line}");
}

/// 129 pipelined requests of 128 bytes in one write: the client's TLS sends
/// a full 16 KiB record and a small one, which arrive together, so rustls
/// decrypts both at once. The engine's 16 KiB read buffer takes the first
/// 128 requests and empties exactly after them, with the 129th decrypted and
/// waiting inside rustls. An idle connection waits for the socket's
/// readability without a buffer; here it must not, or the 129th would wait
/// for bytes that have all arrived. The route answers itself: a forwarded
/// request would read the 129th while it waits for its upstream (to see
/// whether the client left).
#[tokio::test(flavor = "multi_thread")]
async fn a_pipelined_https_request_held_by_rustls_is_answered() {
    const REQUESTS: usize = 129;
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let here = "[[routes]]\nname = \"here\"\npath_prefix = \"/p/\"\nrespond = { status = 200, body = \"here\\n\" }\n";
    let daemon = Daemon::start(&tls_config(&pki, &app, here));
    let mut stream = connect(&client(&pki, &[b"http/1.1"]), daemon.addr, "a.test").await;
    let mut batch = Vec::new();
    for i in 0..REQUESTS {
        let head = format!("GET /p/{i:03} HTTP/1.1\r\nHost: a.test\r\nX-Pad: ");
        let pad = 128 - head.len() - 4;
        batch.extend_from_slice(format!("{head}{}\r\n\r\n", "p".repeat(pad)).as_bytes());
    }
    assert_eq!(batch.len(), 16 * 1024 + 128);
    stream.write_all(&batch).await.unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 16384];
    let answered = |seen: &[u8]| String::from_utf8_lossy(seen).matches("HTTP/1.1 200").count();
    while answered(&seen) < REQUESTS {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await;
        let n = read.unwrap_or_else(|_| panic!("stuck after {} of {REQUESTS} answers", answered(&seen))).unwrap();
        assert!(n > 0, "closed after {} of {REQUESTS} answers", answered(&seen));
        seen.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(String::from_utf8_lossy(&seen).matches("\r\n\r\nhere\n").count(), REQUESTS);
}

fn h2_get(path: &str) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    http::Request::get(format!("https://a.test{path}")).body(http_body_util::Full::default()).unwrap()
}

/// An HTTP/2 client that keeps its stream's window shut (`INITIAL_WINDOW_SIZE`
/// 0, never a WINDOW_UPDATE) takes none of the response, though no socket
/// write blocks: `send_timeout` still closes the connection, logged
/// `aborted=client_timeout` (found by a hostile probe: held, with its upstream
/// connection, for as long as the client liked).
#[tokio::test(flavor = "multi_thread")]
async fn an_http2_client_that_never_opens_its_window_is_cut_at_send_timeout() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&format!("[limits]\nsend_timeout = \"1s\"\n{}", tls_config(&pki, &app, "")));
    let mut builder = hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder.initial_stream_window_size(0).adaptive_window(false);
    let send = h2_with(&pki, daemon.addr, &builder).await;
    let response = send.clone().send_request(h2_get("/big?bytes=500000&length")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(common::eventually(Duration::from_secs(8), || send.is_closed()), "the connection was kept");
    let line = daemon.wait_for_log("path=/big", Duration::from_secs(5));
    assert!(line.contains("aborted=client_timeout"), "{line}");
    drop(response);
}

/// Found by a probe: while other streams of the connection made progress,
/// a stream whose window the client kept shut held its response (and its
/// upstream connection) past `send_timeout`, for as long as the client liked:
/// any chunk taken reset the timer. Now the chunk that waited longest counts.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_http2_stream_is_cut_at_send_timeout_while_others_progress() {
    use http_body_util::BodyExt;
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&format!("[limits]\nsend_timeout = \"1s\"\n{}", tls_config(&pki, &app, "")));
    let mut builder = hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder.initial_stream_window_size(65_535).initial_connection_window_size(8 << 20).adaptive_window(false);
    let send = h2_with(&pki, daemon.addr, &builder).await;
    // Never read: its window closes after 64 KiB, and the rest waits.
    let stalled = send.clone().send_request(h2_get("/big?bytes=500000&length")).await.unwrap();
    let started = std::time::Instant::now();
    while !send.is_closed() && started.elapsed() < Duration::from_secs(8) {
        if let Ok(small) = send.clone().send_request(h2_get("/big?bytes=2000&length")).await {
            let _ = small.into_body().collect().await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(send.is_closed(), "the stalled stream was kept while the others made progress");
    let line = daemon.wait_for_log("aborted=client_timeout", Duration::from_secs(5));
    assert!(line.contains("path=/big") && line.contains("bytes=65535"), "{line}");
    drop(stalled);
}

/// An HTTP/2 connection closed for `idle_timeout` says so with a GOAWAY
/// first (RFC 9113 §6.8; found by a probe: a bare close), so a client about
/// to send a request knows it was not taken. Raw frames: hyper's client
/// hides which came.
#[tokio::test(flavor = "multi_thread")]
async fn an_idle_http2_connection_gets_a_goaway_before_it_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&format!("[limits]\nidle_timeout = \"300ms\"\n{}", tls_config(&pki, &app, "")));
    let mut tls = common::tls_client::connect(&common::tls_client::client(&pki, &[b"h2"]), daemon.addr, "a.test").await;
    let settings = [0, 0, 0, 4, 0, 0, 0, 0, 0];
    // GET / (HPACK static entries :method GET, :scheme https, :path /), no
    // authority: answered 400, and then the connection is idle.
    let get = [0, 0, 3, 1, 5, 0, 0, 0, 1, 0x82, 0x87, 0x84];
    tls.write_all(&[&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..], &settings, &get].concat()).await.unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the connection was not closed at idle_timeout");
    let mut types = Vec::new();
    let mut at = 0;
    while at + 9 <= received.len() {
        let length =
            usize::from(received[at]) << 16 | usize::from(received[at + 1]) << 8 | usize::from(received[at + 2]);
        types.push(received[at + 3]);
        at += 9 + length;
    }
    assert!(types.contains(&1), "no answer to the request: frame types {types:?}");
    assert!(types.contains(&7), "closed without a GOAWAY: frame types {types:?}");
}

/// Between requests an HTTP/2 connection is idle (`idle_timeout`), however
/// many control frames the client sends: a PING is no request head, so it is
/// not closed at `header_timeout` with a false 408 (found by a hostile probe:
/// any PING, SETTINGS or WINDOW_UPDATE after a request did that).
#[tokio::test(flavor = "multi_thread")]
async fn an_idle_http2_connection_with_pings_outlives_header_timeout() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let limits = "[limits]\nheader_timeout = \"300ms\"\nidle_timeout = \"10s\"\n";
    let daemon = Daemon::start(&format!("{limits}{}", tls_config(&pki, &app, "")));
    let mut builder = hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Duration::from_millis(100))
        .keep_alive_while_idle(true);
    let send = h2_with(&pki, daemon.addr, &builder).await;
    assert_eq!(send.clone().send_request(h2_get("/idle")).await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!send.is_closed(), "closed while idle, before idle_timeout");
    assert_eq!(send.clone().send_request(h2_get("/idle")).await.unwrap().status(), 200);
    assert!(!daemon.logs().iter().any(|l| l.contains("status=408")), "no 408 for an idle connection");
}

//! TLS termination, HTTP/2 and https upstreams, with certificates generated
//! here (rcgen) and real clients: rustls + hyper, and curl.

use crate::common;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::tls_client::{Pki, client, connect, peek_client, presented, tls_config};
use common::{Daemon, Upstream};

#[tokio::test(flavor = "multi_thread")]
async fn sni_picks_the_certificate_for_each_domain_with_a_default() {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test", "www.a.test"]);
    let b = pki.issue("b", &["b.test", "*.b.test"]);
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&tls_config(&pki, &app, ""));
    let peek = peek_client();
    assert_eq!(presented(&connect(&peek, daemon.addr, "a.test").await), a);
    assert_eq!(presented(&connect(&peek, daemon.addr, "www.a.test").await), a);
    assert_eq!(presented(&connect(&peek, daemon.addr, "b.test").await), b);
    assert_eq!(presented(&connect(&peek, daemon.addr, "api.b.test").await), b, "wildcard");
    assert_eq!(presented(&connect(&peek, daemon.addr, "unknown.test").await), a, "first certificate is the default");
    assert_eq!(presented(&connect(&peek, daemon.addr, "127.0.0.1").await), a, "no SNI gets the default");
    // And a verifying client accepts what it gets for b.test.
    let verified = connect(&client(&pki, &[]), daemon.addr, "api.b.test").await;
    assert_eq!(presented(&verified), b);
}

#[tokio::test(flavor = "multi_thread")]
async fn http1_and_http2_clients_reach_the_upstream_and_the_webhook_is_byte_exact() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&tls_config(&pki, &app, ""));
    let body: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();

    // HTTP/1.1 over TLS.
    let stream = connect(&client(&pki, &[b"http/1.1"]), daemon.addr, "a.test").await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let request = Request::post("/api/v1/guest/telegram/webhook?access_token=x")
        .header("host", "a.test")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.clone())))
        .unwrap();
    let response = send.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "app");

    // A client offering only `http/1.0` (`curl --http1.0`; found by a probe:
    // refused in the handshake) is served.
    let mut stream = connect(&client(&pki, &[b"http/1.0"]), daemon.addr, "a.test").await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.0"[..]));
    stream.write_all(b"GET /one-oh HTTP/1.0\r\nHost: a.test\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200") && answer.ends_with(b"app"), "{}", String::from_utf8_lossy(&answer));

    // HTTP/2 over TLS, forwarded to the HTTP/1.1 upstream.
    let stream = connect(&client(&pki, &[b"h2", b"http/1.1"]), daemon.addr, "b.test").await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let request = Request::post("https://b.test/api/v1/guest/telegram/webhook?access_token=y")
        .body(Full::new(Bytes::from(body.clone())))
        .unwrap();
    let response = send.send_request(request).await.unwrap();
    assert_eq!((response.status().as_u16(), response.version()), (200, Version::HTTP_2));

    let seen: Vec<_> = app.seen().into_iter().filter(|s| s.target != "/one-oh").collect();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(s.version, Version::HTTP_11, "the upstream speaks HTTP/1.1");
        assert!(s.body == body, "body changed in transit");
        assert_eq!(s.headers["x-forwarded-proto"], "https");
        assert_eq!(s.headers["x-forwarded-for"], "127.0.0.1");
        assert_eq!(s.headers.get_all("x-forwarded-for").iter().count(), 1, "written once");
    }
    assert_eq!(seen[0].headers["host"], "a.test");
    assert_eq!(seen[1].headers["host"], "b.test", ":authority becomes Host");
    assert_eq!(seen[1].target, "/api/v1/guest/telegram/webhook?access_token=y");
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_speaks_http2_to_hookgate() {
    if !common::have_tool("curl", "curl") {
        return;
    }
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&tls_config(&pki, &app, ""));
    let out = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--http2", "--max-time", "20", "--cacert", &pki.path("ca.pem")])
        .arg("--resolve")
        .arg(format!("a.test:{}:127.0.0.1", daemon.addr.port()))
        .args(["-w", "\n%{http_version} %{http_code}"])
        .arg(format!("https://a.test:{}/from-curl", daemon.addr.port()))
        .output()
        .expect("run curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "app\n2 200", "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(app.seen()[0].target, "/from-curl");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_swap_on_reload_serves_new_connections_while_old_ones_keep_working() {
    let pki = Pki::new();
    let old = pki.issue("a", &["a.test"]);
    pki.issue("b", &["b.test"]);
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&tls_config(&pki, &app, ""));
    let stream = connect(&client(&pki, &[b"http/1.1"]), daemon.addr, "a.test").await;
    assert_eq!(presented(&stream), old);
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let get = |path: &str| Request::get(path).header("host", "a.test").body(Full::new(Bytes::new())).unwrap();
    assert_eq!(send.send_request(get("/before")).await.unwrap().status(), 200);

    let new = pki.issue("a", &["a.test"]);
    daemon.signal("HUP");
    daemon.wait_for_log("reloaded", Duration::from_secs(5));
    assert_eq!(presented(&connect(&client(&pki, &[]), daemon.addr, "a.test").await), new);
    assert_eq!(send.send_request(get("/after")).await.unwrap().status(), 200, "the old connection keeps working");

    // A broken certificate file fails the reload; the current one keeps serving.
    std::fs::write(pki.path("a.pem"), "not a certificate").unwrap();
    daemon.signal("HUP");
    daemon.wait_for_log("reload failed", Duration::from_secs(5));
    assert_eq!(presented(&connect(&client(&pki, &[]), daemon.addr, "a.test").await), new);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_that_does_not_match_its_certificate_fails_check() {
    let pki = Pki::two_sites();
    std::fs::copy(pki.path("b.key"), pki.path("a.key")).unwrap();
    let app = Upstream::start("app").await;
    let file = pki.path("hookgate.toml");
    std::fs::write(&file, tls_config(&pki, &app, "")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookgate")).args(["check", "-c", &file]).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen.tls.certificates[0]") && err.contains("does not match"), "{err}");
}

/// A minimal ClientHello that offers TLS 1.1 and nothing newer.
fn tls11_client_hello() -> Vec<u8> {
    let mut hello = vec![0x03, 0x02]; // client_version TLS 1.1
    hello.extend_from_slice(&[0x42; 32]); // random
    hello.push(0); // no session id
    hello.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // two CBC suites of that era
    hello.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0x00, 0x00, hello.len() as u8];
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, handshake.len() as u8];
    record.extend_from_slice(&handshake);
    record
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_1_1_is_refused() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&tls_config(&pki, &app, ""));
    let mut tcp = tokio::net::TcpStream::connect(daemon.addr).await.unwrap();
    tcp.write_all(&tls11_client_hello()).await.unwrap();
    let mut answer = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut answer)).await.unwrap().unwrap_or(0);
    // An alert record (0x15), or the connection closed; never a ServerHello (0x16).
    assert!(n == 0 || answer[0] == 0x15, "server answered a TLS 1.1 hello with {:02x?}", &answer[..n]);
    assert!(app.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plain_listener_redirects_to_https_except_exempt_paths() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let redirect = "[listen.redirect]\naddrs = [\"127.0.0.1:0\"]\nexempt = [\"/api/v1/guest/telegram/webhook\"]\n";
    let config = tls_config(&pki, &app, "").replace("[admin]", &format!("{redirect}[admin]"));
    let daemon = Daemon::start(&config);
    let plain = daemon.listening_addrs().into_iter().find(|a| *a != daemon.addr).expect("redirect listener");
    let moved = common::get(plain, "www.example.com", "/user/login?next=%2Fhome");
    assert_eq!(moved.status, 308);
    assert_eq!(moved.header("location").as_deref(), Some("https://www.example.com/user/login?next=%2Fhome"));
    let hook = common::raw(
        plain,
        b"POST /api/v1/guest/telegram/webhook HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    );
    assert_eq!(hook.status, 200, "a webhook must never be redirected");
    assert_eq!(app.seen().len(), 1);
    assert_eq!(app.seen()[0].headers["x-forwarded-proto"], "http");

    // `check` warns when a webhook route is not exempt.
    let file = pki.path("redirect.toml");
    let warned = config.replace("exempt = [\"/api/v1/guest/telegram/webhook\"]", "exempt = []");
    std::fs::write(&file, warned.replace("methods = [\"POST\"]", "methods = [\"POST\"]\nallow_from = [\"telegram\"]"))
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookgate")).args(["check", "-c", &file]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("warning: route telegram-webhook looks like a webhook"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn https_upstreams_are_verified_against_their_ca() {
    let pki = Pki::new();
    pki.issue("backend", &["localhost"]);
    let cert = hookgate::internals::load_certificate(&pki.path("backend.pem"), &pki.path("backend.key")).unwrap();
    let server = hookgate::internals::server_config(&[cert], true, None).unwrap();
    let backend = Upstream::start_tls("backend", server).await;
    let port = backend.addr.port();
    let upstream = |url: &str, extra: &str| {
        format!("[upstreams.b]\nurl = \"{url}\"\nhost_header = \"upstream\"\n{extra}\n[default]\nupstream = \"b\"\n")
    };
    let ca = format!("tls_ca_file = \"{}\"", pki.path("ca.pem"));
    let daemon = Daemon::start(&upstream(&format!("https://localhost:{port}"), &ca));
    let response = common::get(daemon.addr, "www.example.com", "/over-tls");
    assert_eq!((response.status, response.body_text().as_str()), (200, "backend"));
    assert_eq!(backend.seen()[0].headers["host"], format!("localhost:{port}").as_str(), "host_header = upstream");

    // By IP, with the name to verify given explicitly, and HTTP/2 to the upstream.
    let named = format!("{ca}\ntls_server_name = \"localhost\"\nhttp2 = true");
    let daemon = Daemon::start(&upstream(&format!("https://127.0.0.1:{port}"), &named));
    assert_eq!(common::get(daemon.addr, "h", "/h2").status, 200);
    assert_eq!(backend.seen().last().unwrap().version, Version::HTTP_2);

    // Another CA: the upstream is not trusted → 502 and a log line that says why.
    let other = Pki::new();
    let wrong = format!("tls_ca_file = \"{}\"", other.path("ca.pem"));
    let admin = "[admin]\naddr = \"127.0.0.1:0\"\n";
    let daemon = Daemon::start(&format!("{admin}{}", upstream(&format!("https://localhost:{port}"), &wrong)));
    assert_eq!(common::get(daemon.addr, "h", "/untrusted").status, 502);
    let line = daemon.wait_for_log("cannot connect over TLS", Duration::from_secs(5));
    assert!(line.to_lowercase().contains("certificate") || line.contains("UnknownIssuer"), "{line}");
    assert!(backend.seen().iter().all(|s| s.target != "/untrusted"));
    // The status page says why too (it said "the connection failed": the second walkthrough of 2026-12-07).
    let status = common::get(daemon.admin.unwrap(), "localhost", "/status.json").body_text();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let why = status["upstreams"][0]["last_error"].as_str().unwrap_or_default().to_string();
    assert!(why.to_lowercase().contains("certificate") || why.contains("UnknownIssuer"), "{status:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn expiring_certificates_are_warned_about_and_measured() {
    let pki = Pki::new();
    pki.issue_for("a", &["a.test"], 5);
    pki.issue("b", &["b.test"]);
    let app = Upstream::start("app").await;
    let insecure = "[upstreams.sloppy]\nurl = \"https://127.0.0.1:1\"\ntls_insecure_skip_verify = true\n";
    let config = tls_config(&pki, &app, "").replace("[[routes]]", &format!("{insecure}[[routes]]"));
    let file = pki.path("hookgate.toml");
    std::fs::write(&file, &config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookgate")).args(["check", "-c", &file]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("(a.test) expires in 4 days") || said.contains("(a.test) expires in 5 days"), "{said}");
    assert!(said.contains("upstream sloppy: tls_insecure_skip_verify = true"), "{said}");
    assert!(said.contains("certificate ") && said.contains("b.test"), "{said}");

    let daemon = Daemon::start(&config);
    let metrics = || common::get(daemon.admin.unwrap(), "localhost", "/metrics").body_text();
    assert!(common::eventually(Duration::from_secs(8), || metrics().contains("hookgate_tls_certificate_expiry_days{")));
    let text = metrics();
    let line =
        text.lines().find(|l| l.starts_with("hookgate_tls_certificate_expiry_days{") && l.contains("a.pem")).unwrap();
    let days: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((4.0..=5.0).contains(&days), "{line}");
}

/// dedupe on the HTTP/2 path (hyper's service): the body reaches the upstream
/// unchanged once; its redelivery is answered here, with the first answer,
/// without reaching it.
#[tokio::test(flavor = "multi_thread")]
async fn dedupe_answers_an_http2_redelivery_itself() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&tls_config(&pki, &app, "dedupe = { key = \"telegram_update_id\" }"));
    let stream = connect(&client(&pki, &[b"h2"]), daemon.addr, "a.test").await;
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let update = r#"{"update_id":7,"message":{"text":"hi"}}"#;
    let mut answers = Vec::new();
    for _ in 0..2 {
        let request = Request::post("https://a.test/api/v1/guest/telegram/webhook")
            .body(Full::new(Bytes::from_static(update.as_bytes())))
            .unwrap();
        let response = send.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        answers.push((status, response.into_body().collect().await.unwrap().to_bytes()));
    }
    assert_eq!(answers[0], (200, Bytes::from_static(b"app")));
    assert_eq!(answers[1], (200, Bytes::from_static(b"app")), "the redelivery gets the first answer, body and all");
    let seen = app.seen();
    assert_eq!(seen.len(), 1, "only the first copy reaches the upstream");
    assert_eq!(seen[0].body, update.as_bytes());
}

/// Trailers pass both ways through an https upstream, as they do through a
/// plain one (issue 27 §13: this path once dropped them in both directions).
#[tokio::test(flavor = "multi_thread")]
async fn trailers_pass_both_ways_through_https_upstreams() {
    let pki = Pki::new();
    let reply =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n";
    let upstream = common::RawUpstream::start_tls(reply, &pki).await;
    let daemon = Daemon::start(&upstream.config(Some(&pki)));
    let mut stream = std::net::TcpStream::connect(daemon.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = b"POST /t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-Check\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Check: 1\r\n\r\n";
    std::io::Write::write_all(&mut stream, request).unwrap();
    let mut response = Vec::new();
    std::io::Read::read_to_end(&mut stream, &mut response).unwrap();
    let response = String::from_utf8_lossy(&response).to_ascii_lowercase();
    assert!(response.starts_with("http/1.1 200"), "{response}");
    assert!(response.ends_with("5\r\nhello\r\n0\r\nx-sum: 42\r\n\r\n"), "{response}");
    let seen = String::from_utf8_lossy(&upstream.requests()[0]).to_ascii_lowercase();
    assert!(seen.ends_with("0\r\nx-check: 1\r\n\r\n"), "{seen}");
}

/// A chunked GET body reaches an https upstream: hyper's client, which sends
/// to those, drops a GET body of unknown length unless told to chunk it.
#[tokio::test(flavor = "multi_thread")]
async fn a_chunked_get_body_reaches_an_https_upstream() {
    let pki = Pki::new();
    let upstream = common::RawUpstream::start_tls(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", &pki).await;
    let daemon = Daemon::start(&upstream.config(Some(&pki)));
    let request =
        b"GET /q HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    assert_eq!(common::raw(daemon.addr, request).status, 200);
    let seen = String::from_utf8_lossy(&upstream.requests()[0]).to_ascii_lowercase();
    assert!(seen.contains("transfer-encoding: chunked\r\n"), "{seen}");
    assert!(seen.ends_with("5\r\nhello\r\n0\r\n\r\n"), "{seen}");
}

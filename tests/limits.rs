//! Hostile and broken input: every case gets its fixed status and never
//! reaches the upstream; slow clients and slow upstreams are cut by their timers.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Daemon, Upstream, get, raw, two_upstream_config};

async fn setup(extra: &str) -> (Upstream, Upstream, Daemon) {
    let frontend = Upstream::start("frontend").await;
    let backend = Upstream::start("backend").await;
    let daemon = Daemon::start(&two_upstream_config(&frontend, &backend, extra));
    (frontend, backend, daemon)
}

/// True when the server closed the connection (EOF or reset) before `limit`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ambiguous_targets_get_400_and_are_never_forwarded() {
    let (frontend, backend, daemon) = setup("").await;
    let targets = [
        "/a/../admin",
        "/a/./b",
        "/..",
        "/a/%2e%2e/admin",
        "/a/%2E./admin",
        "/a/.%2e/admin",
        "/a/..;/admin",
        "/api/v1/guest/telegram%2fwebhook",
        "/a%2Fb",
        "/a%5cb",
        "/a%00b",
        "/a\\b",
        "/a%ff",
        "/a%c3%28",
        "/a%zz",
        "/a%",
        "*",
    ];
    for target in targets {
        let response = get(daemon.addr, "h", target);
        assert_eq!(response.status, 400, "{target}");
    }
    let response = get(daemon.addr, "h", "/a/%2e%2e/admin");
    assert_eq!(response.body_text(), "bad request\n");
    assert!(frontend.seen().is_empty() && backend.seen().is_empty(), "an ambiguous target was forwarded");
    let line = daemon.wait_for_log("dot segment", Duration::from_secs(5));
    assert!(line.contains("status=400"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn host_must_be_present_once_and_valid() {
    let (frontend, _, daemon) = setup("").await;
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: user@evil\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
        // A port is digits only (RFC 3986 §3.2.3), an IP literal is bracketed whole.
        b"GET / HTTP/1.1\r\nHost: a:80x\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: [::1\r\nConnection: close\r\n\r\n",
        b"GET ftp://x/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    ];
    for request in cases {
        assert_eq!(raw(daemon.addr, request).status, 400, "{}", String::from_utf8_lossy(request));
    }
    assert!(frontend.seen().is_empty());
    // HTTP/1.0 may omit Host; the upstream then sees its own authority.
    let response = raw(daemon.addr, b"GET /old HTTP/1.0\r\n\r\n");
    assert_eq!(response.status, 200);
    assert_eq!(frontend.seen()[0].headers["host"], frontend.addr.to_string().as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn transfer_encodings_other_than_chunked_are_refused() {
    let (frontend, _, daemon) = setup("").await;
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n",
        b"POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n",
    ];
    for request in cases {
        assert_eq!(raw(daemon.addr, request).status, 400, "{}", String::from_utf8_lossy(request));
    }
    assert!(frontend.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn content_length_with_transfer_encoding_cannot_smuggle_a_request() {
    let (frontend, _, daemon) = setup("").await;
    let request = b"POST /first HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n";
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    stream.write_all(request).unwrap();
    let response = common::read_response(&mut stream).unwrap();
    assert_eq!(response.status, 400, "{}", response.head);
    assert!(closed_within(&mut stream, Duration::from_secs(5)), "connection must close after CL+TE");
    assert!(frontend.seen().is_empty(), "a CL+TE request reached the upstream");
    // Either order of the two headers is caught.
    let reversed = b"POST /first HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\nConnection: close\r\n\r\n0\r\n\r\n";
    assert_eq!(raw(daemon.addr, reversed).status, 400);
    assert!(frontend.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_target_and_head_get_414_and_431() {
    let (frontend, _, daemon) = setup("").await;
    let long = format!("/{}", "a".repeat(9000));
    assert_eq!(get(daemon.addr, "h", &long).status, 414);
    let big_header =
        format!("GET / HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "b".repeat(40 * 1024));
    let too_large = raw(daemon.addr, big_header.as_bytes());
    assert_eq!((too_large.status, too_large.body.as_slice()), (431, &b"request head too large\n"[..]));
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: h\r\n{many}Connection: close\r\n\r\n");
    let too_many = raw(daemon.addr, many.as_bytes());
    assert_eq!(too_many.status, 431);
    // Each limit says it is the one: the operator knows which to raise.
    assert_eq!(too_many.body, b"too many header fields\n");
    assert!(frontend.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_max_body_get_413() {
    let (frontend, _, daemon) = setup("[limits]\nmax_body = \"1KiB\"\n").await;
    // Declared length: refused before the upstream is contacted.
    let response = raw(daemon.addr, b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 2048\r\n\r\n");
    assert_eq!(response.status, 413);
    assert_eq!(response.body_text(), "request body too large\n");
    assert!(frontend.seen().is_empty(), "a declared-too-large body must not reach the upstream");
    // Chunked: counted while streaming.
    let chunk = "x".repeat(600);
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    assert_eq!(raw(daemon.addr, request.as_bytes()).status, 413);
    // At the limit is fine.
    let body = "y".repeat(1024);
    let request = format!("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n{body}");
    let response = raw(daemon.addr, request.as_bytes());
    assert_eq!(response.status, 200);
    assert_eq!(response.body_text(), body);
}

#[tokio::test(flavor = "multi_thread")]
async fn slowloris_head_is_closed_within_header_timeout() {
    let (frontend, _, daemon) = setup("[limits]\nheader_timeout = \"300ms\"\n").await;
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    let start = Instant::now();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n").unwrap();
    // Keep trickling header bytes; the connection must die anyway.
    let mut closed = false;
    for i in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if stream.write_all(format!("X-{i}: {i}\r\n").as_bytes()).is_err() {
            closed = true;
            break;
        }
        if closed_within(&mut stream, Duration::from_millis(1)) {
            closed = true;
            break;
        }
    }
    let elapsed = start.elapsed();
    assert!(closed, "slow head was never cut");
    assert!(elapsed < Duration::from_secs(3), "cut after {elapsed:?}, header_timeout is 300ms");
    assert!(frontend.seen().is_empty());
    daemon.wait_for_log("header_timeout", Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_keep_alive_is_timed_separately_from_the_head() {
    // A short idle timeout closes an idle connection...
    let (_, _, daemon) = setup("[limits]\nidle_timeout = \"300ms\"\nheader_timeout = \"30s\"\n").await;
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(common::read_response(&mut stream).unwrap().status, 200);
    assert!(closed_within(&mut stream, Duration::from_secs(5)), "idle connection was kept past idle_timeout");

    // ...and a short header timeout does not cut a connection that is merely idle.
    let (_, _, daemon) = setup("[limits]\nidle_timeout = \"30s\"\nheader_timeout = \"200ms\"\n").await;
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(common::read_response(&mut stream).unwrap().status, 200);
    // Idle for three header timeouts.
    tokio::time::sleep(Duration::from_millis(600)).await;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(common::read_response(&mut stream).unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_body_gets_408() {
    let (_, _, daemon) = setup("[limits]\nbody_timeout = \"500ms\"\n").await;
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc").unwrap();
    let response = common::read_response(&mut stream).unwrap();
    assert_eq!(response.status, 408);
    assert_eq!(response.body_text(), "request body timed out\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_upstream_gets_502_with_a_log_line() {
    let frontend = Upstream::start("frontend").await;
    // A free port: nothing listens there.
    let dead = std::net::SocketAddr::from(([127, 0, 0, 1], common::free_port()));
    let config = format!(
        "[upstreams.frontend]\nurl = \"{}\"\n[upstreams.backend]\nurl = \"http://{dead}\"\n[[routes]]\nname = \"telegram-webhook\"\npath = \"/hook\"\nupstream = \"backend\"\n[default]\nupstream = \"frontend\"\n",
        frontend.url()
    );
    let daemon = Daemon::start(&config);
    let response =
        raw(daemon.addr, b"POST /hook HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
    assert_eq!(response.status, 502);
    assert_eq!(response.body_text(), "upstream unreachable\n");
    let line = daemon.wait_for_log("upstream unreachable", Duration::from_secs(5));
    assert!(line.contains("route=telegram-webhook") && line.contains("upstream=backend"), "{line}");
    // Why is said once, when the failing starts, with the address; not again for every request.
    let why = daemon.wait_for_log("cannot connect", Duration::from_secs(5));
    assert!(why.contains("upstream=backend") && why.contains(&dead.to_string()) && why.contains("refused"), "{why}");
    for _ in 0..3 {
        let again =
            raw(daemon.addr, b"POST /hook HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
        assert_eq!(again.status, 502);
    }
    let said = || daemon.logs().iter().filter(|l| l.contains("upstream unreachable")).count() == 4;
    assert!(common::eventually(Duration::from_secs(5), said), "{:#?}", daemon.logs());
    assert_eq!(daemon.logs().iter().filter(|l| l.contains("cannot connect")).count(), 1, "{:#?}", daemon.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_timeout_gets_502() {
    // A listener whose accept queue is full: further SYNs go unanswered.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(addr)).await
        {
            fillers.push(s);
        }
    }
    let config = format!(
        "[upstreams.slow]\nurl = \"http://{addr}\"\nconnect_timeout = \"300ms\"\nresponse_timeout = \"30s\"\n[default]\nupstream = \"slow\"\n"
    );
    let daemon = Daemon::start(&config);
    let start = Instant::now();
    let response = get(daemon.addr, "h", "/");
    assert_eq!(response.status, 502, "{}", response.head);
    // It waited for the connect timeout rather than being refused at once.
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(250) && waited < Duration::from_secs(10), "{waited:?}");
    drop(listener);
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_upstream_gets_504() {
    let frontend = Upstream::start("frontend").await;
    let config = format!(
        "[upstreams.frontend]\nurl = \"{}\"\nresponse_timeout = \"300ms\"\n[default]\nupstream = \"frontend\"\n",
        frontend.url()
    );
    let daemon = Daemon::start(&config);
    let response = get(daemon.addr, "h", "/slow?ms=3000");
    assert_eq!(response.status, 504);
    assert_eq!(response.body_text(), "upstream timed out\n");
    assert_eq!(get(daemon.addr, "h", "/slow?ms=10").status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_from_the_upstream_gets_502() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"NOT HTTP AT ALL\r\n\r\n").await;
        }
    });
    let daemon = Daemon::start(&format!("[upstreams.bad]\nurl = \"http://{addr}\"\n[default]\nupstream = \"bad\"\n"));
    assert_eq!(get(daemon.addr, "h", "/").status, 502);
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_over_max_connections_wait_for_a_slot() {
    // Two workers: two accept loops share the slots, so a freed slot must reach
    // whichever loop holds a waiting connection.
    let (_, _, daemon) = setup("[limits]\nmax_connections = 2\n[runtime]\nworkers = 2\n").await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(daemon.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(common::read_response(&mut s).unwrap().status, 200);
        held.push(s);
    }
    let mut waiting: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(daemon.addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").unwrap();
            s
        })
        .collect();
    let mut byte = [0u8; 1];
    for s in &mut waiting {
        s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        assert!(s.read(&mut byte).is_err(), "a connection was served beyond max_connections = 2");
    }
    drop(held);
    // Each waiting connection closes after its answer, freeing its slot for the next.
    for s in &mut waiting {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        let text = String::from_utf8_lossy(&rest);
        assert!(text.starts_with("HTTP/1.1 200 OK"), "a waiting connection was never served: {text:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn running_out_of_file_descriptors_backs_off_and_recovers() {
    let frontend = Upstream::start("frontend").await;
    let config = format!("[upstreams.f]\nurl = \"{}\"\n[default]\nupstream = \"f\"\n", frontend.url());
    let daemon = Daemon::start_with_fd_limit(&config, 64);
    // Hold more idle connections than the daemon has descriptors for.
    let mut held = Vec::new();
    for _ in 0..100 {
        match TcpStream::connect(daemon.addr) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    daemon.wait_for_log("accept failed", Duration::from_secs(10));
    // Backing off, not spinning: well under half a core over one second.
    let before = daemon.cpu_ticks();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = daemon.cpu_ticks() - before;
    assert!(used < 50, "accept loop used {used} ticks in 1s while out of descriptors");
    drop(held);
    // Once descriptors free up, it serves again.
    let served = common::eventually(Duration::from_secs(20), || {
        TcpStream::connect(daemon.addr).is_ok_and(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").is_ok()
                && common::read_response(&mut s).is_ok_and(|r| r.status == 200)
        })
    });
    assert!(served, "daemon did not recover after descriptors were freed");
}

//! Shutdown: SIGTERM/SIGINT stop accepting, let in-flight requests finish within
//! `shutdown_grace`, and exit 0; a grace period that runs out is logged.

use crate::common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Daemon, Upstream, get};

fn config(upstream: &Upstream, grace: &str) -> String {
    format!(
        "[limits]\nshutdown_grace = \"{grace}\"\n[upstreams.app]\nurl = \"{}\"\n[default]\nupstream = \"app\"\n",
        upstream.url()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_in_flight_request_finish_then_exits_zero() {
    let upstream = Upstream::start("app").await;
    let mut daemon = Daemon::start(&config(&upstream, "10s"));
    let addr = daemon.addr;
    let in_flight = std::thread::spawn(move || get(addr, "h", "/slow?ms=1500"));
    assert!(
        common::eventually(Duration::from_secs(5), || !upstream.seen().is_empty()),
        "request never reached the upstream"
    );
    daemon.signal("TERM");
    daemon.wait_for_log("shutting down", Duration::from_secs(5));
    // The listener is closed at once: new connections are refused.
    assert!(
        common::eventually(Duration::from_secs(2), || TcpStream::connect(addr).is_err()),
        "still accepting after SIGTERM"
    );
    let response = in_flight.join().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body_text(), "slow done");
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(daemon.logs().iter().any(|l| l.contains("drained")));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_drains_the_same_way() {
    let upstream = Upstream::start("app").await;
    let mut daemon = Daemon::start(&config(&upstream, "10s"));
    assert_eq!(get(daemon.addr, "h", "/").status, 200);
    daemon.signal("INT");
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), Some(0));
    daemon.wait_for_log("received SIGINT", Duration::from_secs(1));
}

/// A request still waiting for its upstream's head when the grace runs out
/// gets a 503 and its access line (issue 27 §10: it once got a silent close
/// and no line at all).
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_grace_period_cuts_requests_and_says_so() {
    let upstream = Upstream::start("app").await;
    let mut daemon = Daemon::start(&config(&upstream, "500ms"));
    let addr = daemon.addr;
    let in_flight = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        std::io::Write::write_all(&mut stream, b"GET /slow?ms=20000 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let response = common::read_response(&mut stream).unwrap();
        (response.status, response.body_text(), response.header("connection"))
    });
    assert!(common::eventually(Duration::from_secs(5), || !upstream.seen().is_empty()));
    let start = Instant::now();
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(start.elapsed() < Duration::from_secs(8), "exit took {:?}", start.elapsed());
    let answer = in_flight.join().unwrap();
    assert_eq!(answer, (503, "shutting down, retry later\n".to_string(), Some("close".to_string())));
    let line = daemon.wait_for_log("grace of", Duration::from_secs(1));
    assert!(line.contains("expired") && line.contains("cut=1"), "{line}");
    let access = daemon.wait_for_log("path=/slow", Duration::from_secs(1));
    assert!(access.contains("status=503") && access.contains("upstream=app"), "{access}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_daemon_on_the_same_port_is_refused_even_with_worker_threads() {
    let upstream = Upstream::start("app").await;
    let port = common::free_port();
    let config = format!(
        "[listen]\naddrs = [\"127.0.0.1:{port}\"]\n[runtime]\nworkers = 2\n[upstreams.app]\nurl = \"{}\"\n[default]\nupstream = \"app\"\n",
        upstream.url()
    );
    let first = Daemon::start(&config);
    // Both runtimes serve the one address.
    for i in 0..20 {
        assert_eq!(get(first.addr, "h", &format!("/{i}")).status, 200);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("second.toml");
    std::fs::write(&path, &config).unwrap();
    let second =
        std::process::Command::new(env!("CARGO_BIN_EXE_hookgate")).args(["run", "-c"]).arg(&path).output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{said}");
    assert_eq!(upstream.seen().len(), 20);
}

/// A busy worker writes its access lines together; none may be lost or
/// broken, also the ones still waiting when shutdown begins, and an idle
/// daemon still writes a request's line at once.
#[tokio::test(flavor = "multi_thread")]
async fn busy_workers_write_every_access_line_whole_and_none_is_lost_at_shutdown() {
    let upstream = Upstream::start("app").await;
    let mut daemon = Daemon::start(&format!("[runtime]\nworkers = 2\n{}", config(&upstream, "10s")));
    let addr = daemon.addr;
    assert_eq!(get(addr, "h", "/alone").status, 200);
    daemon.wait_for_log("path=/alone", Duration::from_millis(500));

    let (clients, each) = (8, 40);
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                for i in 0..each {
                    stream.write_all(format!("GET /busy-{c}-{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes()).unwrap();
                    assert_eq!(common::read_response(&mut stream).unwrap().status, 200);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), Some(0));

    let logs = daemon.logs();
    let busy: Vec<&String> = logs.iter().filter(|l| l.contains("path=/busy-")).collect();
    assert_eq!(busy.len(), clients * each, "one line per request");
    for c in 0..clients {
        for i in 0..each {
            let path = format!("path=/busy-{c}-{i} ");
            assert_eq!(busy.iter().filter(|l| l.contains(&path)).count(), 1, "{path}");
        }
    }
    for line in busy {
        assert!(line.starts_with("20") && line.contains(" INFO hookgate::access: client="), "{line}");
        let bytes = line.rsplit_once(" bytes=").map(|(_, n)| n).unwrap_or_default();
        assert!(!bytes.is_empty() && bytes.bytes().all(|b| b.is_ascii_digit()), "a line cut short: {line}");
        assert_eq!(line.matches("hookgate::access").count(), 1, "lines run together: {line}");
    }
}

//! The admin listener's own limits (issue 27 §5): at most 64 connections at
//! once, and `[limits] header_timeout` on every request head and between
//! requests, so idle admin connections cannot use up the descriptors the proxy
//! needs. The gate and the token are in `admin.rs`.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Daemon, eventually, read_head, read_response};

/// Whether the daemon has closed `stream` (EOF or reset), without waiting.
fn closed_by_daemon(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

/// A GET to the proxy that gives up after a few seconds instead of panicking.
fn proxy_answers(addr: SocketAddr) -> Result<u16, std::io::Error> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")?;
    read_head(&mut stream).map(|r| r.status)
}

#[test]
fn idle_admin_connections_are_capped_and_timed_out_and_the_proxy_keeps_serving() {
    // 300 admin connections would need more descriptors than the daemon has.
    let config =
        "[admin]\naddr = \"127.0.0.1:0\"\n[limits]\nheader_timeout = \"4s\"\n[default]\nrespond = { status = 200 }\n";
    let daemon = Daemon::start_with_fd_limit(config, 256);
    let admin = daemon.admin.unwrap();
    let opened = Instant::now();
    let mut half = TcpStream::connect(admin).unwrap();
    half.write_all(b"GET /status.json HTTP/1.1\r\nHost: localhost\r\n").unwrap();
    let mut idle: Vec<TcpStream> = (0..299).map(|_| TcpStream::connect(admin).unwrap()).collect();

    // Past the cap, connections are closed at once, well before the header timeout.
    let mut open = idle.len() + 1;
    let capped = eventually(Duration::from_secs(3), || {
        open = idle.iter_mut().map(|s| usize::from(!closed_by_daemon(s))).sum::<usize>()
            + usize::from(!closed_by_daemon(&mut half));
        open <= 64
    });
    assert!(capped && opened.elapsed() < Duration::from_secs(4), "{open} of 300 idle admin connections still open");
    assert!(!closed_by_daemon(&mut half), "the first connection should hold a slot until its header timeout");
    let status = proxy_answers(daemon.addr);
    assert_eq!(status.as_ref().ok(), Some(&200), "the proxy stopped serving: {status:?}");
    let mut beyond = TcpStream::connect(admin).unwrap();
    beyond.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    assert!(eventually(Duration::from_secs(2), || closed_by_daemon(&mut beyond)), "a connection past the cap was kept");

    // Those within the cap, the half head among them, are closed by the header timeout.
    let all_closed =
        eventually(Duration::from_secs(12), || closed_by_daemon(&mut half) && idle.iter_mut().all(closed_by_daemon));
    assert!(all_closed, "admin connections outlived header_timeout by 8 s");
    assert!(opened.elapsed() >= Duration::from_secs(3), "closed before the header timeout");
    assert_eq!(common::get(admin, "localhost", "/healthz").status, 200);
    assert_eq!(proxy_answers(daemon.addr).ok(), Some(200));
    daemon.wait_for_log("admin connections open; closing new ones", Duration::from_secs(1));
}

#[test]
fn a_kept_alive_admin_connection_is_closed_when_idle() {
    let config =
        "[admin]\naddr = \"127.0.0.1:0\"\n[limits]\nheader_timeout = \"1s\"\n[default]\nrespond = { status = 200 }\n";
    let daemon = Daemon::start(config);
    let mut stream = TcpStream::connect(daemon.admin.unwrap()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for _ in 0..2 {
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut stream).unwrap().status, 200);
    }
    let idle_since = Instant::now();
    let mut rest = Vec::new();
    let read = stream.read_to_end(&mut rest);
    let waited = idle_since.elapsed();
    assert!(read.is_ok() && rest.is_empty(), "{read:?} {rest:?}");
    assert!(waited < Duration::from_secs(5), "an idle keep-alive connection stayed open {waited:?}");
    assert!(waited >= Duration::from_millis(800), "closed {waited:?} after the response, before header_timeout");
}

//! Slow readers: a response is delivered whole however slowly the client reads,
//! as long as it keeps reading; a client that stops reading is cut after
//! `send_timeout`; and the access log says which of the two happened.
//!
//! The bug these pin: the keep-alive idle timer started when the upstream's body
//! ended, not when its last byte was written, so a client that paused reading
//! lost whatever hookgate still held when the timer fired. The readers here
//! pause for longer than `idle_timeout` right after the response head, while
//! hookgate fills the kernel's buffers and holds the rest; their sizes are
//! spread so that for some of them the upstream's body ends during the pause
//! with bytes still queued in hookgate, which is the state that was cut.

use crate::common;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Daemon, Upstream, pattern_byte, read_chunked, read_head};

/// Body sizes of the slow downloads: 1.5 MiB to 5 MiB in 256 KiB steps.
fn sizes() -> Vec<usize> {
    (6..=20).map(|quarters| quarters * 256 * 1024).collect()
}

/// Reads at most 16 KiB per call and pauses 5 ms after each (about 3 MiB/s).
struct Trickle(TcpStream);

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let cap = buf.len().min(16 * 1024);
        let n = self.0.read(&mut buf[..cap])?;
        std::thread::sleep(Duration::from_millis(5));
        Ok(n)
    }
}

/// A connection with a small receive buffer, so the kernel holds little.
fn connect_small(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream
}

fn config(upstream: &Upstream, extra: &str) -> String {
    format!(
        "[log]\nformat = \"json\"\n[limits]\n{extra}\n[upstreams.app]\nurl = \"{}\"\n[default]\nupstream = \"app\"\n",
        upstream.url()
    )
}

/// Downloads `/big` on a keep-alive connection: reads the head, pauses for
/// `pause`, then reads the body at trickle speed. `length` asks the upstream
/// for a Content-Length body instead of a chunked one.
fn slow_download(addr: SocketAddr, size: usize, length: bool, pause: Duration) -> std::io::Result<Vec<u8>> {
    let mut stream = connect_small(addr);
    let framing = if length { "&length=1" } else { "&chunk=262144" };
    write!(stream, "GET /big?bytes={size}{framing} HTTP/1.1\r\nHost: h\r\n\r\n")?;
    let head = read_head(&mut stream)?;
    assert_eq!(head.status, 200, "{}", head.head);
    std::thread::sleep(pause);
    let mut reader = BufReader::with_capacity(16 * 1024, Trickle(stream));
    if !length {
        return read_chunked(&mut reader);
    }
    let mut body = vec![0u8; head.header("content-length").unwrap().parse().unwrap()];
    reader.read_exact(&mut body)?;
    Ok(body)
}

fn access_lines(daemon: &Daemon, path: &str) -> Vec<serde_json::Value> {
    daemon
        .logs()
        .iter()
        .filter(|l| l.contains("\"hookgate::access\""))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["path"] == path)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_readers_under_load_get_every_byte_and_the_log_agrees() {
    let upstream = Upstream::start("app").await;
    // Every client-side timer but send_timeout is far shorter than a download takes.
    let limits =
        "idle_timeout = \"500ms\"\nheader_timeout = \"500ms\"\nbody_timeout = \"500ms\"\nsend_timeout = \"10s\"";
    let daemon = Daemon::start(&config(&upstream, limits));
    let addr = daemon.addr;

    let stop = Arc::new(AtomicBool::new(false));
    let fast_done = Arc::new(AtomicUsize::new(0));
    let fast: Vec<_> = (0..4)
        .map(|_| {
            let (stop, done) = (stop.clone(), fast_done.clone());
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    stream.write_all(b"GET /quick HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
                    let response = common::read_response(&mut stream).unwrap();
                    assert_eq!(response.status, 200);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let pause = Duration::from_millis(1500);
    let slow: Vec<_> = sizes()
        .into_iter()
        .enumerate()
        .map(|(i, size)| std::thread::spawn(move || (size, slow_download(addr, size, i % 2 == 0, pause))))
        .collect();

    let mut truncated = Vec::new();
    for reader in slow {
        let (size, body) = reader.join().unwrap();
        match body {
            Ok(body) if body.len() == size => {
                assert!(body.iter().enumerate().all(|(i, b)| *b == pattern_byte(i)), "body bytes changed");
            }
            Ok(body) => truncated.push(format!("{size}: got {}", body.len())),
            Err(e) => truncated.push(format!("{size}: {e}")),
        }
    }
    stop.store(true, Ordering::Relaxed);
    for thread in fast {
        thread.join().unwrap();
    }
    let count = sizes().len();
    assert!(truncated.is_empty(), "{} of {count} slow downloads were cut short: {truncated:?}", truncated.len());
    assert!(fast_done.load(Ordering::Relaxed) > 10, "the fast clients made no progress");

    assert!(common::eventually(Duration::from_secs(5), || access_lines(&daemon, "/big").len() == count));
    let mut logged: Vec<u64> = access_lines(&daemon, "/big")
        .iter()
        .map(|line| {
            assert_eq!(line["status"], 200, "{line}");
            assert!(line.get("aborted").is_none(), "{line}");
            line["bytes"].as_u64().unwrap()
        })
        .collect();
    logged.sort();
    let sent: Vec<u64> = sizes().into_iter().map(|s| s as u64).collect();
    assert_eq!(logged, sent, "the log must count the bytes written");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_is_cut_after_send_timeout_and_logged_as_such() {
    let upstream = Upstream::start("app").await;
    let daemon = Daemon::start(&config(&upstream, "send_timeout = \"1s\"\nidle_timeout = \"30s\""));
    let total = 64 << 20;
    let mut stream = connect_small(daemon.addr);
    write!(stream, "GET /big?bytes={total} HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(read_head(&mut stream).unwrap().status, 200);

    // Read nothing more: hookgate's writes stall, and after send_timeout it gives up.
    let line = daemon.wait_for_log("client_timeout", Duration::from_secs(15));
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["aborted"], "client_timeout", "{line}");
    assert_eq!(entry["status"], 200, "{line}");
    let logged = entry["bytes"].as_u64().unwrap();
    assert!(logged < total as u64, "a cut response must not be logged as complete: {line}");

    // The client sees the connection end before the body does, having received
    // no more than hookgate says it wrote.
    let mut received = 0u64;
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => received += n as u64,
        }
    }
    assert!(received < total as u64, "the stalled client got the whole body");
    assert!(received <= logged + 64 * 1024, "client got {received} bytes, log says {logged}");
}

#[tokio::test(flavor = "multi_thread")]
async fn drain_waits_for_a_slow_reader_and_cuts_a_stalled_one_as_cut() {
    let upstream = Upstream::start("app").await;
    let mut daemon = Daemon::start(&config(&upstream, "shutdown_grace = \"20s\"\nidle_timeout = \"1s\""));
    let addr = daemon.addr;
    let reader = std::thread::spawn(move || slow_download(addr, 3 << 20, false, Duration::from_secs(2)));
    assert!(common::eventually(Duration::from_secs(5), || !upstream.seen().is_empty()));
    daemon.signal("TERM");
    let body = reader.join().unwrap().expect("the slow reader was cut during drain");
    assert_eq!(body.len(), 3 << 20);
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)), Some(0));
    assert_eq!(access_lines(&daemon, "/big")[0]["bytes"], 3 << 20);

    let mut daemon = Daemon::start(&config(&upstream, "shutdown_grace = \"1s\"\nsend_timeout = \"60s\""));
    let mut stalled = connect_small(daemon.addr);
    write!(stalled, "GET /big?bytes={} HTTP/1.1\r\nHost: h\r\n\r\n", 64 << 20).unwrap();
    assert_eq!(read_head(&mut stalled).unwrap().status, 200);
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), Some(0));
    let line = daemon.wait_for_log("grace of", Duration::from_secs(1));
    assert!(line.contains("\"cut\":1"), "{line}");
    let cut = access_lines(&daemon, "/big");
    assert_eq!(cut.len(), 1, "the cut response must be logged");
    assert_eq!(cut[0]["aborted"], "shutdown", "{}", cut[0]);
}

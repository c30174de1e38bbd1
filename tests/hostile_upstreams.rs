//! Upstreams that misbehave on purpose, each with a defined outcome: 502 (or
//! 504) while nothing has reached the client, a cut client connection once a
//! head has gone out, never a hang past the timeouts, and the upstream
//! connection never reused after a fault (counted per test).

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Daemon, read_head, read_response};

/// What the upstream does once it has read a request head.
pub type Behaviour = fn(&mut TcpStream);

/// A raw upstream: per connection, it reads request heads and answers each with
/// `behaviour`, until the behaviour closes the connection or the peer does.
pub struct Hostile {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    /// Requests the behaviour has finished answering (all its bytes written).
    answered: Arc<AtomicUsize>,
}

impl Hostile {
    pub fn start(behaviour: Behaviour) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let answered = Arc::new(AtomicUsize::new(0));
        let (count, done) = (connections.clone(), answered.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let done = done.clone();
                std::thread::spawn(move || {
                    while read_request_head(&mut stream) {
                        behaviour(&mut stream);
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        Hostile { addr, connections, answered }
    }

    fn daemon(&self) -> Daemon {
        self.daemon_behind("")
    }

    /// hookgate with one worker in front of this upstream, `listen` its own
    /// `[listen]` tables (the default plain listener when empty).
    pub fn daemon_behind(&self, listen: &str) -> Daemon {
        Daemon::start(&format!(
            "[runtime]\nworkers = 1\n{listen}\n[upstreams.app]\nurl = \"http://{}\"\nresponse_timeout = \"500ms\"\n[default]\nupstream = \"app\"\n",
            self.addr
        ))
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Waits until the behaviour has finished `n` answers in all.
    pub fn wait_answered(&self, n: usize) {
        let done = common::eventually(Duration::from_secs(10), || self.answered.load(Ordering::SeqCst) >= n);
        assert!(done, "the upstream finished {} answers, not {n}", self.answered.load(Ordering::SeqCst));
    }
}

fn read_request_head(stream: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return false,
        }
    }
    true
}

/// Closes with a TCP reset (SO_LINGER 0) instead of a FIN: the serving loop's
/// next read returns at once and dropping the socket sends the RST.
fn reset(stream: &mut TcpStream) {
    socket2::SockRef::from(&*stream).set_linger(Some(Duration::ZERO)).unwrap();
    let _ = stream.shutdown(std::net::Shutdown::Read);
}

fn send(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes);
}

/// One GET on a new client connection: the status of the head (0 if none came),
/// and whether the body arrived whole.
fn exchange(daemon: &Daemon) -> (u16, bool) {
    let mut client = TcpStream::connect(daemon.addr).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    client.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let Ok(head) = read_head(&mut client) else { return (0, false) };
    let whole = match head.header("content-length") {
        Some(len) => {
            let mut body = vec![0u8; len.parse().unwrap()];
            client.read_exact(&mut body).is_ok()
        }
        None => common::read_chunked(&mut std::io::BufReader::new(client)).is_ok(),
    };
    (head.status, whole)
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

fn reset_mid_head(s: &mut TcpStream) {
    send(s, b"HTTP/1.1 200 OK\r\nContent-Le");
    reset(s);
}

fn reset_after_head(s: &mut TcpStream) {
    send(s, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
    reset(s);
}

fn reset_mid_body(s: &mut TcpStream) {
    send(s, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
    reset(s);
}

/// Past the length hookgate splices from (256 KiB), so the kernel-side copy is tested too.
const LONG_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 4194304\r\n\r\n";

fn reset_mid_long_body(s: &mut TcpStream) {
    send(s, LONG_HEAD);
    send(s, &[b'x'; 1024 * 1024]);
    reset(s);
}

fn long_body_stalls(s: &mut TcpStream) {
    send(s, LONG_HEAD);
    send(s, &[b'x'; 1024 * 1024]);
    std::thread::sleep(Duration::from_secs(30));
}

fn truncated_chunked(s: &mut TcpStream) {
    send(s, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n01234");
    let _ = s.shutdown(std::net::Shutdown::Both);
}

/// Broken framing in the same bytes as the head: nothing has gone out yet.
fn invalid_chunk_size_with_the_head(s: &mut TcpStream) {
    send(s, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n");
}

/// Found by fuzzing: `020` was forwarded as `HTTP/1.1 20 OK`, no status line at all.
fn status_below_100(s: &mut TcpStream) {
    send(s, b"HTTP/1.1 020 OK\r\nContent-Length: 2\r\n\r\nok");
}

fn status_above_599(s: &mut TcpStream) {
    send(s, b"HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\nok");
}

/// Broken framing after the head and a good chunk have gone out.
fn invalid_chunk_size_later(s: &mut TcpStream) {
    send(s, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    std::thread::sleep(Duration::from_millis(100));
    send(s, b"zz\r\nhello\r\n0\r\n\r\n");
}

fn huge_header(s: &mut TcpStream) {
    let mut head = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 1 << 20));
    head.extend_from_slice(b"\r\nContent-Length: 2\r\n\r\nok");
    send(s, &head);
}

fn interim_storm(s: &mut TcpStream) {
    let storm = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(1000);
    send(s, &storm);
    send(s, OK);
}

fn two_responses(s: &mut TcpStream) {
    send(s, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray");
}

fn unsolicited_later(s: &mut TcpStream) {
    send(s, OK);
    std::thread::sleep(Duration::from_millis(100));
    send(s, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray");
}

fn body_longer_than_length(s: &mut TcpStream) {
    send(s, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA-BYTES");
}

fn promised_body_never_sent(s: &mut TcpStream) {
    send(s, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
    std::thread::sleep(Duration::from_secs(30));
}

fn trickled_head(s: &mut TcpStream) {
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: ".iter().chain(std::iter::repeat(&b'a')) {
        if s.write_all(&[*byte]).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Faults before a whole head: the answer is hookgate's own.
pub const BEFORE_THE_HEAD: &[(&str, Behaviour, u16)] = &[
    ("reset mid-head", reset_mid_head, 502),
    ("a 1 MiB header", huge_header, 502),
    ("an invalid chunk size read with the head", invalid_chunk_size_with_the_head, 502),
    ("a head trickled byte by byte", trickled_head, 504),
    ("a status code below 100", status_below_100, 502),
    ("a status code above 599", status_above_599, 502),
];

/// Faults once the head has gone out: the response is cut.
pub const AFTER_THE_HEAD: &[(&str, Behaviour)] = &[
    ("reset after the head", reset_after_head),
    ("reset mid-body", reset_mid_body),
    ("reset mid-way through a long body", reset_mid_long_body),
    ("a long body that stalls", long_body_stalls),
    ("a truncated chunked body", truncated_chunked),
    ("an invalid chunk size", invalid_chunk_size_later),
    ("a promised body never sent", promised_body_never_sent),
];

/// Bytes after a complete response: it is answered, the bytes go nowhere.
pub const BEYOND_THE_RESPONSE: &[(&str, Behaviour)] = &[
    ("two responses at once", two_responses),
    ("a response to a request never sent", unsolicited_later),
    ("a body longer than its Content-Length", body_longer_than_length),
];

#[tokio::test(flavor = "multi_thread")]
async fn faults_before_the_head_are_502_or_504_and_the_connection_is_not_reused() {
    for (name, behaviour, want) in BEFORE_THE_HEAD {
        let upstream = Hostile::start(*behaviour);
        let daemon = upstream.daemon();
        let started = Instant::now();
        assert_eq!(exchange(&daemon), (*want, true), "{name}");
        assert!(started.elapsed() < Duration::from_secs(5), "{name}: answered within response_timeout + slack");
        assert_eq!(exchange(&daemon).0, *want, "{name}, again");
        assert_eq!(upstream.connections(), 2, "{name}: a faulty connection is never reused");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_after_the_head_cut_the_client_and_the_connection_is_not_reused() {
    for (name, behaviour) in AFTER_THE_HEAD {
        let upstream = Hostile::start(*behaviour);
        let daemon = upstream.daemon();
        let started = Instant::now();
        assert_eq!(exchange(&daemon), (200, false), "{name}: the head went out, then the body was cut");
        assert!(started.elapsed() < Duration::from_secs(5), "{name}: cut within response_timeout + slack");
        daemon.wait_for_log("aborted=upstream", Duration::from_secs(5));
        assert_eq!(exchange(&daemon), (200, false), "{name}, again");
        assert_eq!(upstream.connections(), 2, "{name}: a faulty connection is never reused");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bytes_beyond_a_response_never_reach_the_next_request() {
    for (name, behaviour) in BEYOND_THE_RESPONSE {
        let upstream = Hostile::start(*behaviour);
        let daemon = upstream.daemon();
        for round in 0..3 {
            let response = common::get(daemon.addr, "h", "/");
            assert_eq!((response.status, response.body_text().as_str()), (200, "ok"), "{name}, round {round}");
            // The stray bytes have gone out before the next request.
            upstream.wait_answered(round + 1);
        }
        assert_eq!(upstream.connections(), 3, "{name}: a connection with stray bytes is not reused");
    }
}

/// A reason phrase that is not UTF-8, and none at all: both legal (obs-text),
/// both forwarded. The first crashed the exchange until fuzzing found it.
#[tokio::test(flavor = "multi_thread")]
async fn odd_reason_phrases_are_forwarded() {
    fn latin1_reason(s: &mut TcpStream) {
        send(s, b"HTTP/1.1 200 \xd8\xb0\xb4\xf2\r\nContent-Length: 2\r\n\r\nok");
    }
    fn no_reason(s: &mut TcpStream) {
        send(s, b"HTTP/1.1 200\r\nX-Empty:\r\nContent-Length: 2\r\n\r\nok");
    }
    for behaviour in [latin1_reason as Behaviour, no_reason] {
        let upstream = Hostile::start(behaviour);
        let daemon = upstream.daemon();
        let response = common::get(daemon.addr, "h", "/");
        assert_eq!((response.status, response.body_text().as_str()), (200, "ok"), "{}", response.head);
    }
}

/// RFC 9110 §6.6.1: a response an upstream sent without `Date` reaches the
/// client with one, a response with its own keeps it unchanged, and hookgate's
/// own answers carry one.
#[tokio::test(flavor = "multi_thread")]
async fn every_response_reaches_the_client_with_one_date() {
    fn undated(s: &mut TcpStream) {
        send(s, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
    fn dated(s: &mut TcpStream) {
        send(s, b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 2\r\n\r\nok");
    }
    let dates = |response: &common::RawResponse| -> Vec<String> { response.headers("date").collect() };
    let is_now = |date: &str| {
        let when = httpdate::parse_http_date(date).unwrap_or_else(|e| panic!("{date:?}: {e}"));
        std::time::SystemTime::now().duration_since(when).is_ok_and(|age| age.as_secs() <= 5)
    };

    let upstream = Hostile::start(undated);
    let daemon = upstream.daemon();
    let response = common::get(daemon.addr, "h", "/");
    assert_eq!(response.status, 200);
    let added = dates(&response);
    assert!(added.len() == 1 && is_now(&added[0]), "{}", response.head);
    let refused = common::raw(daemon.addr, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(refused.status, 400);
    let own = dates(&refused);
    assert!(own.len() == 1 && is_now(&own[0]), "{}", refused.head);

    let upstream = Hostile::start(dated);
    let daemon = upstream.daemon();
    let response = common::get(daemon.addr, "h", "/");
    assert_eq!(dates(&response), ["Sun, 06 Nov 1994 08:49:37 GMT"], "{}", response.head);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interim_storm_is_skipped_and_the_final_answer_forwarded() {
    let upstream = Hostile::start(interim_storm);
    let daemon = upstream.daemon();
    let mut client = TcpStream::connect(daemon.addr).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    client.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let response = read_response(&mut client).unwrap();
    assert_eq!(
        (response.status, response.body_text().as_str()),
        (200, "ok"),
        "no 100 reaches a client that did not expect one"
    );
}

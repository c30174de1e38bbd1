//! An upstream that answers from a script, on threads of its own, counting
//! the connections it gets and how each ended: for the pool's rules (reuse,
//! `max_idle`, `idle_timeout`, the retry of a closed connection).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A raw upstream: for every request head it reads, it writes the next
/// scripted response (the last one repeats). It counts connections, and those
/// hookgate closed, and keeps every request it saw.
pub struct Scripted {
    pub addr: SocketAddr,
    /// Connections accepted.
    pub connections: Arc<AtomicUsize>,
    /// Connections the proxy closed between requests.
    pub closed_by_proxy: Arc<AtomicUsize>,
    /// Each request's head (and a chunked body as it came).
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    /// `close_after` closes each connection after that many responses.
    pub fn start(responses: &[&'static [u8]], close_after: usize) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let closed_by_proxy = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let responses: Vec<&'static [u8]> = responses.to_vec();
        let (count, closed, seen) = (connections.clone(), closed_by_proxy.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let (responses, closed, seen) = (responses.clone(), closed.clone(), seen.clone());
                std::thread::spawn(move || {
                    let mut served = 0;
                    while served < close_after {
                        let Some(mut head) = read_request_head(&mut stream) else {
                            closed.fetch_add(1, Ordering::SeqCst);
                            return;
                        };
                        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
                            let Some(body) = read_chunked_raw(&mut stream) else { return };
                            head.push_str(&body);
                        }
                        seen.lock().unwrap().push(head);
                        let response = responses[served.min(responses.len() - 1)];
                        if stream.write_all(response).is_err() {
                            return;
                        }
                        served += 1;
                    }
                });
            }
        });
        Scripted { addr, connections, closed_by_proxy, requests }
    }

    pub fn config(&self, extra: &str) -> String {
        format!("[upstreams.app]\nurl = \"http://{}\"\n{extra}\n[default]\nupstream = \"app\"\n", self.addr)
    }

    /// hookgate with one worker and a TLS listener (site `a.test`, see
    /// `tls_client::tls_listener`) in front of this upstream, whose own keys are `extra`.
    pub fn behind_tls(&self, pki: &super::tls_client::Pki, extra: &str) -> String {
        format!("[runtime]\nworkers = 1\n{}{}", super::tls_client::tls_listener(pki), self.config(extra))
    }
}

pub fn read_request_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A chunked body as it came on the wire, up to its final empty line.
pub fn read_chunked_raw(stream: &mut TcpStream) -> Option<String> {
    let mut body = Vec::new();
    let mut byte = [0u8; 1];
    while !(body.ends_with(b"\r\n\r\n") && (body.starts_with(b"0\r\n") || body.windows(4).any(|w| w == b"\n0\r\n"))) {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        body.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&body).into_owned())
}

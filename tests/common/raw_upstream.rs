//! A raw upstream for tests that need exact bytes on the wire: it records
//! each request as received and answers every connection with one fixed reply.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::tls_client::Pki;

/// A raw upstream, plain or TLS: per connection it reads one request (its
/// head, and its body only when chunked), writes `reply`, and closes 300 ms
/// later without reading any more.
#[derive(Clone)]
pub struct RawUpstream {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl RawUpstream {
    pub async fn start(reply: &'static [u8], tls: Option<tokio_rustls::TlsAcceptor>) -> RawUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = RawUpstream { addr: listener.local_addr().unwrap(), requests: Arc::default() };
        let seen = upstream.requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, tls) = (seen.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => answer_once(stream, reply, seen).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                answer_once(stream, reply, seen).await;
                            }
                        }
                    }
                });
            }
        });
        upstream
    }

    /// An https upstream with a certificate for `localhost` from `pki`.
    pub async fn start_tls(reply: &'static [u8], pki: &Pki) -> RawUpstream {
        pki.issue("upstream", &["localhost"]);
        let cert = hookgate::internals::load_certificate(&pki.path("upstream.pem"), &pki.path("upstream.key")).unwrap();
        let config = hookgate::internals::server_config(&[cert], false, None).unwrap();
        RawUpstream::start(reply, Some(tokio_rustls::TlsAcceptor::from(config))).await
    }

    /// The first line of each request.
    pub fn request_lines(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| String::from_utf8_lossy(r).lines().next().unwrap_or_default().to_string())
            .collect()
    }

    /// Each request's bytes as received: the head, and a chunked body whole.
    pub fn requests(&self) -> Vec<Vec<u8>> {
        self.requests.lock().unwrap().clone()
    }

    /// A config sending everything to this upstream (over TLS when `pki` is given).
    pub fn config(&self, pki: Option<&Pki>) -> String {
        let url = match pki {
            None => format!("http://{}", self.addr),
            Some(pki) => format!("https://localhost:{}\"\ntls_ca_file = \"{}", self.addr.port(), pki.path("ca.pem")),
        };
        format!("[upstreams.app]\nurl = \"{url}\"\nresponse_timeout = \"2s\"\n[default]\nupstream = \"app\"\n")
    }
}

async fn answer_once<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, reply: &[u8], seen: Arc<Mutex<Vec<Vec<u8>>>>) {
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        request.push(byte[0]);
    }
    // A chunked body is read to its end: its last chunk and trailer section.
    if String::from_utf8_lossy(&request).to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let body_at = request.len();
        while !chunked_body_done(&request[body_at..]) && stream.read(&mut byte).await.unwrap_or(0) == 1 {
            request.push(byte[0]);
        }
    }
    seen.lock().unwrap().push(request);
    let _ = stream.write_all(reply).await;
    let _ = stream.flush().await;
    // Reads nothing more, then closes: a sender still sending gets a reset.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Whether `body` holds a whole chunked body (good enough for test bodies).
fn chunked_body_done(body: &[u8]) -> bool {
    let last = if body.starts_with(b"0\r\n") {
        Some(0)
    } else {
        body.windows(5).position(|w| w == b"\r\n0\r\n").map(|i| i + 2)
    };
    last.is_some_and(|at| {
        let rest = &body[at + 3..];
        rest == b"\r\n" || rest.ends_with(b"\r\n\r\n")
    })
}

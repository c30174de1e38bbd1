//! TLS for tests: a throwaway CA that issues certificate files, the config
//! that serves two of them, and rustls clients that trust it (or anything).

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::client::TlsStream;

use super::Upstream;

/// A test CA and the files of the certificates it signed.
pub struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    pub fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "hookgate test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pki = Pki { dir: tempfile::tempdir().unwrap(), ca };
        std::fs::write(pki.path("ca.pem"), pki.ca.pem()).unwrap();
        pki
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// A CA with the two sites `tls_config` serves: `a` (a.test) and `b` (b.test).
    pub fn two_sites() -> Pki {
        let pki = Pki::new();
        pki.issue("a", &["a.test"]);
        pki.issue("b", &["b.test"]);
        pki
    }

    /// Writes `<file>.pem` and `<file>.key` for `names`; returns the leaf's DER.
    pub fn issue(&self, file: &str, names: &[&str]) -> CertificateDer<'static> {
        self.issue_for(file, names, 365)
    }

    /// Like `issue`, valid for `days` from now.
    pub fn issue_for(&self, file: &str, names: &[&str], days: i64) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
        let cert = params.signed_by(&key, &self.ca).unwrap();
        std::fs::write(self.path(&format!("{file}.pem")), format!("{}{}", cert.pem(), self.ca.pem())).unwrap();
        std::fs::write(self.path(&format!("{file}.key")), key.serialize_pem()).unwrap();
        cert.der().clone()
    }
}

pub fn tls_config(pki: &Pki, app: &Upstream, extra: &str) -> String {
    format!(
        r#"[listen]
addrs = []
[listen.tls]
addrs = ["127.0.0.1:0"]
certificates = [
  {{ cert_file = "{a}.pem", key_file = "{a}.key" }},
  {{ cert_file = "{b}.pem", key_file = "{b}.key" }},
]
[admin]
addr = "127.0.0.1:0"
[upstreams.app]
url = "{url}"
[[routes]]
name = "telegram-webhook"
path = "/api/v1/guest/telegram/webhook"
methods = ["POST"]
upstream = "app"
{extra}
[default]
upstream = "app"
"#,
        a = pki.path("a"),
        b = pki.path("b"),
        url = app.url()
    )
}

/// A client that trusts only the CAs in `ca_file` and offers `alpn`.
pub fn trusting(ca_file: &str, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    let trust = hookgate::internals::UpstreamTrust::CaFile(ca_file.to_string());
    let mut config = hookgate::internals::client_config(&trust).unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// A client that trusts the test CA and offers `alpn`.
pub fn client(pki: &Pki, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    trusting(&pki.path("ca.pem"), alpn)
}

/// A client that accepts any certificate, to see which one the server picks.
pub fn peek_client() -> tokio_rustls::TlsConnector {
    let config = hookgate::internals::client_config(&hookgate::internals::UpstreamTrust::Insecure).unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

pub async fn connect(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    name: &str,
) -> TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(name.to_string()).unwrap();
    connector.connect(name, tcp).await.expect("TLS handshake")
}

pub fn presented(stream: &TlsStream<tokio::net::TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned()
}

/// The `[listen]` tables of a TLS listener on `127.0.0.1:0` for site `a.test`
/// alone (`Pki::two_sites`' first), and no plain listener.
pub fn tls_listener(pki: &Pki) -> String {
    format!(
        "[listen]\naddrs = []\n[listen.tls]\naddrs = [\"127.0.0.1:0\"]\n\
         certificates = [{{ cert_file = \"{a}.pem\", key_file = \"{a}.key\" }}]\n",
        a = pki.path("a"),
    )
}

/// An HTTP/2 connection to hookgate's TLS listener at `addr` as site
/// `a.test`, driven in the background.
pub async fn h2(
    pki: &Pki,
    addr: SocketAddr,
) -> hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>> {
    h2_with(pki, addr, &hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())).await
}

/// As `h2`, with the client's settings in `builder` (a test's own window or keep-alive).
pub async fn h2_with(
    pki: &Pki,
    addr: SocketAddr,
    builder: &hyper::client::conn::http2::Builder<hyper_util::rt::TokioExecutor>,
) -> hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>> {
    let stream = connect(&client(pki, &[b"h2"]), addr, "a.test").await;
    let (send, conn) = builder.handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    send
}

/// A client of hookgate's TLS listener as site `a.test` (see `tls_config`):
/// HTTP/2 (hyper's service) or HTTP/1.1 (the engine), by ALPN.
pub enum Front {
    Http2(hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>),
    Http1(hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>),
}

impl Front {
    pub async fn connect(pki: &Pki, addr: SocketAddr, http2: bool) -> Front {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        let alpn: &[&[u8]] = if http2 { &[b"h2"] } else { &[b"http/1.1"] };
        let stream = TokioIo::new(connect(&client(pki, alpn), addr, "a.test").await);
        if http2 {
            let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), stream).await.unwrap();
            tokio::spawn(conn);
            Front::Http2(send)
        } else {
            let (send, conn) = hyper::client::conn::http1::handshake(stream).await.unwrap();
            tokio::spawn(conn);
            Front::Http1(send)
        }
    }

    /// Sends `request` on this connection; its status and whole body.
    pub async fn send(&mut self, request: http::Request<http_body_util::Full<bytes::Bytes>>) -> (u16, bytes::Bytes) {
        let (status, _, body) = self.exchange(request).await;
        (status, body)
    }

    /// As `send`, with the response's headers.
    pub async fn exchange(
        &mut self,
        request: http::Request<http_body_util::Full<bytes::Bytes>>,
    ) -> (u16, http::HeaderMap, bytes::Bytes) {
        use http_body_util::BodyExt;
        let response = match self {
            Front::Http2(send) => send.send_request(request).await.unwrap(),
            Front::Http1(send) => {
                send.ready().await.expect("the connection is kept open");
                send.send_request(request).await.unwrap()
            }
        };
        let (parts, body) = response.into_parts();
        (parts.status.as_u16(), parts.headers, body.collect().await.unwrap().to_bytes())
    }
}

//! The admin listener over real sockets, against the real daemon: the bearer
//! token (its scheme in any case, rotated on reload), the methods each
//! endpoint takes (`HEAD` wherever `GET`, `Allow` on 405).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{Daemon, RawResponse, read_head, read_response};

const TOKEN: &str = "admin-token_0123456789";

/// A daemon with `[admin]` on a port of its own, and a folder for token files.
struct Setup {
    _daemon: Daemon,
    admin: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Setup {
    /// `admin_extra` goes into the `[admin]` table; `DIR` in it names `dir`.
    fn start(admin_extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), TOKEN).unwrap();
        let daemon =
            Daemon::start(&config("127.0.0.1:0", &admin_extra.replace("DIR", &dir.path().display().to_string())));
        let admin = daemon.admin.expect("admin listener");
        Setup { _daemon: daemon, admin, _dir: dir }
    }

    /// One request to the admin listener with `Host: localhost` and `Connection: close`.
    fn ask(&self, method: &str, path: &str, headers: &str) -> RawResponse {
        ask(self.admin, method, path, &format!("Host: localhost\r\n{headers}"))
    }
}

fn config(admin_addr: &str, admin_extra: &str) -> String {
    format!("[admin]\naddr = \"{admin_addr}\"\n{admin_extra}\n[default]\nrespond = {{ status = 200 }}\n")
}

/// `method path` with `headers` (each ending in CRLF) and `Connection: close`.
fn ask(admin: SocketAddr, method: &str, path: &str, headers: &str) -> RawResponse {
    let mut stream = TcpStream::connect(admin).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(stream, "{method} {path} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n").unwrap();
    if method == "HEAD" {
        // No body follows a HEAD response's head, whatever its Content-Length says.
        let mut response = read_head(&mut stream).unwrap();
        stream.read_to_end(&mut response.body).unwrap();
        return response;
    }
    read_response(&mut stream).unwrap()
}

fn bearer(scheme: &str, token: &str) -> String {
    format!("Authorization: {scheme} {token}\r\n")
}

#[test]
fn the_bearer_scheme_is_matched_in_any_case() {
    let setup = Setup::start("token_file = \"DIR/token\"");
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let response = setup.ask("GET", "/readyz", &bearer(scheme, TOKEN));
        assert_eq!(response.status, 200, "{scheme}: {}", response.body_text());
    }
    assert_eq!(setup.ask("GET", "/readyz", &bearer("bearer", "wrong")).status, 401);
    assert_eq!(setup.ask("GET", "/readyz", &bearer("Basic", TOKEN)).status, 401);
    assert_eq!(setup.ask("GET", "/readyz", "").status, 401);
}

#[test]
fn a_405_names_the_methods_its_endpoint_takes() {
    let setup = Setup::start("");
    for (method, path, allow) in [
        ("POST", "/healthz", "GET, HEAD"),
        ("DELETE", "/status.json", "GET, HEAD"),
        ("PUT", "/", "GET, HEAD"),
        ("POST", "/metrics", "GET, HEAD"),
        ("POST", "/readyz", "GET, HEAD"),
        ("GET", "/reload", "POST"),
        ("HEAD", "/reload", "POST"),
    ] {
        let response = setup.ask(method, path, "Content-Length: 0\r\n");
        assert_eq!(response.status, 405, "{method} {path}");
        assert_eq!(response.header("allow").as_deref(), Some(allow), "{method} {path}");
    }
    assert_eq!(setup.ask("GET", "/nope", "").status, 404);
}

#[test]
fn head_is_answered_wherever_get_is() {
    let setup = Setup::start("");
    for path in ["/healthz", "/readyz", "/", "/status.json", "/metrics"] {
        let get = setup.ask("GET", path, "");
        let head = setup.ask("HEAD", path, "");
        assert_eq!(get.status, 200, "GET {path}");
        assert_eq!(head.status, get.status, "HEAD {path}");
        assert!(head.body.is_empty(), "HEAD {path} sent a body: {:?}", head.body_text());
        for name in ["content-type", "cache-control"] {
            assert_eq!(head.header(name), get.header(name), "HEAD {path}: {name}");
        }
        assert!(head.header("content-length").is_some(), "HEAD {path}: no Content-Length");
    }
    // Fixed bodies: the same length announced.
    for path in ["/healthz", "/readyz"] {
        let (get, head) = (setup.ask("GET", path, ""), setup.ask("HEAD", path, ""));
        assert_eq!(head.header("content-length"), get.header("content-length"), "HEAD {path}");
    }
}

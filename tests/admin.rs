//! The admin listener over real sockets, against the real daemon: the bearer
//! token (its scheme in any case; rotated, added and removed by a reload), the
//! methods each endpoint takes (`HEAD` wherever `GET`, `Allow` on 405), and
//! what keeps browsers' cross-site and DNS-rebinding requests out (`Host`,
//! `Origin`) while the `hookgate` commands still get in. The bounds on its
//! connections are in `admin_limits.rs`.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Daemon, RawResponse, eventually, free_port, read_head, read_response};

const TOKEN: &str = "admin-token_0123456789";
const NEW_TOKEN: &str = "rotated-token_9876543210";

/// A daemon with `[admin]` on a fixed port (so the `hookgate` commands find
/// it in the file), and a folder holding the token file `DIR/token`.
struct Setup {
    daemon: Daemon,
    admin: SocketAddr,
    /// `[admin] addr` as written in the file.
    admin_addr: String,
    dir: tempfile::TempDir,
}

impl Setup {
    /// `admin_extra` goes into the `[admin]` table; `DIR` in it names the token's folder.
    fn start(admin_extra: &str) -> Setup {
        Setup::start_on("127.0.0.1", admin_extra)
    }

    /// With `[admin] addr` on `ip` (a free port of loopback's).
    fn start_on(ip: &str, admin_extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), TOKEN).unwrap();
        let admin_addr = format!("{ip}:{}", free_port());
        let extra = admin_extra.replace("DIR", &dir.path().display().to_string());
        let daemon = Daemon::start(&config(&admin_addr, &extra));
        let admin = SocketAddr::from(([127, 0, 0, 1], daemon.admin.expect("admin listener").port()));
        Setup { daemon, admin, admin_addr, dir }
    }

    fn token_file(&self) -> PathBuf {
        self.dir.path().join("token")
    }

    /// Rewrites the config file with the same `[admin] addr` (unless `admin_extra`
    /// sets one) and `admin_extra` (`DIR` as in `start`) in the `[admin]` table.
    fn rewrite(&self, admin_extra: &str) {
        let extra = admin_extra.replace("DIR", &self.dir.path().display().to_string());
        let addr = if extra.contains("addr =") { String::new() } else { format!("addr = \"{}\"\n", self.admin_addr) };
        self.daemon.rewrite_config(&format!(
            "[listen]\naddrs = [\"127.0.0.1:0\"]\n[admin]\n{addr}{extra}\n[default]\nrespond = {{ status = 200 }}\n"
        ));
    }

    /// SIGHUP, then waits for the reload's outcome in the log.
    fn sighup(&self) {
        let outcomes =
            || self.daemon.logs().iter().filter(|l| l.contains("reloaded ") || l.contains("reload failed")).count();
        let before = outcomes();
        self.daemon.signal("HUP");
        assert!(eventually(Duration::from_secs(10), || outcomes() > before), "no reload outcome logged");
    }

    /// `hookgate <command> -c <the daemon's file>`.
    fn hookgate(&self, command: &str) -> Output {
        Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .arg(command)
            .arg("-c")
            .arg(&self.daemon.config_path)
            .env_remove("HOOKGATE_CONFIG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// One request to the admin listener with `Host: localhost` and `Connection: close`.
    fn ask(&self, method: &str, path: &str, headers: &str) -> RawResponse {
        ask(self.admin, method, path, &format!("Host: localhost\r\n{headers}"))
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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

#[test]
fn a_rotated_token_file_applies_at_the_reload() {
    let setup = Setup::start("token_file = \"DIR/token\"");
    assert_eq!(setup.ask("GET", "/status.json", &bearer("Bearer", TOKEN)).status, 200);
    std::fs::write(setup.token_file(), NEW_TOKEN).unwrap();
    setup.sighup();
    assert_eq!(setup.ask("GET", "/status.json", &bearer("Bearer", NEW_TOKEN)).status, 200);
    assert_eq!(setup.ask("GET", "/status.json", &bearer("Bearer", TOKEN)).status, 401, "the old token still works");
    // The commands read the token from the file, so they send the new one.
    let out = setup.hookgate("status");
    assert_eq!(out.status.code(), Some(0), "hookgate status: {}{}", text(&out.stdout), text(&out.stderr));
    let out = setup.hookgate("reload");
    assert_eq!(out.status.code(), Some(0), "hookgate reload: {}{}", text(&out.stdout), text(&out.stderr));
}

/// `hookgate reload` after the token file was rotated sends the new token,
/// which the running daemon does not know yet: the reload goes ahead because
/// the file it loads names that token. A token neither config names gets 401
/// and loads nothing.
#[test]
fn hookgate_reload_loads_a_rotated_token_file() {
    let setup = Setup::start("token_file = \"DIR/token\"");
    std::fs::write(setup.token_file(), "a-guess").unwrap();
    let guess = setup.ask("POST", "/reload", &bearer("Bearer", "a-guess"));
    assert_eq!(guess.status, 200, "the file names this token: {}", guess.body_text());
    std::fs::write(setup.token_file(), NEW_TOKEN).unwrap();
    let stranger = setup.ask("POST", "/reload", &bearer("Bearer", "not-in-any-file"));
    assert_eq!(stranger.status, 401, "{}", stranger.body_text());
    assert_eq!(setup.ask("GET", "/status.json", &bearer("Bearer", "a-guess")).status, 200, "nothing was loaded");
    let out = setup.hookgate("reload");
    assert_eq!(out.status.code(), Some(0), "hookgate reload: {}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(setup.ask("GET", "/status.json", &bearer("Bearer", NEW_TOKEN)).status, 200);
    assert_eq!(setup.ask("GET", "/status.json", &bearer("Bearer", "a-guess")).status, 401, "the old token is gone");
}

#[test]
fn adding_a_token_file_guards_the_admin_from_the_reload_on() {
    let setup = Setup::start("");
    assert_eq!(setup.ask("GET", "/status.json", "").status, 200);
    setup.rewrite("token_file = \"DIR/token\"");
    let reload = setup.ask("POST", "/reload", "Content-Length: 0\r\n");
    assert_eq!(reload.status, 200, "{}", reload.body_text());
    for path in ["/status.json", "/metrics", "/readyz", "/"] {
        assert_eq!(setup.ask("GET", path, "").status, 401, "{path} without the token");
    }
    assert_eq!(setup.ask("POST", "/reload", "Content-Length: 0\r\n").status, 401);
    assert_eq!(setup.ask("GET", "/status.json", &bearer("Bearer", TOKEN)).status, 200);
    assert_eq!(setup.ask("GET", "/healthz", "").status, 200);
    setup.daemon.wait_for_log("token_file added", Duration::from_secs(1));
}

#[test]
fn removing_the_token_file_opens_a_loopback_admin_with_a_warning() {
    let setup = Setup::start("token_file = \"DIR/token\"");
    assert_eq!(setup.ask("GET", "/status.json", "").status, 401);
    setup.rewrite("");
    let reload = setup.ask("POST", "/reload", &format!("{}Content-Length: 0\r\n", bearer("Bearer", TOKEN)));
    assert_eq!(reload.status, 200, "{}", reload.body_text());
    assert_eq!(setup.ask("GET", "/status.json", "").status, 200);
    let warning = setup.daemon.wait_for_log("token_file removed", Duration::from_secs(1));
    assert!(warning.contains("WARN"), "{warning}");
}

#[test]
fn an_admin_off_loopback_cannot_lose_its_token_at_a_reload() {
    let setup = Setup::start_on("0.0.0.0", "token_file = \"DIR/token\"");
    let with_token = format!("{}Content-Length: 0\r\n", bearer("Bearer", TOKEN));
    // Each file is valid on its own, but the listener stays on 0.0.0.0 until a restart.
    let on_loopback = format!("[admin]\naddr = \"127.0.0.1:{}\"\n", setup.admin.port());
    for admin in [on_loopback.as_str(), ""] {
        setup.daemon.rewrite_config(&format!(
            "[listen]\naddrs = [\"127.0.0.1:0\"]\n{admin}[default]\nrespond = {{ status = 200 }}\n"
        ));
        let reload = setup.ask("POST", "/reload", &with_token);
        assert_eq!(reload.status, 422, "{admin:?}: {}", reload.body_text());
        let said = reload.body_text();
        assert!(said.contains("admin.token_file: the admin listener on 0.0.0.0:"), "{said}");
        assert_eq!(setup.ask("GET", "/status.json", "").status, 401, "{admin:?}");
    }
    assert_eq!(setup.ask("GET", "/status.json", &bearer("Bearer", TOKEN)).status, 200);
}

#[test]
fn a_systemd_admin_socket_off_loopback_needs_a_token_to_start() {
    if !common::have_tool("systemd-socket-activate", "systemd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookgate.toml");
    std::fs::write(&path, "[listen]\naddrs = [\"127.0.0.1:0\"]\n[default]\nrespond = { status = 200 }\n").unwrap();
    let port = free_port();
    let mut child = Command::new("systemd-socket-activate")
        .arg(format!("--listen=0.0.0.0:{port}"))
        .arg("--fdname=admin")
        .arg(env!("CARGO_BIN_EXE_hookgate"))
        .args(["run", "-c"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start systemd-socket-activate");
    // The first connection makes systemd-socket-activate start hookgate.
    let admin = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(eventually(Duration::from_secs(20), || TcpStream::connect(admin).is_ok()), "never listened");
    let exited = eventually(Duration::from_secs(20), || child.try_wait().unwrap().is_some());
    if !exited {
        let open = ask(admin, "GET", "/status.json", "Host: localhost\r\n").status;
        let _ = child.kill();
        panic!("hookgate serves an admin socket on 0.0.0.0 without a token (/status.json: {open})");
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let said = text(&out.stderr);
    assert!(said.contains("admin.token_file: the admin listener on 0.0.0.0:"), "{said}");
}

/// `method path HTTP/1.x` with exactly `headers` (no Host added), on a fresh connection.
fn exact(admin: SocketAddr, request: &str) -> RawResponse {
    let mut stream = TcpStream::connect(admin).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    read_response(&mut stream).unwrap()
}

#[test]
fn without_a_token_the_host_must_name_the_admin() {
    let setup = Setup::start("");
    let port = setup.admin.port();
    // DNS rebinding: evil.example now resolves to 127.0.0.1, and the page reads the answer.
    for host in [format!("evil.example:{port}"), "evil.example".to_string(), format!("localhost.evil.example:{port}")] {
        let response = ask(setup.admin, "GET", "/status.json", &format!("Host: {host}\r\n"));
        assert_eq!(response.status, 421, "Host: {host}");
        assert_eq!(response.body_text().lines().count(), 1, "{}", response.body_text());
        assert!(!response.body_text().contains('{'), "{}", response.body_text());
    }
    for host in [
        "localhost".to_string(),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        format!("127.0.0.1:{port}"),
        "127.3.4.5".to_string(),
        format!("[::1]:{port}"),
    ] {
        let response = ask(setup.admin, "GET", "/status.json", &format!("Host: {host}\r\n"));
        assert_eq!(response.status, 200, "Host: {host}: {}", response.body_text());
    }
    // The absolute form's authority is the one that counts (RFC 9112 §3.2.2).
    let response = exact(
        setup.admin,
        &format!("GET http://evil.example:{port}/status.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(response.status, 421);
    // HTTP/1.0 may leave Host out; HTTP/1.1 may not, nor send two.
    assert_eq!(exact(setup.admin, "GET /status.json HTTP/1.0\r\n\r\n").status, 200);
    assert_eq!(exact(setup.admin, "GET /status.json HTTP/1.1\r\nConnection: close\r\n\r\n").status, 400);
    let twice = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n";
    assert_eq!(exact(setup.admin, twice).status, 400);
}

#[test]
fn a_cross_site_post_is_refused() {
    let setup = Setup::start("");
    let port = setup.admin.port();
    let form = "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n";
    let post = |host: &str, origin: &str| {
        let mut stream = TcpStream::connect(setup.admin).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let request =
            format!("POST /reload HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n{form}Connection: close\r\n\r\na=b");
        stream.write_all(request.as_bytes()).unwrap();
        read_response(&mut stream).unwrap()
    };
    let host = format!("127.0.0.1:{port}");
    for origin in [
        "http://evil.example",
        "null",
        &format!("http://localhost:{port}"),
        "http://127.0.0.1:3000",
        "http://127.0.0.1",
    ] {
        let response = post(&host, origin);
        assert_eq!(response.status, 403, "Origin: {origin}: {}", response.body_text());
        assert_eq!(response.body_text().lines().count(), 1, "{}", response.body_text());
    }
    assert!(!setup.daemon.logs().iter().any(|l| l.contains("reloaded ")), "a refused POST reloaded");
    // The page's own origin, and the commands (no Origin at all), may reload.
    let response = post(&host, &format!("http://{host}"));
    assert_eq!(response.status, 200, "{}", response.body_text());
    let out = setup.hookgate("reload");
    assert_eq!(out.status.code(), Some(0), "hookgate reload: {}{}", text(&out.stdout), text(&out.stderr));
    for command in ["health", "status"] {
        let out = setup.hookgate(command);
        assert_eq!(out.status.code(), Some(0), "hookgate {command}: {}{}", text(&out.stdout), text(&out.stderr));
    }
}

#[test]
fn with_a_token_a_cross_site_post_is_refused_too() {
    let setup = Setup::start("token_file = \"DIR/token\"");
    let token = bearer("Bearer", TOKEN);
    let evil = format!("{token}Origin: http://evil.example\r\nContent-Length: 0\r\n");
    assert_eq!(setup.ask("POST", "/reload", &evil).status, 403);
    // A reverse proxy that adds the token may pass its own name as Host.
    let proxied = ask(setup.admin, "GET", "/status.json", &format!("Host: admin.example.com\r\n{token}"));
    assert_eq!(proxied.status, 200);
    for command in ["health", "status", "reload"] {
        let out = setup.hookgate(command);
        assert_eq!(out.status.code(), Some(0), "hookgate {command}: {}{}", text(&out.stdout), text(&out.stderr));
    }
}

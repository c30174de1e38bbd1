//! Test harness: real upstream servers, the real `hookgate` binary, raw clients.
//!
//! Upstreams are small hyper servers on `127.0.0.1:0` that record every request
//! they get, so tests assert on what reached the upstream, not only on status
//! codes. The daemon is the compiled binary, started with a config written to a
//! temp file; its listening address is read from its startup log line.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query exactly as received.
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// False when the body broke off before its end (an aborted upload).
    pub complete: bool,
    pub version: http::Version,
}

/// A recording upstream. Paths with special behaviour:
/// - `/echo`: answers with the request body;
/// - `/etag`: `ETag: "v1"`, and 304 when `If-None-Match: "v1"` is sent;
/// - `/slow?ms=N`: waits N ms before answering;
/// - `/big?bytes=N`: streams N bytes of a repeating pattern;
/// - `/ws`: upgrades (101) and echoes bytes back;
/// - anything else: `200` with the upstream's name as the body.
#[derive(Clone)]
pub struct Upstream {
    pub name: &'static str,
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    pub async fn start(name: &'static str) -> Upstream {
        Upstream::start_with(name, None).await
    }

    /// An upstream behind TLS (HTTP/1.1 or HTTP/2, as the client's ALPN says).
    pub async fn start_tls(name: &'static str, tls: Arc<rustls::ServerConfig>) -> Upstream {
        Upstream::start_with(name, Some(tokio_rustls::TlsAcceptor::from(tls))).await
    }

    async fn start_with(name: &'static str, tls: Option<tokio_rustls::TlsAcceptor>) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = Upstream { name, addr, seen: Arc::default() };
        let server = upstream.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let server = server.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| server.clone().respond(req));
                    let auto = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                    match tls {
                        None => {
                            let _ = auto.serve_connection_with_upgrades(TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(stream).await else { return };
                            let _ = auto.serve_connection_with_upgrades(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        upstream
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    async fn respond(self, mut req: Request<Incoming>) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
        let target = req.uri().path_and_query().map_or(String::new(), |p| p.to_string());
        let query = parse_query(req.uri().query());
        let upgrade = req.uri().path() == "/ws";
        let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (parts, body) = req.into_parts();
        let collected = if upgrade { Ok(Bytes::new()) } else { body.collect().await.map(|b| b.to_bytes()) };
        let complete = collected.is_ok();
        let body = collected.unwrap_or_default();
        self.seen.lock().unwrap().push(Seen {
            method: parts.method.to_string(),
            target: target.clone(),
            headers: parts.headers.clone(),
            body: body.clone(),
            complete,
            version: parts.version,
        });
        let path = parts.uri.path();
        let response = match path {
            "/echo" => full(StatusCode::OK, body),
            "/etag" => {
                let fresh = parts.headers.get("if-none-match").is_some_and(|v| v == "\"v1\"");
                let mut r = if fresh {
                    full(StatusCode::NOT_MODIFIED, Bytes::new())
                } else {
                    full(StatusCode::OK, Bytes::from_static(b"config v1"))
                };
                r.headers_mut().insert("etag", "\"v1\"".parse().unwrap());
                r
            }
            "/slow" => {
                let ms = query.get("ms").and_then(|v| v.parse().ok()).unwrap_or(1000);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                full(StatusCode::OK, Bytes::from_static(b"slow done"))
            }
            "/big" => {
                let total: usize = query.get("bytes").and_then(|v| v.parse().ok()).unwrap_or(1 << 20);
                stream_pattern(total)
            }
            "/ws" => {
                let on_upgrade = on_upgrade.unwrap();
                tokio::spawn(async move {
                    if let Ok(upgraded) = on_upgrade.await {
                        let mut io = TokioIo::new(upgraded);
                        let mut buf = [0u8; 1024];
                        while let Ok(n) = io.read(&mut buf).await {
                            if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                });
                let mut r = Response::new(Full::new(Bytes::new()).boxed());
                *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                r.headers_mut().insert("connection", "upgrade".parse().unwrap());
                r.headers_mut().insert("upgrade", "websocket".parse().unwrap());
                r.headers_mut().insert("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".parse().unwrap());
                r
            }
            _ => {
                let mut r = full(StatusCode::OK, Bytes::from(self.name));
                r.headers_mut().insert("x-upstream", self.name.parse().unwrap());
                r.headers_mut().insert("connection", "keep-alive, x-hop".parse().unwrap());
                r.headers_mut().insert("x-hop", "must-not-reach-client".parse().unwrap());
                r.headers_mut().insert("keep-alive", "timeout=5".parse().unwrap());
                r
            }
        };
        Ok(response)
    }
}

fn full(status: StatusCode, body: Bytes) -> Response<BoxBody<Bytes, Infallible>> {
    let mut r = Response::new(Full::new(body).boxed());
    *r.status_mut() = status;
    r
}

/// The byte at offset `i` of a `/big` response.
pub fn pattern_byte(i: usize) -> u8 {
    (i % 251) as u8
}

fn stream_pattern(total: usize) -> Response<BoxBody<Bytes, Infallible>> {
    const CHUNK: usize = 16 * 1024;
    let chunks = (0..total.div_ceil(CHUNK)).map(move |c| {
        let start = c * CHUNK;
        let end = (start + CHUNK).min(total);
        let data: Vec<u8> = (start..end).map(pattern_byte).collect();
        Ok::<_, Infallible>(Frame::data(Bytes::from(data)))
    });
    let stream = futures_util::stream::iter(chunks);
    Response::new(BodyExt::boxed(StreamBody::new(stream)))
}

fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The real daemon, running as a child process.
pub struct Daemon {
    pub addr: SocketAddr,
    /// The admin listener, when the config has `[admin]`.
    pub admin: Option<SocketAddr>,
    pub config_path: std::path::PathBuf,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `hookgate run` with `config`; `{listen}` need not be set, it is
    /// prepended as `127.0.0.1:0` unless the config has a `[listen]` table.
    pub fn start(config: &str) -> Daemon {
        Daemon::start_with_env(config, &[])
    }

    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Daemon {
        Daemon::launch(config, |path| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_hookgate"));
            command.arg("run").arg("-c").arg(path).envs(env.iter().copied());
            command
        })
    }

    /// Starts the daemon with at most `limit` open file descriptors.
    pub fn start_with_fd_limit(config: &str, limit: u32) -> Daemon {
        Daemon::launch(config, |path| {
            let mut command = Command::new("sh");
            command
                .arg("-c")
                .arg(format!("ulimit -n {limit} && exec \"$0\" run -c \"$1\""))
                .arg(env!("CARGO_BIN_EXE_hookgate"))
                .arg(path);
            command
        })
    }

    fn launch(config: &str, command: impl FnOnce(&std::path::Path) -> Command) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookgate.toml");
        let full = if config.contains("[listen]") {
            config.to_string()
        } else {
            format!("[listen]\naddrs = [\"127.0.0.1:0\"]\n{config}")
        };
        std::fs::write(&path, full).unwrap();
        let mut command = command(&path);
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("start hookgate");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let ready = line.contains("hookgate ready");
                sink.lock().unwrap().push(line);
                if ready {
                    let _ = tx.send(());
                }
            }
        });
        let started = rx.recv_timeout(Duration::from_secs(20)).is_ok();
        let lines = logs.lock().unwrap().clone();
        let addr = lines.iter().find_map(|l| listening_addr(l));
        let Some(addr) = addr.filter(|_| started) else {
            panic!("hookgate did not start; logs:\n{}", lines.join("\n"));
        };
        let admin = lines.iter().filter(|l| l.contains("admin listening")).find_map(|l| line_addr(l));
        Daemon { addr, admin, config_path: path, child, logs, _dir: dir }
    }

    /// Replaces the config file (the daemon reads it on reload).
    pub fn rewrite_config(&self, config: &str) {
        std::fs::write(&self.config_path, config).unwrap();
    }

    /// Every proxy address the daemon has logged as listening, in order.
    pub fn listening_addrs(&self) -> Vec<SocketAddr> {
        self.logs().iter().filter_map(|l| listening_addr(l)).collect()
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Waits until a log line contains `needle`, up to `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.logs().into_iter().find(|l| l.contains(needle)) {
                return line;
            }
            assert!(Instant::now() < deadline, "no log line with {needle:?}; logs:\n{}", self.logs().join("\n"));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory of the daemon, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// CPU time (user + system) the daemon has used, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "hookgate did not exit; logs:\n{}", self.logs().join("\n"));
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listening_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("listening") || line.contains("admin listening") || line.contains("no longer listening") {
        return None;
    }
    line_addr(line)
}

fn line_addr(line: &str) -> Option<SocketAddr> {
    if let Some(start) = line.find("\"addr\":\"") {
        let rest = &line[start + 8..];
        return rest[..rest.find('"')?].parse().ok();
    }
    let start = line.find("addr=")? + 5;
    line[start..].split_whitespace().next()?.parse().ok()
}

/// A parsed HTTP/1.1 response read off a raw socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends raw bytes and reads one response (by Content-Length, chunked, or EOF).
pub fn raw(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    stream.write_all(request).unwrap();
    read_response(&mut stream).unwrap_or_else(|e| panic!("no response: {e}"))
}

/// Reads one response from `stream`.
pub fn read_response(stream: &mut TcpStream) -> std::io::Result<RawResponse> {
    let mut response = read_head(stream)?;
    let status = response.status;
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(response);
    }
    if let Some(len) = response.header("content-length") {
        let mut body = vec![0u8; len.parse().unwrap()];
        stream.read_exact(&mut body)?;
        response.body = body;
    } else if response.header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        response.body = read_chunked(stream)?;
    } else {
        stream.read_to_end(&mut response.body)?;
    }
    Ok(response)
}

/// Reads only a response head (for HEAD requests and interim responses).
pub fn read_head(stream: &mut TcpStream) -> std::io::Result<RawResponse> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before head"));
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok(RawResponse { status, head, body: Vec::new() })
}

fn read_chunked(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut reader = BufReader::new(stream);
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| std::io::Error::other(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            let mut end = String::new();
            while reader.read_line(&mut end)? > 2 {
                end.clear();
            }
            return Ok(body);
        }
        let mut chunk = vec![0u8; size + 2];
        reader.read_exact(&mut chunk)?;
        body.extend_from_slice(&chunk[..size]);
    }
}

/// Opens a connection from the local address `from` (any of 127.0.0.0/8).
pub fn connect_from(from: &str, addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    stream
}

/// Sends raw bytes from the local address `from` and reads one response.
pub fn raw_from(from: &str, addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = connect_from(from, addr);
    stream.write_all(request).unwrap();
    read_response(&mut stream).unwrap_or_else(|e| panic!("no response: {e}"))
}

/// A simple `GET` with `Connection: close`.
pub fn get(addr: SocketAddr, host: &str, target: &str) -> RawResponse {
    raw(addr, format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
}

/// Waits until `f` holds, up to `timeout`.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A config with `frontend` and `backend` upstreams and the webhook rule.
pub fn two_upstream_config(frontend: &Upstream, backend: &Upstream, extra: &str) -> String {
    format!(
        r#"
[upstreams.frontend]
url = "{}"
[upstreams.backend]
url = "{}"
{extra}
[[routes]]
name = "telegram-webhook"
path = "/api/v1/guest/telegram/webhook"
methods = ["POST"]
upstream = "backend"

[[routes]]
name = "payment-notify"
path_prefix = "/api/v1/guest/payment/notify/"
upstream = "backend"

[[routes]]
name = "ws"
path = "/ws"
upstream = "backend"

[[routes]]
name = "block-admin"
path_prefix = "/admin"
respond = {{ status = 403, body = "forbidden\n", headers = {{ "x-blocked" = "yes" }} }}

[default]
upstream = "frontend"
"#,
        frontend.url(),
        backend.url()
    )
}

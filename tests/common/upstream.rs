//! Recording upstream servers (plain or TLS) for the tests.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
/// - `/big?bytes=N[&chunk=M]`: streams N bytes of a repeating pattern, M bytes
///   (default 16 KiB) per body frame; with `&length=1`, one framed by Content-Length;
/// - `/ws`: upgrades (101) and echoes bytes back;
/// - `/reply...`: what the request's `x-reply-*` headers ask for (see `reply`);
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
        if path.starts_with("/reply") {
            return Ok(reply(&parts.headers).await);
        }
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
                let chunk: usize = query.get("chunk").and_then(|v| v.parse().ok()).unwrap_or(16 * 1024);
                if query.contains_key("length") {
                    full(StatusCode::OK, (0..total).map(pattern_byte).collect::<Vec<u8>>().into())
                } else {
                    stream_pattern(total, chunk.max(1))
                }
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

/// The answer a `/reply...` request's headers ask for: `x-reply-status`
/// (200), `x-reply-type` (the Content-Type; none without it), `x-reply-body`,
/// or `x-reply-bytes: N` bytes of `x` instead; `x-reply-chunked` to send it in
/// 1,000-byte frames without a length; `x-reply-delay-ms` to wait first.
async fn reply(headers: &HeaderMap) -> Response<BoxBody<Bytes, Infallible>> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = get("x-reply-delay-ms").and_then(|v| v.parse().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let body = match get("x-reply-bytes").and_then(|n| n.parse().ok()) {
        Some(n) => Bytes::from(vec![b'x'; n]),
        None => Bytes::copy_from_slice(get("x-reply-body").unwrap_or_default().as_bytes()),
    };
    let status = StatusCode::from_u16(get("x-reply-status").map_or(200, |s| s.parse().unwrap())).unwrap();
    let mut response = if get("x-reply-chunked").is_some() {
        let frames: Vec<_> =
            body.chunks(1000).map(|c| Ok::<_, Infallible>(Frame::data(Bytes::copy_from_slice(c)))).collect();
        let mut r = Response::new(BodyExt::boxed(StreamBody::new(futures_util::stream::iter(frames))));
        *r.status_mut() = status;
        r
    } else {
        full(status, body)
    };
    if let Some(content_type) = get("x-reply-type") {
        response.headers_mut().insert("content-type", content_type.parse().unwrap());
    }
    response
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

fn stream_pattern(total: usize, chunk: usize) -> Response<BoxBody<Bytes, Infallible>> {
    let chunks = (0..total.div_ceil(chunk)).map(move |c| {
        let start = c * chunk;
        let end = (start + chunk).min(total);
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

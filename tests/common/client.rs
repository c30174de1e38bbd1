//! Raw HTTP/1.1 clients: exact bytes out, a parsed response back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A parsed HTTP/1.1 response read off a raw socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers(name).next()
    }

    /// Every value of header `name`, in order.
    pub fn headers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = String> + 'a {
        self.head.lines().skip(1).filter_map(move |line| {
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
        response.body = read_chunked(&mut BufReader::new(stream))?;
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

/// Reads a chunked body (sizes, data, trailers) to its last chunk.
pub fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
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

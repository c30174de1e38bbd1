//! The HTTP/1.1 wire format hookgate writes: status lines, header lines,
//! whole request and response heads, and body framing. Plain functions over
//! byte buffers; no socket, timer or policy here (`forward`, the body copies and the
//! answer path decide what to write, this says how it is spelled).

use http::StatusCode;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;

use super::chunked::write_size;
use super::date;
use super::head::{Framing, ResponseHead};
use crate::proxy::headers::{self, may_trail, write_field};

/// How the client connection goes on after a response.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    pub keep_alive: bool,
    /// The client speaks HTTP/1.0, which keeps a connection only when told.
    pub http10: bool,
}

/// A response head from a header map, with framing and connection headers of
/// hookgate's own: the map's are replaced, except a `Content-Length` on a
/// bodiless answer (HEAD, 204, 304), which describes the resource.
pub fn write_map_head(out: &mut Vec<u8>, status: StatusCode, headers: &HeaderMap, framing: Framing, conn: Connection) {
    write_status(out, status.as_u16(), status.canonical_reason().unwrap_or(""));
    for (name, value) in headers {
        let own = name == header::CONNECTION
            || name == header::TRANSFER_ENCODING
            || (name == header::CONTENT_LENGTH && framing != Framing::Empty);
        if !own {
            write_field(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if !headers.contains_key(header::DATE) {
        date::write(out);
    }
    match framing {
        Framing::Length(n) => write_field(out, b"content-length", itoa::Buffer::new().format(n).as_bytes()),
        Framing::Chunked => write_field(out, b"transfer-encoding", b"chunked"),
        Framing::Empty | Framing::UntilClose => {}
    }
    if !conn.keep_alive {
        write_field(out, b"connection", b"close");
    } else if conn.http10 {
        write_field(out, b"connection", b"keep-alive");
    }
    out.extend_from_slice(b"\r\n");
}

pub fn write_status(out: &mut Vec<u8>, status: u16, reason: &str) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// How a response framed as `upstream` is framed for the client: lengths
/// stay, and a body of unknown length is chunked again (HTTP/1.0 clients,
/// which cannot read chunks, get it until the connection closes).
pub fn client_framing(upstream: Framing, http10: bool) -> Framing {
    match upstream {
        Framing::Empty => Framing::Empty,
        Framing::Length(n) => Framing::Length(n),
        Framing::Chunked | Framing::UntilClose if http10 => Framing::UntilClose,
        Framing::Chunked | Framing::UntilClose => Framing::Chunked,
    }
}

/// The request line and headers for the upstream, in one buffer, with
/// hookgate's own (`added`, kept beside the head: see `headers::Added`)
/// after the client's.
pub fn write_request_head(out: &mut Vec<u8>, parts: &Parts, added: &headers::Added, framing: Framing) {
    headers::write_request_line(out, parts);
    let mut length_written = false;
    for (name, value) in &parts.headers {
        // hookgate answers `Expect` itself; the framing header is its own.
        if name == http::header::EXPECT {
            continue;
        }
        if name == http::header::CONTENT_LENGTH {
            if framing == Framing::Chunked {
                continue;
            }
            length_written = true;
        }
        write_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    // A body is never sent without its framing, whatever took the header out.
    if let (Framing::Length(n), false) = (framing, length_written) {
        write_field(out, b"content-length", itoa::Buffer::new().format(n).as_bytes());
    }
    for (name, value) in added.pairs() {
        write_field(out, name.as_bytes(), value);
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes the upstream's response head for the client: hop-by-hop headers
/// and those named in `Connection` removed, `Via` added, framing and
/// connection headers of hookgate's own.
pub fn write_response_head(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &ResponseHead,
    framing: Framing,
    keep_alive: bool,
    http10: bool,
) {
    let reason = std::str::from_utf8(&buf[head.reason.clone()]).unwrap_or("");
    write_status(out, head.status, reason);
    if !write_end_to_end_headers(out, buf, head, matches!(framing, Framing::Chunked | Framing::UntilClose)) {
        date::write(out);
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Which of an upstream response's header lines go on to the client: not
/// hop-by-hop ones (RFC 9110 §7.6.1), nor those its `Connection` names, nor
/// its `Content-Length` when hookgate frames the body otherwise or the
/// status is 204.
pub struct EndToEnd<'a> {
    named: Vec<&'a [u8]>,
    drop_length: bool,
}

impl<'a> EndToEnd<'a> {
    pub fn new(buf: &'a [u8], head: &ResponseHead, drop_length: bool) -> Self {
        // `keep-alive` names a header that is dropped anyway, so the usual
        // `Connection: keep-alive` needs no list (parsing noted whether it does).
        let named = if head.names_headers {
            head.headers
                .iter()
                .filter(|(n, _)| buf[n.clone()].eq_ignore_ascii_case(b"connection"))
                .flat_map(|(_, v)| buf[v.clone()].split(|&b| b == b','))
                .map(<[u8]>::trim_ascii)
                .filter(|token| !token.eq_ignore_ascii_case(b"keep-alive") && headers::is_removable_token(token))
                .collect()
        } else {
            Vec::new()
        };
        // A 204 never has a Content-Length (RFC 9110 §8.6), whatever the upstream sent.
        EndToEnd { named, drop_length: drop_length || head.status == 204 }
    }

    /// Whether the header `name` goes on.
    pub fn keeps(&self, name: &[u8]) -> bool {
        !(headers::is_hop_by_hop(name)
            || self.named.iter().any(|h| name.eq_ignore_ascii_case(h))
            || (self.drop_length && headers::token_is(name, b"content-length")))
    }
}

/// The upstream's headers that go on (`EndToEnd`), plus `Via`. Returns
/// whether the upstream sent a `Date`.
pub fn write_end_to_end_headers(out: &mut Vec<u8>, buf: &[u8], head: &ResponseHead, drop_length: bool) -> bool {
    let passing = EndToEnd::new(buf, head, drop_length);
    let mut dated = false;
    // Kept lines that follow each other in `buf` are copied in one piece, as
    // the upstream wrote them (the status line comes first, so no header
    // starts at 0 and the empty run joins none).
    let mut run = 0..0;
    for (name_at, value_at) in &head.headers {
        let name = &buf[name_at.clone()];
        if !passing.keeps(name) {
            continue;
        }
        dated |= headers::token_is(name, b"date");
        let line_end = value_at.end + 2;
        // Copied whole only when the value ends its line in CRLF; a bare LF,
        // trailing blanks or an empty value (whose range is 0..0) are written anew.
        let whole = !value_at.is_empty() && buf.get(value_at.end..line_end) == Some(b"\r\n");
        if whole && name_at.start == run.end {
            run.end = line_end;
            continue;
        }
        out.extend_from_slice(&buf[run]);
        run = 0..0;
        if whole {
            run = name_at.start..line_end;
        } else {
            write_field(out, name, &buf[value_at.clone()]);
        }
    }
    out.extend_from_slice(&buf[run]);
    out.extend_from_slice(b"via: 1.1 hookgate\r\n");
    dated
}

/// Appends `data` to `out` framed as `to` (a chunk, or as is), and the last
/// chunk with its `trailers` (whole lines, each ending in CRLF) when the body
/// is `done`. Returns where the body bytes sit in `out`.
pub fn frame(out: &mut Vec<u8>, data: &[u8], to: Framing, done: bool, trailers: &[u8]) -> std::ops::Range<usize> {
    let chunked = to == Framing::Chunked;
    if chunked && !data.is_empty() {
        write_size(out, data.len());
    }
    let range = out.len()..out.len() + data.len();
    out.extend_from_slice(data);
    if chunked && !data.is_empty() {
        out.extend_from_slice(b"\r\n");
    }
    if done && chunked {
        out.extend_from_slice(b"0\r\n");
        out.extend_from_slice(trailers);
        out.extend_from_slice(b"\r\n");
    }
    range
}

/// Trailer fields as lines for the last chunk, less those that may not trail.
pub fn write_trailers(out: &mut Vec<u8>, fields: &HeaderMap) {
    for (name, value) in fields {
        if may_trail(name.as_str().as_bytes()) {
            write_field(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
}

/// The fields of a chunked body's trailer lines (each ending in CRLF, checked
/// by its decoder); a line that is not a valid field is skipped.
pub fn trailer_fields(lines: &[u8]) -> impl Iterator<Item = (HeaderName, HeaderValue)> + '_ {
    lines.split(|&b| b == b'\n').map(<[u8]>::trim_ascii).filter_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        let name = HeaderName::from_bytes(line[..colon].trim_ascii()).ok()?;
        Some((name, HeaderValue::from_bytes(line[colon + 1..].trim_ascii()).ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::head::parse_response;

    fn end_to_end(head: &[u8], drop_length: bool) -> (String, bool) {
        let parsed = parse_response(head, false, 64 * 1024).unwrap().unwrap();
        let mut out = Vec::new();
        let dated = write_end_to_end_headers(&mut out, head, &parsed, drop_length);
        (String::from_utf8(out).unwrap(), dated)
    }

    #[test]
    fn kept_lines_are_copied_as_sent_and_the_rest_written_anew() {
        let head = b"HTTP/1.1 200 OK\r\nServer: up\r\nX-Tight:v\r\nConnection: keep-alive, X-Gone\r\nKeep-Alive: timeout=5\r\n\
X-Gone: secret\r\nDate: Mon, 07 Dec 2026 10:00:00 GMT\r\nX-Blank:   \r\nX-Trailing: t \r\nX-Bare: lf\nContent-Length: 2\r\n\r\nok";
        let (out, dated) = end_to_end(head, false);
        let want = "Server: up\r\nX-Tight:v\r\nDate: Mon, 07 Dec 2026 10:00:00 GMT\r\nX-Blank: \r\nX-Trailing: t\r\n\
X-Bare: lf\r\nContent-Length: 2\r\nvia: 1.1 hookgate\r\n";
        assert_eq!(out, want);
        assert!(dated);
        // Content-Length dropped from the middle of a run splits it in two.
        let (out, dated) = end_to_end(b"HTTP/1.1 200 OK\r\nA: 1\r\nContent-Length: 2\r\nB: 2\r\n\r\nok", true);
        assert_eq!(out, "A: 1\r\nB: 2\r\nvia: 1.1 hookgate\r\n");
        assert!(!dated);
    }
}

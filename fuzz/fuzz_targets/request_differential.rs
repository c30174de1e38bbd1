//! The engine's request parser against a reference: httparse for the head's
//! syntax, the `http` crate for the target and values, and the RFC 9112
//! framing rules written out here independently (plus hookgate's documented
//! stricter ones: CL with TE, repeated CL, and any coding but a single
//! `chunked` are refused; HTTP/1.0 has no chunked). Both must agree on
//! accept/reject, on where the head ends, and on the framing, and the head
//! hookgate sends upstream must carry the reference's framing too: in the
//! reference, as in RFC 9112, `Connection` never changes a message's framing.
#![no_main]

use bytes::BytesMut;
use hookgate::internals::{Framing, HeadError, HeadLimits, parse_request, upstream_request_head};
use libfuzzer_sys::fuzz_target;

const LIMITS: HeadLimits = HeadLimits { max_header_bytes: 65536, max_uri_bytes: 65536, max_headers: 100 };

#[derive(Debug, PartialEq)]
enum Verdict {
    /// Past a limit; only hookgate has limits, so nothing to compare.
    Limit,
    Partial,
    Reject,
    Accept {
        len: usize,
        framing: Framing,
    },
}

/// RFC 9112 §2.2: every line ends in CRLF; a bare CR or LF is refused.
fn crlf_only(head: &[u8]) -> bool {
    let mut i = 0;
    while i < head.len() {
        match head[i] {
            b'\r' if head.get(i + 1) == Some(&b'\n') => i += 2,
            b'\r' | b'\n' => return false,
            _ => i += 1,
        }
    }
    true
}

/// OWS around a token list (RFC 9110 §5.6.1), empty elements dropped.
fn list(values: &[&[u8]]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(|&b| b == b','))
        .map(|e| String::from_utf8_lossy(e).trim_matches([' ', '\t']).to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .collect()
}

fn reference(data: &[u8]) -> Verdict {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(data) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Verdict::Partial,
        // A header count is a limit, not a syntax rule: hookgate's own (max_headers).
        Err(httparse::Error::TooManyHeaders) => return Verdict::Limit,
        Err(_) => return Verdict::Reject,
    };
    if !crlf_only(&data[..len]) {
        return Verdict::Reject;
    }
    let target = req.path.unwrap_or("");
    if http::Method::from_bytes(req.method.unwrap_or("").as_bytes()).is_err() || target.parse::<http::Uri>().is_err() {
        return Verdict::Reject;
    }
    // RFC 9112 §3.2: a request target has no fragment.
    if target.contains('#') {
        return Verdict::Reject;
    }
    let (mut te, mut cl) = (Vec::new(), Vec::new());
    for h in req.headers.iter() {
        if http::HeaderName::from_bytes(h.name.as_bytes()).is_err() || http::HeaderValue::from_bytes(h.value).is_err() {
            return Verdict::Reject;
        }
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            te.push(h.value);
        } else if h.name.eq_ignore_ascii_case("content-length") {
            cl.push(h.value);
        }
    }
    let http11 = req.version == Some(1);
    let framing = match (te.is_empty(), cl.as_slice()) {
        (false, [_, ..]) => return Verdict::Reject,
        (false, []) => {
            let codings = list(&te);
            if !http11 || te.len() != 1 || codings != ["chunked"] {
                return Verdict::Reject;
            }
            Framing::Chunked
        }
        (true, []) => Framing::Empty,
        (true, [value]) => {
            let digits = String::from_utf8_lossy(value).trim_matches([' ', '\t']).to_string();
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Verdict::Reject;
            }
            match digits.parse::<u64>() {
                Ok(0) => Framing::Empty,
                Ok(n) => Framing::Length(n),
                Err(_) => return Verdict::Reject,
            }
        }
        (true, [_, _, ..]) => return Verdict::Reject,
    };
    Verdict::Accept { len, framing }
}

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let mut upstream = None;
    let ours = match parse_request(&mut buf, LIMITS) {
        Ok(Some(head)) => {
            upstream = upstream_request_head(&head);
            Verdict::Accept { len: data.len() - buf.len(), framing: head.framing }
        }
        Ok(None) => Verdict::Partial,
        // Limits are hookgate's own; the reference has none.
        Err(HeadError::TooLarge | HeadError::UriTooLong) => return,
        Err(_) => Verdict::Reject,
    };
    let reference = reference(data);
    if reference == Verdict::Limit {
        return;
    }
    assert_eq!(ours, reference, "disagreement on {:?}", String::from_utf8_lossy(data));
    if let (Some(sent), Verdict::Accept { framing, .. }) = (upstream, reference) {
        let mut sent_buf = BytesMut::from(&sent[..]);
        let roomy = HeadLimits { max_headers: LIMITS.max_headers + 8, ..LIMITS };
        let upstream = parse_request(&mut sent_buf, roomy).ok().flatten().map(|head| head.framing);
        assert_eq!(upstream, Some(framing), "the upstream reads {:?}", String::from_utf8_lossy(&sent));
    }
});

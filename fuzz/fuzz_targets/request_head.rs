//! The client's request head: never a panic; a refusal maps to a 4xx; an
//! accepted head re-serialises to one that parses back the same; and the head
//! hookgate sends upstream for it is framed as the client framed it, whatever
//! its `Connection` header names (a `Connection: Content-Length` once sent the
//! body unframed, to be read upstream as a request of its own). What the
//! parser noted for planning (`HeadFacts`) is what the map it built says.
#![no_main]

use bytes::BytesMut;
use hookgate::internals::{HeadError, HeadFacts, HeadLimits, RequestHead, parse_request, upstream_request_head};
use libfuzzer_sys::fuzz_target;

const LIMITS: HeadLimits = HeadLimits { max_header_bytes: 8192, max_uri_bytes: 2048, max_headers: 64 };
/// Re-serialising may add a space after each colon, so the second parse gets
/// room; the upstream's head also has up to four headers hookgate adds.
const ROOMY: HeadLimits = HeadLimits { max_header_bytes: 16384, max_uri_bytes: 2048, max_headers: 72 };

fn serialise(head: &RequestHead) -> Vec<u8> {
    let p = &head.parts;
    let version = if p.version == http::Version::HTTP_10 { "HTTP/1.0" } else { "HTTP/1.1" };
    let mut out = format!("{} {} {version}\r\n", p.method, p.uri).into_bytes();
    for (name, value) in &p.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn status(error: HeadError) -> u16 {
    match error {
        HeadError::UriTooLong => 414,
        HeadError::TooLarge | HeadError::TooManyFields => 431,
        HeadError::FramingConflict | HeadError::Malformed(_) | HeadError::CleartextHttp2 => 400,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    match parse_request(&mut buf, LIMITS) {
        Ok(Some(head)) => {
            assert!(buf.len() < data.len(), "a head was taken off the front");
            let again = serialise(&head);
            let mut again_buf = BytesMut::from(&again[..]);
            let back = parse_request(&mut again_buf, ROOMY)
                .unwrap_or_else(|e| {
                    panic!("accepted head does not parse back: {e}: {:?}", String::from_utf8_lossy(&again))
                })
                .expect("a re-serialised head is complete");
            assert!(again_buf.is_empty());
            assert_eq!(back.parts.method, head.parts.method);
            assert_eq!(back.parts.uri, head.parts.uri);
            assert_eq!(back.parts.version, head.parts.version);
            assert_eq!(back.parts.headers, head.parts.headers);
            assert_eq!(back.framing, head.framing);
            assert_eq!(back.keep_alive, head.keep_alive);
            assert_upstream_framing(&head);
            assert_eq!(head.facts, HeadFacts::from_map(&head.parts.headers, head.parts.version), "noted facts differ from the map's");
        }
        Ok(None) => assert_eq!(buf.len(), data.len(), "nothing is taken from an unfinished head"),
        Err(error) => assert!((400..500).contains(&status(error))),
    }
});

/// The upstream parses hookgate's head for `head` with the client's framing.
fn assert_upstream_framing(head: &RequestHead) {
    let Some(sent) = upstream_request_head(head) else { return };
    let mut sent_buf = BytesMut::from(&sent[..]);
    let upstream = parse_request(&mut sent_buf, ROOMY)
        .unwrap_or_else(|e| panic!("the upstream's head does not parse: {e}: {:?}", String::from_utf8_lossy(&sent)))
        .expect("the upstream's head is complete");
    assert!(sent_buf.is_empty());
    assert_eq!(upstream.framing, head.framing, "framing lost on the way up: {:?}", String::from_utf8_lossy(&sent));
    assert_eq!(upstream.parts.headers.get(http::header::HOST), head.parts.headers.get(http::header::HOST));
}

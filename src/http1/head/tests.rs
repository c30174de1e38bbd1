//! Table-driven framing cases for request and response heads, both directions.

use super::facts::parse_length;
use super::*;
use crate::proxy::headers::token_is as is;

/// Found by the fuzzer: httparse gives a non-UTF-8 reason as a static `""`.
#[test]
fn empty_parts_outside_the_buffer_get_empty_ranges() {
    for raw in [&b"HTTP/1.1 200 \xd8\xb0\r\nX:\r\nContent-Length: 1\r\n\r\nok"[..], b"HTTP/1.1 200\r\nX:\r\n\r\n"] {
        let head = parse_response(raw, false, 1024).unwrap().unwrap();
        assert!(head.reason.end <= head.len);
        assert_eq!(head.headers[0].1, 0..0, "empty value");
    }
}

/// Found by the differential fuzzer: a length with leading zeros is still a length.
#[test]
fn content_length_is_digits_that_fit_in_64_bits() {
    assert_eq!(parse_length(b"0004306466688538014150"), Some(4_306_466_688_538_014_150));
    assert_eq!(parse_length(b" 18446744073709551615 "), Some(u64::MAX));
    for bad in [&b"18446744073709551616"[..], b"+5", b"-1", b"5 5", b"0x10", b"", b" "] {
        assert_eq!(parse_length(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
}

/// Found by the differential fuzzer: empty list elements are not codings (RFC 9110 §5.6.1).
#[test]
fn transfer_encoding_ignores_empty_list_elements() {
    for value in [",chunked", "chunked ,", " , Chunked"] {
        let head =
            parse(&format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {value}\r\n\r\n")).unwrap().unwrap();
        assert_eq!(head.framing, Framing::Chunked, "{value:?}");
        // HTTP/2's facts, read from the map, agree (the fuzz target request_head found them apart).
        let from_map = crate::proxy::HeadFacts::from_map(&head.parts.headers, head.parts.version);
        assert_eq!(head.facts, from_map, "{value:?}");
    }
    for value in ["chunked, chunked", "gzip, chunked", ","] {
        let head = parse(&format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {value}\r\n\r\n"));
        assert!(head.is_err(), "{value:?}");
    }
}

const LIMITS: HeadLimits = HeadLimits { max_header_bytes: 1024, max_uri_bytes: 256, max_headers: 8 };

fn parse(head: &str) -> Result<Option<RequestHead>, HeadError> {
    parse_request(&mut BytesMut::from(head.as_bytes()), LIMITS)
}

#[test]
fn request_framing_follows_rfc_9112() {
    let cases: &[(&str, Framing)] = &[
        ("GET / HTTP/1.1\r\nHost: h\r\n\r\n", Framing::Empty),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n", Framing::Length(5)),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", Framing::Empty),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", Framing::Chunked),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED \r\n\r\n", Framing::Chunked),
    ];
    for (head, framing) in cases {
        assert_eq!(parse(head).unwrap().unwrap().framing, *framing, "{head:?}");
    }
}

#[test]
fn ambiguous_or_malformed_heads_are_refused() {
    let cases: &[(&str, HeadError)] = &[
        ("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", HeadError::FramingConflict),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", HeadError::FramingConflict),
        ("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", HeadError::Malformed("")),
        ("POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", HeadError::Malformed("")),
        ("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", HeadError::Malformed("")),
        ("POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", HeadError::Malformed("")),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HeadError::Malformed("")),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            HeadError::Malformed(""),
        ),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", HeadError::Malformed("")),
        ("GET / HTTP/1.1\nHost: h\r\n\r\n", HeadError::Malformed("")),
        ("GET / HTTP/1.1\r\nHost: h\n\r\n", HeadError::Malformed("")),
        ("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", HeadError::Malformed("")),
        ("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", HeadError::Malformed("")),
        ("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", HeadError::Malformed("")),
        ("GET / HTTP/1.1\r\nBad Name: v\r\n\r\n", HeadError::Malformed("")),
        ("GET / HTTP/2.0\r\nHost: h\r\n\r\n", HeadError::Malformed("")),
        ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HeadError::CleartextHttp2),
    ];
    for (head, want) in cases {
        let got = parse(head).expect_err(head);
        let same = std::mem::discriminant(&got) == std::mem::discriminant(want);
        assert!(same, "{head:?}: got {got:?}, want {want:?}");
    }
}

#[test]
fn limits_give_414_and_431_even_before_the_head_ends() {
    let long = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(300));
    assert_eq!(parse(&long).unwrap_err(), HeadError::UriTooLong);
    let endless = format!("GET /{}", "a".repeat(400));
    assert_eq!(parse(&endless).unwrap_err(), HeadError::UriTooLong);
    let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "b".repeat(1100));
    assert_eq!(parse(&big).unwrap_err(), HeadError::TooLarge);
    let many: String = (0..9).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(parse(&format!("GET / HTTP/1.1\r\n{many}\r\n")).unwrap_err(), HeadError::TooManyFields);
    assert!(parse("GET / HTTP/1.1\r\nHost: h\r\n").unwrap().is_none(), "partial head within limits");
}

#[test]
fn keep_alive_and_expect() {
    let head = |s: &str| parse(s).unwrap().unwrap();
    assert!(head("GET / HTTP/1.1\r\n\r\n").keep_alive);
    assert!(!head("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
    assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
    assert!(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
    assert!(head("PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n").expects_continue);
}

#[test]
fn response_framing_and_reuse() {
    let parse = |s: &str, head: bool| parse_response(s.as_bytes(), head, 4096).unwrap().unwrap();
    let r = parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", false);
    assert_eq!((r.status, r.framing, r.close, r.len), (200, Framing::Length(3), false, 38));
    assert_eq!(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false).framing, Framing::Chunked);
    assert_eq!(parse("HTTP/1.1 200 OK\r\n\r\n", false).framing, Framing::UntilClose);
    assert!(parse("HTTP/1.1 200 OK\r\n\r\n", false).close);
    assert_eq!(parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true).framing, Framing::Empty);
    assert_eq!(parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n", false).framing, Framing::Empty);
    assert!(parse("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false).close);
    let bad = ["HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "garbage\r\n\r\n"];
    for head in bad {
        assert!(parse_response(head.as_bytes(), false, 4096).is_err(), "{head:?}");
    }
}

#[test]
fn an_upstreams_keep_alive_timeout_is_read() {
    let hint = |header: &str| {
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n{header}\r\n\r\n");
        parse_response(head.as_bytes(), false, 4096).unwrap().unwrap().idle_hint().map(|d| d.as_secs())
    };
    assert_eq!(hint("Keep-Alive: timeout=5"), Some(5));
    assert_eq!(hint("keep-alive: max=100, TIMEOUT=7"), Some(7));
    assert_eq!(hint("Keep-Alive: timeout=5, max=1000"), Some(5));
    assert_eq!(hint("Keep-Alive: max=100"), None);
    assert_eq!(hint("Keep-Alive: timeout=soon"), None);
    assert_eq!(hint("Keep-Alive: timeout=-1"), None);
    assert_eq!(hint("X-Other: timeout=5"), None);
}

/// Found by the `response_head` fuzz target: an upstream head of 254 lines
/// became a client head of 257, which hookgate's own parser (256 slots)
/// refuses. The engine forwards at most `RESPONSE_FIELDS` lines, and the
/// most it then writes still parses.
#[test]
fn a_forwarded_response_head_leaves_room_for_the_fields_hookgate_adds() {
    let head = |lines: usize| format!("HTTP/1.1 200 OK\r\n{}Content-Length: 0\r\n\r\n", "X-A: b\r\n".repeat(lines - 1));
    assert!(parse_response(head(RESPONSE_FIELDS + 4).as_bytes(), false, 1 << 20).unwrap().is_some());
}

/// Found by a probe: a head over the limit that arrived whole in one read was
/// passed on; only one still arriving was refused.
#[test]
fn a_response_head_over_the_limit_is_refused_whole_or_in_pieces() {
    let head = format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 2\r\n\r\nok", "a".repeat(5000));
    assert!(matches!(parse_response(head.as_bytes(), false, 4096), Err(ResponseHeadError::TooLarge)));
    assert!(matches!(parse_response(&head.as_bytes()[..4500], false, 4096), Err(ResponseHeadError::TooLarge)));
    assert!(parse_response(head.as_bytes(), false, 8192).unwrap().is_some());
}

/// The line-ending check (which looks only at the bytes a vectorised search
/// finds) agrees with the plain rule, each LF after a CR and each CR before an
/// LF or last, on every head of up to 8 bytes of CR, LF and one other byte.
#[test]
fn the_line_ending_check_agrees_with_the_rule_byte_by_byte() {
    let rule = |head: &[u8]| {
        head.iter().enumerate().all(|(i, &b)| match b {
            b'\n' => i > 0 && head[i - 1] == b'\r',
            b'\r' => head.get(i + 1).is_none_or(|&next| next == b'\n'),
            _ => true,
        })
    };
    for len in 0..=8u32 {
        for mut code in 0..3usize.pow(len) {
            let head: Vec<u8> = (0..len)
                .map(|_| {
                    let byte = [b'\r', b'\n', b'a'][code % 3];
                    code /= 3;
                    byte
                })
                .collect();
            assert_eq!(check_line_endings(&head).is_ok(), rule(&head), "{:?}", String::from_utf8_lossy(&head));
        }
    }
}

#[test]
fn the_facts_noted_for_planning_are_what_the_map_says() {
    let heads = [
        "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.1\r\nHOST: a\r\nhost: b\r\nhost: c\r\n\r\n",
        "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        "GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 007\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
    ];
    for head in heads {
        let parsed = parse(head).unwrap().unwrap();
        assert_eq!(parsed.facts, HeadFacts::from_map(&parsed.parts.headers, parsed.parts.version), "{head:?}");
    }
    assert!(parse(heads[3]).unwrap().unwrap().facts.upgrade && !parse(heads[4]).unwrap().unwrap().facts.upgrade);
    let three = parse(heads[2]).unwrap().unwrap().facts;
    assert_eq!((three.hosts, three.host), (2, None), "counted up to two, and no one value");
}

#[test]
fn header_names_match_in_any_case_and_only_their_own_bytes() {
    assert!(is(b"Content-Length", b"content-length") && is(b"HOST", b"host") && is(b"keep-alive", b"keep-alive"));
    for other in [&b"Content_Length"[..], b"content-lengths", b"content-lengt", b"Kontent-Length", b"hosT~"] {
        assert!(!is(other, b"content-length") && !is(other, b"host"), "{:?}", String::from_utf8_lossy(other));
    }
}

#[test]
fn a_refused_heads_request_line_gives_its_method_and_path_without_the_query() {
    let line = request_line(b"POST /hook?access_token=secret HTTP/1.1\r\nBad Name: v\r\n\r\n", 64);
    let version = Some(Version::HTTP_11);
    assert_eq!(line, Some(RequestLine { method: Method::POST, path: "/hook".to_string(), version }));
    let unknown_version = RequestLine { method: Method::GET, path: "/x".to_string(), version: None };
    assert_eq!(request_line(b"GET /x HTTP/9.9\r\n\r\n", 64), Some(unknown_version));
    assert_eq!(request_line(b"GET /far-too-long HTTP/1.1\r\n\r\n", 8), None, "over max_uri_bytes");
    assert_eq!(request_line(b"G\x01T / HTTP/1.1\r\n\r\n", 64), None);
    assert_eq!(request_line(b"GET /unfinish", 64), None);
}

//! `body::copy_response` and the head `wire` writes for it, the response
//! direction: an upstream's response (its head and the body bytes read with
//! it, then more from a loopback socket) relayed to a client whose every
//! received byte is asserted. What must hold, as README's "Forwarding" and
//! status-code sections say: lengths stay; chunked is decoded and framed
//! again with its trailers; a body that ends at the upstream's close reaches
//! HTTP/1.1 clients chunked and HTTP/1.0 clients until close; HEAD, 204 and
//! 304 answers are heads only; bytes beyond a response are never taken for
//! its body; a body broken in the bytes read with the head becomes hookgate's
//! own 502; and a body that fails after its head went out (a close, a reset,
//! broken chunks, `response_timeout`) is cut, never ended as if complete,
//! and logged `aborted=upstream` with why: those are in `response_faults.rs`.

use super::super::head::Framing;
use super::super::wire::client_framing;
use super::relay::*;

#[test]
fn client_framing_keeps_lengths_and_chunks_the_rest_for_http11() {
    let table = [
        (Framing::Empty, false, Framing::Empty),
        (Framing::Empty, true, Framing::Empty),
        (Framing::Length(7), false, Framing::Length(7)),
        (Framing::Length(7), true, Framing::Length(7)),
        (Framing::Chunked, false, Framing::Chunked),
        (Framing::Chunked, true, Framing::UntilClose),
        (Framing::UntilClose, false, Framing::Chunked),
        (Framing::UntilClose, true, Framing::UntilClose),
    ];
    for (upstream, http10, want) in table {
        assert_eq!(client_framing(upstream, http10), want, "{upstream:?}, http10 {http10}");
    }
}

#[tokio::test]
async fn a_length_body_passes_as_it_came() {
    // Part with the head, the rest later; no Date from the upstream, so hookgate adds one.
    let upstream = Upstream {
        with_head: b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello",
        later: b" world",
        then: Then::Holds,
    };
    let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
    let want = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: text/plain\r\nvia: 1.1 hookgate\r\n\
                date: <now>\r\n\r\nhello world";
    assert_eq!(relayed, whole(want, 11, true));
}

#[tokio::test]
async fn bytes_beyond_a_length_body_are_never_taken_for_it() {
    let with_head = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n\r\n");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b"", then: Then::Holds };
    let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
    let want = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 5\r\nvia: 1.1 hookgate\r\n\r\nhello");
    assert_eq!(relayed, Relayed { unread: b"HTTP/1.1 200 OK\r\n\r\n".to_vec(), ..whole(&want, 5, true) });
}

#[tokio::test]
async fn a_long_length_body_is_copied_when_the_client_is_not_a_tcp_socket() {
    // Past splice::MIN_BODY, but splicing needs both ends to be plain TCP.
    let body: Vec<u8> = (0..300 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let head = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: {}\r\n\r\n", body.len());
    let with_head = [head.as_bytes(), &body[..1000]].concat();
    let upstream = Upstream { with_head: &with_head, later: &body[1000..], then: Then::Holds };
    let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
    let head_out = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: {}\r\nvia: 1.1 hookgate\r\n\r\n", body.len());
    let want = whole(&(head_out + std::str::from_utf8(&body).unwrap()), body.len() as u64, true);
    assert!(relayed == want, "received {} bytes, line {:?}", relayed.received.len(), relayed.line);
}

#[tokio::test]
async fn chunked_is_framed_again_with_its_trailers_however_it_is_split() {
    // The body split at every byte between what came with the head and what
    // came later: each part's decoded bytes go out as one chunk of
    // hookgate's (none for a part with no data), extensions dropped, the
    // trailers after the last chunk.
    let (hello, world) = (CHUNKED_BODY.find("hello").unwrap(), CHUNKED_BODY.find(" world").unwrap());
    let is_data = |i: &usize| (hello..hello + 5).contains(i) || (world..world + 6).contains(i);
    let decoded = |bytes: std::ops::Range<usize>| -> String {
        bytes.filter(is_data).map(|i| char::from(CHUNKED_BODY.as_bytes()[i])).collect()
    };
    let chunk = |data: String| if data.is_empty() { data } else { format!("{:x}\r\n{data}\r\n", data.len()) };
    for at in 0..=CHUNKED_BODY.len() {
        let (early, late) = CHUNKED_BODY.split_at(at);
        let with_head = format!("{CHUNKED_HEAD}{early}");
        let upstream = Upstream { with_head: with_head.as_bytes(), later: late.as_bytes(), then: Then::Holds };
        let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
        let body = chunk(decoded(0..at)) + &chunk(decoded(at..CHUNKED_BODY.len())) + "0\r\nX-Sum: abc\r\n\r\n";
        assert_eq!(relayed, whole(&format!("{CHUNKED_HEAD_OUT}{body}"), 11, true), "split at {at}: {early:?}");
    }
}

#[tokio::test]
async fn chunked_reaches_an_http10_client_until_close_without_trailers() {
    let with_head = format!("{CHUNKED_HEAD}{CHUNKED_BODY}");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b"", then: Then::Holds };
    let (relayed, _) = relay(GET_10, upstream, Peer::Reads).await;
    let want = format!(
        "HTTP/1.1 200 OK\r\n{DATE}\r\nTrailer: X-Sum\r\nvia: 1.1 hookgate\r\nconnection: close\r\n\r\nhello world"
    );
    assert_eq!(relayed, whole(&want, 11, true));
}

#[tokio::test]
async fn a_body_ended_by_the_upstreams_close_is_chunked_for_http11_clients() {
    // Their connection stays open: no `connection: close`.
    let with_head = format!("HTTP/1.0 200 OK\r\n{DATE}\r\n\r\nhello");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b" world", then: Then::Closes };
    let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
    let want = format!(
        "HTTP/1.1 200 OK\r\n{DATE}\r\nvia: 1.1 hookgate\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    );
    assert_eq!(relayed, whole(&want, 11, false));
}

#[tokio::test]
async fn a_body_ended_by_the_upstreams_close_reaches_http10_clients_until_close() {
    let with_head = format!("HTTP/1.0 200 OK\r\n{DATE}\r\n\r\nhello");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b" world", then: Then::Closes };
    let (relayed, _) = relay(GET_10, upstream, Peer::Reads).await;
    let want = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nvia: 1.1 hookgate\r\nconnection: close\r\n\r\nhello world");
    assert_eq!(relayed, whole(&want, 11, false));
}

#[tokio::test]
async fn the_client_is_told_whether_its_connection_stays() {
    let with_head = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 2\r\n\r\nok");
    let cases = [
        // An HTTP/1.0 client that asked to keep its connection.
        (Asked { keep_alive: true, ..GET_10 }, "connection: keep-alive\r\n"),
        // An HTTP/1.1 client that asked to close it.
        (Asked { keep_alive: false, ..GET_11 }, "connection: close\r\n"),
    ];
    for (asked, connection) in cases {
        let upstream = Upstream { with_head: with_head.as_bytes(), later: b"", then: Then::Holds };
        let (relayed, _) = relay(asked, upstream, Peer::Reads).await;
        let want = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 2\r\nvia: 1.1 hookgate\r\n{connection}\r\nok");
        assert_eq!(relayed, whole(&want, 2, true));
    }
}

#[tokio::test]
async fn head_204_and_304_answers_are_heads_only() {
    // A HEAD answer's and a 304's Content-Length describe the resource and stay.
    let cases = [
        (true, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n", ""),
        (true, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n", ""),
        (false, "HTTP/1.1 204 No Content\r\n", ""),
        (false, "HTTP/1.1 304 Not Modified\r\nContent-Length: 11\r\n", ""),
        // Bytes after a bodiless answer are not its body.
        (false, "HTTP/1.1 204 No Content\r\n", "hello"),
    ];
    for (head, status_and_framing, after) in cases {
        let with_head = format!("{status_and_framing}{DATE}\r\n\r\n{after}");
        let upstream = Upstream { with_head: with_head.as_bytes(), later: b"", then: Then::Holds };
        let (relayed, _) = relay(Asked { head, ..GET_11 }, upstream, Peer::Reads).await;
        let kept = status_and_framing.replace("Transfer-Encoding: chunked\r\n", "");
        let status = kept[9..12].parse().unwrap();
        let want = Relayed {
            line: (status, 0, None, None),
            unread: after.as_bytes().to_vec(),
            ..whole(&format!("{kept}{DATE}\r\nvia: 1.1 hookgate\r\n\r\n"), 0, true)
        };
        assert_eq!(relayed, want, "{with_head:?}");
    }
}

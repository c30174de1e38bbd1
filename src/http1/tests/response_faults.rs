//! `response_body::copy_response` when something goes wrong: an upstream
//! that closes, resets or stalls inside a body, chunks broken before or after
//! the head went out, trailers past `max_header_bytes`, a client that stops
//! reading or has left. A body that fails after its head went out is cut,
//! never ended as if complete, and logged `aborted=upstream` with why; one
//! broken before its head went out becomes hookgate's own 502.

use std::sync::Arc;

use http::StatusCode;
use tokio::io::duplex;

use super::relay::*;
use super::{client, delivery_counted_in};
use crate::config::Limits;
use crate::error::ProxyError;
use crate::metrics::Metrics;

#[tokio::test]
async fn an_upstream_that_closes_inside_a_length_body_cuts_the_response() {
    let with_head = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 11\r\n\r\nhello");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b" wo", then: Then::Closes };
    let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
    let want = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 11\r\nvia: 1.1 hookgate\r\n\r\nhello wo");
    assert_eq!(relayed, cut(&want, 8, "the upstream closed before its body ended"));
}

#[tokio::test]
async fn a_chunked_body_cut_short_never_gets_its_last_chunk() {
    let with_head = format!("{CHUNKED_HEAD}5\r\nhello\r\n");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b"6\r\n wo", then: Then::Closes };
    let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
    let want = format!("{CHUNKED_HEAD_OUT}5\r\nhello\r\n3\r\n wo\r\n");
    assert_eq!(relayed, cut(&want, 8, "the upstream closed before its body ended"));
}

#[tokio::test]
async fn a_reset_ends_no_body_even_one_framed_by_the_close() {
    let with_head = format!("HTTP/1.0 200 OK\r\n{DATE}\r\n\r\nhello");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b"", then: Then::Resets };
    let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
    let want =
        format!("HTTP/1.1 200 OK\r\n{DATE}\r\nvia: 1.1 hookgate\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n");
    assert_eq!(relayed, cut(&want, 5, "Connection reset by peer (os error 104)"));
}

#[tokio::test]
async fn a_chunked_body_broken_before_its_head_went_out_gets_hookgates_502() {
    // The break is in the bytes read with the head, so the head is never
    // sent: a bad size line, and a size line past 4 KiB with its extensions.
    let long_line = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(5000));
    for broken in ["5\r\nhello\r\nzz\r\n", &long_line] {
        let with_head = format!("{CHUNKED_HEAD}{broken}");
        let upstream = Upstream { with_head: with_head.as_bytes(), later: b"", then: Then::Holds };
        let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
        let want = Relayed {
            received: "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain; charset=utf-8\r\ndate: <now>\r\n\
                       content-length: 34\r\nconnection: close\r\n\r\nupstream sent an invalid response\n"
                .to_string(),
            upstream_clean: false,
            client_ok: false,
            // Logged as the complete 502 it is, not as a cut response.
            line: (502, 34, None, None),
            // Left unread; the connection is closed, not pooled.
            unread: broken.as_bytes().to_vec(),
        };
        assert_eq!(relayed, want, "{broken:.20}");
    }
}

#[tokio::test]
async fn a_chunked_body_broken_after_its_head_went_out_is_cut() {
    let with_head = format!("{CHUNKED_HEAD}5\r\nhello\r\n");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b"zz\r\n", then: Then::Holds };
    let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
    let want = format!("{CHUNKED_HEAD_OUT}5\r\nhello\r\n");
    let broken = cut(&want, 5, "invalid chunked body: missing chunk size");
    assert_eq!(relayed, Relayed { unread: b"zz\r\n".to_vec(), ..broken });
}

/// hookgate's 502 for a body broken before its head went out is listed on
/// the status page as hookgate's error, not as "upstream app answered 502"
/// (the upstream answered 200).
#[tokio::test]
async fn a_replaced_answer_is_listed_as_hookgates_error() {
    let (io, _far) = duplex(1024);
    let client = client(io, Limits::default());
    let metrics = Arc::new(Metrics::disabled().route("hook", "app"));
    let delivery = delivery_counted_in(&client, StatusCode::OK, metrics.clone());
    delivery.replace_with(ProxyError::UpstreamBroken, &"its chunked body is broken");
    drop(delivery);
    let listed: Vec<(u16, String)> = metrics.problems.list().into_iter().map(|p| (p.status, p.reason)).collect();
    assert_eq!(listed, [(502, ProxyError::UpstreamBroken.to_string())]);
}

/// Response trailers are held to `max_header_bytes` (32 KiB here), as a
/// request's are: README's "Forwarding" says so for both directions.
#[tokio::test]
async fn response_trailers_are_held_to_max_header_bytes() {
    let with_head = format!("{CHUNKED_HEAD}5\r\nhello\r\n");
    let later = format!("0\r\nX-Sum: {}\r\n\r\n", "a".repeat(33 * 1024));
    let upstream = Upstream { with_head: with_head.as_bytes(), later: later.as_bytes(), then: Then::Holds };
    let (relayed, _) = relay(GET_11, upstream, Peer::Reads).await;
    let want = format!("{CHUNKED_HEAD_OUT}5\r\nhello\r\n");
    let broken = cut(&want, 5, "invalid chunked body: trailers too large");
    assert_eq!(Relayed { unread: Vec::new(), ..relayed }, broken);
}

#[tokio::test(start_paused = true)]
async fn an_upstream_silent_for_its_response_timeout_cuts_the_response() {
    // Each framing: what came with the head, and what the client got before the cut.
    let cases = [
        (
            format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 11\r\n\r\nhello"),
            format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 11\r\nvia: 1.1 hookgate\r\n\r\nhello"),
        ),
        (format!("{CHUNKED_HEAD}5\r\nhello\r\n"), format!("{CHUNKED_HEAD_OUT}5\r\nhello\r\n")),
        (
            format!("HTTP/1.0 200 OK\r\n{DATE}\r\n\r\nhello"),
            format!(
                "HTTP/1.1 200 OK\r\n{DATE}\r\nvia: 1.1 hookgate\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n"
            ),
        ),
    ];
    for (with_head, want) in cases {
        let upstream = Upstream { with_head: with_head.as_bytes(), later: b"", then: Then::Holds };
        let (relayed, took) = relay(GET_11, upstream, Peer::Reads).await;
        assert_eq!((relayed, took), (cut(&want, 5, "no response body bytes for 5s"), READ_TIMEOUT), "{with_head:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_cut_after_send_timeout() {
    let with_head = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 11\r\n\r\nhello world");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b"", then: Then::Holds };
    let (relayed, took) = relay(GET_11, upstream, Peer::StopsReading).await;
    let want = Relayed {
        // What fit in its socket.
        received: "HTTP/1.1 200 OK\r".to_string(),
        upstream_clean: false,
        client_ok: false,
        line: (200, 0, Some("client_timeout"), None),
        unread: b"hello world".to_vec(),
    };
    assert_eq!((relayed, took), (want, SEND_TIMEOUT));
}

#[tokio::test]
async fn a_client_that_left_is_logged_as_gone() {
    let with_head = format!("HTTP/1.1 200 OK\r\n{DATE}\r\nContent-Length: 11\r\n\r\nhello world");
    let upstream = Upstream { with_head: with_head.as_bytes(), later: b"", then: Then::Holds };
    let (relayed, _) = relay(GET_11, upstream, Peer::Gone).await;
    let want = Relayed {
        received: String::new(),
        upstream_clean: false,
        client_ok: false,
        line: (200, 0, Some("client_closed"), None),
        unread: b"hello world".to_vec(),
    };
    assert_eq!(relayed, want);
}

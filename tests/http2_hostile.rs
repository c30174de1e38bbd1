//! The hostile upstreams of `hostile_upstreams`, met by HTTP/2 clients (whose
//! requests go over the engine's pools in HTTP/1.1, `http2::pooled`): the
//! same outcomes, each on its own stream: hookgate's 502 or 504 while nothing
//! has reached the client, a reset stream once a head has gone out, never a
//! hang past the timeouts, and the upstream connection never reused after a
//! fault or with stray bytes on it.

use crate::common;
use crate::hostile_upstreams::{AFTER_THE_HEAD, BEFORE_THE_HEAD, BEYOND_THE_RESPONSE, Hostile};

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};

use common::tls_client::{Pki, h2, tls_listener};

/// One GET on a new HTTP/2 connection: the status of the head (0 if none
/// came), its body, and whether the body arrived whole.
async fn exchange(pki: &Pki, addr: std::net::SocketAddr) -> (u16, Bytes, bool) {
    let mut send = h2(pki, addr).await;
    let request = Request::get("https://a.test/").body(Full::new(Bytes::new())).unwrap();
    let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(10), send.send_request(request)).await else {
        return (0, Bytes::new(), false);
    };
    let status = response.status().as_u16();
    match tokio::time::timeout(Duration::from_secs(10), response.into_body().collect()).await {
        Ok(Ok(body)) => (status, body.to_bytes(), true),
        _ => (status, Bytes::new(), false),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_before_the_head_are_502_or_504_over_http2() {
    let pki = Pki::two_sites();
    for (name, behaviour, want) in BEFORE_THE_HEAD {
        let upstream = Hostile::start(*behaviour);
        let daemon = upstream.daemon_behind(&tls_listener(&pki));
        let started = Instant::now();
        let (status, _, whole) = exchange(&pki, daemon.addr).await;
        assert_eq!((status, whole), (*want, true), "{name}");
        assert!(started.elapsed() < Duration::from_secs(5), "{name}: answered within response_timeout + slack");
        assert_eq!(exchange(&pki, daemon.addr).await.0, *want, "{name}, again");
        assert_eq!(upstream.connections(), 2, "{name}: a faulty connection is never reused");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_after_the_head_reset_the_stream_over_http2() {
    let pki = Pki::two_sites();
    for (name, behaviour) in AFTER_THE_HEAD {
        let upstream = Hostile::start(*behaviour);
        let daemon = upstream.daemon_behind(&tls_listener(&pki));
        let started = Instant::now();
        // The head goes out before the body fails, but a reset right behind it may
        // reach the client first: hyper's client then reports no head at all.
        let (status, _, whole) = exchange(&pki, daemon.addr).await;
        assert!([0, 200].contains(&status) && !whole, "{name}: the stream was reset, not answered ({status})");
        assert!(started.elapsed() < Duration::from_secs(5), "{name}: cut within response_timeout + slack");
        daemon.wait_for_log("aborted=upstream", Duration::from_secs(5));
        let (status, _, whole) = exchange(&pki, daemon.addr).await;
        assert!([0, 200].contains(&status) && !whole, "{name}, again ({status})");
        assert_eq!(upstream.connections(), 2, "{name}: a faulty connection is never reused");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bytes_beyond_a_response_never_reach_the_next_stream() {
    let pki = Pki::two_sites();
    for (name, behaviour) in BEYOND_THE_RESPONSE {
        let upstream = Hostile::start(*behaviour);
        let daemon = upstream.daemon_behind(&tls_listener(&pki));
        for round in 0..3 {
            let (status, body, _) = exchange(&pki, daemon.addr).await;
            assert_eq!((status, &body[..]), (200, &b"ok"[..]), "{name}, round {round}");
            upstream.wait_answered(round + 1);
        }
        assert_eq!(upstream.connections(), 3, "{name}: a connection with stray bytes is not reused");
    }
}

//! The forwarding rules of the HTTP/1.1 path, held over HTTP/2 clients too
//! (issue 32's list): `Via` names the protocol the request came in,
//! (`forwarding` checks HTTP/1.0's), `max_headers` refuses a head with too many fields, and `Expect` stops at
//! hookgate. Each is checked on both front ends of the same TLS listener.

use crate::common;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use common::tls_client::{Front, Pki, tls_config};
use common::{Daemon, Upstream};

fn webhook(builder: http::request::Builder) -> Request<Full<Bytes>> {
    builder.body(Full::new(Bytes::from_static(br#"{"update_id":1}"#))).unwrap()
}

const WEBHOOK: &str = "https://a.test/api/v1/guest/telegram/webhook";

#[tokio::test(flavor = "multi_thread")]
async fn via_names_the_protocol_each_request_came_in() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&tls_config(&pki, &app, ""));
    for http2 in [false, true] {
        let mut front = Front::connect(&pki, daemon.addr, http2).await;
        let (status, _) = front.send(webhook(Request::post(WEBHOOK).header("host", "a.test"))).await;
        assert_eq!(status, 200);
    }
    let vias: Vec<String> = app.seen().iter().map(|s| s.headers["via"].to_str().unwrap().to_string()).collect();
    assert_eq!(vias, ["1.1 hookgate", "2 hookgate"], "RFC 9110 §7.6.3: the received protocol");
}

#[tokio::test(flavor = "multi_thread")]
async fn max_headers_refuses_the_same_head_over_either_protocol() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&format!("{}\n[limits]\nmax_headers = 40\n", tls_config(&pki, &app, "")));
    for http2 in [false, true] {
        let mut front = Front::connect(&pki, daemon.addr, http2).await;
        let mut within = Request::post(WEBHOOK).header("host", "a.test");
        let mut over = Request::post(WEBHOOK).header("host", "a.test");
        for i in 0..30 {
            within = within.header(format!("x-field-{i}"), "v");
        }
        for i in 0..60 {
            over = over.header(format!("x-field-{i}"), "v");
        }
        assert_eq!(front.send(webhook(within)).await.0, 200, "http2 {http2}: 30 fields are within 40");
        let mut front = Front::connect(&pki, daemon.addr, http2).await;
        assert_eq!(front.send(webhook(over)).await.0, 431, "http2 {http2}: 60 fields are over 40");
    }
    assert_eq!(app.seen().len(), 2, "only the heads within the limit were forwarded");
}

#[tokio::test(flavor = "multi_thread")]
async fn expect_stops_at_hookgate_over_either_protocol() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&tls_config(&pki, &app, ""));
    for http2 in [false, true] {
        let mut front = Front::connect(&pki, daemon.addr, http2).await;
        let request = Request::post(WEBHOOK).header("host", "a.test").header("expect", "100-continue");
        assert_eq!(front.send(webhook(request)).await.0, 200);
    }
    let seen = app.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert!(!s.headers.contains_key("expect"), "Expect reached the upstream over {:?}", s.headers.get("via"));
        assert_eq!(s.body, &br#"{"update_id":1}"#[..]);
    }
}

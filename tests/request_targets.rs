//! Request targets over real sockets: the absolute form (routed by its
//! authority, with the CONNECT and non-HTTP forms refused), a target without
//! a leading slash, and what a plain listener does with HTTP/2's ways in
//! (an `Upgrade: h2c`, the prior-knowledge preface).

use crate::common;
use crate::forwarding::setup;

use std::time::Duration;

use common::{Daemon, Upstream, get, raw};

#[tokio::test(flavor = "multi_thread")]
async fn absolute_form_targets_route_by_their_authority() {
    let frontend = Upstream::start("frontend").await;
    let backend = Upstream::start("backend").await;
    let config = format!(
        "[upstreams.frontend]\nurl = \"{}\"\n[upstreams.backend]\nurl = \"{}\"\n[[routes]]\nname = \"api\"\nhost = \"api.example.com\"\nupstream = \"backend\"\n[default]\nupstream = \"frontend\"\n",
        frontend.url(),
        backend.url()
    );
    let daemon = Daemon::start(&config);
    let response = raw(
        daemon.addr,
        b"GET http://api.example.com/v?x=1 HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(response.body_text(), "backend");
    let seen = &backend.seen()[0];
    assert_eq!(seen.target, "/v?x=1");
    assert_eq!(seen.headers["host"], "api.example.com");
    // Host matching ignores case, port and a trailing dot.
    assert_eq!(get(daemon.addr, "API.Example.COM.:443", "/").body_text(), "backend");
    // Neither a CONNECT nor another scheme's absolute target goes anywhere, and the log says why.
    for target in ["api.example.com:443", "ftp://api.example.com/v"] {
        let method = if target.contains("://") { "GET" } else { "CONNECT" };
        let request = format!("{method} {target} HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n");
        assert_eq!(raw(daemon.addr, request.as_bytes()).status, 400, "{request}");
    }
    let refused = || daemon.logs().iter().filter(|l| l.contains("hookgate is no forward proxy")).count() >= 2;
    assert!(common::eventually(Duration::from_secs(5), refused), "{:#?}", daemon.logs());
    // A CONNECT target has no path: its access line says `-`, as for any field it lacks.
    let connect_line = |l: &String| l.contains("method=CONNECT") && l.contains(" path=- ") && l.contains("status=400");
    assert!(
        common::eventually(Duration::from_secs(5), || daemon.logs().iter().any(connect_line)),
        "{:#?}",
        daemon.logs()
    );
    // RFC 9112 §3.2 holds for absolute-form targets too: HTTP/1.1 without a
    // Host, or any request with two, is refused (the walkthrough of 2026-12-07
    // found both forwarded to the target's authority). HTTP/1.0 needs none.
    for (request, status) in [
        ("GET http://api.example.com/v HTTP/1.1\r\nHost: a\r\nHost: b\r\n", 400),
        ("GET http://api.example.com/v HTTP/1.1\r\n", 400),
        ("GET http://api.example.com/v HTTP/1.0\r\nHost: a\r\nHost: b\r\n", 400),
        ("GET http://api.example.com/v HTTP/1.0\r\n", 200),
        // A Host field the authority overrides must still be a valid one (found by a probe of 2026-12-07).
        ("GET http://api.example.com/v HTTP/1.1\r\nHost: u@evil\r\n", 400),
        ("GET /v HTTP/1.1\r\nHost: [evil.example]\r\n", 400),
        // No fragment in a request target (RFC 9112 §3.2): it was dropped without a word.
        ("GET /x#/../admin HTTP/1.1\r\nHost: h\r\n", 400),
    ] {
        let response = raw(daemon.addr, format!("{request}Connection: close\r\n\r\n").as_bytes());
        assert_eq!(response.status, status, "{request:?}: {}", response.head);
    }
    assert_eq!(backend.seen().len(), 3, "the two routed GETs and the HTTP/1.0 one");
}

#[tokio::test(flavor = "multi_thread")]
async fn h2c_upgrades_are_not_tunnelled() {
    let (frontend, _, daemon) = setup("").await;
    let response = raw(
        daemon.addr,
        b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    );
    assert_eq!(response.status, 200);
    let seen = &frontend.seen()[0];
    assert!(!seen.headers.contains_key("upgrade") && !seen.headers.contains_key("http2-settings"));
}

/// HTTP/2 is offered over TLS only: its preface on a plain listener gets a
/// 400, and the log says why rather than calling it a malformed head.
#[tokio::test(flavor = "multi_thread")]
async fn a_prior_knowledge_http2_preface_gets_400_and_says_why() {
    let (frontend, _, daemon) = setup("").await;
    let response = raw(daemon.addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert_eq!(response.status, 400);
    let said = || daemon.logs().iter().any(|l| l.contains("status=400") && l.contains("HTTP/2 without TLS"));
    assert!(common::eventually(Duration::from_secs(5), said), "{:#?}", daemon.logs());
    assert!(frontend.seen().is_empty());
}

/// An absolute-form target with no path (`http://h?x`) is forwarded with the
/// path `/`: it went out as `GET ?x`, which the upstream refused (found by
/// fuzzing the head the upstream gets). An origin-form target without its
/// `/` stays refused by hookgate itself.
#[tokio::test(flavor = "multi_thread")]
async fn a_target_without_a_leading_slash_is_refused_and_an_empty_path_becomes_slash() {
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&format!("[upstreams.app]\nurl = \"{}\"\n[default]\nupstream = \"app\"\n", app.url()));
    let refused = raw(daemon.addr, b"GET ?x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert_eq!((refused.status, refused.body_text().as_str()), (400, "bad request\n"), "hookgate's own 400");
    let absolute = raw(daemon.addr, b"GET http://h?x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert_eq!(absolute.status, 200);
    let targets: Vec<String> = app.seen().iter().map(|s| s.target.clone()).collect();
    assert_eq!(targets, ["/?x"]);
}

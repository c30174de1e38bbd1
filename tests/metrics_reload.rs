//! What `/metrics` keeps across reloads, against the real daemon: the series
//! of routes, upstreams and certificates a reload removed are gone from the
//! next scrape, so renaming routes again and again neither grows `/metrics`
//! nor the daemon's memory, and a replaced certificate's expiry (which an
//! alert may watch) stops being exported.

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use common::tls_client::{Pki, tls_config};
use common::{Daemon, Upstream, eventually, get, raw};

/// Routes each config has; a generation renames all of them and the upstream.
const ROUTES: usize = 20;

/// Generation `g`: routes `g{g:03}-r0..` and the upstream `up{g:03}`, all to
/// `app` (names of one length, so `/metrics` can be compared by size).
fn renamed_config(app: &Upstream, generation: usize) -> String {
    let mut text = format!("[admin]\naddr = \"127.0.0.1:0\"\n[upstreams.up{generation:03}]\nurl = \"{}\"\n", app.url());
    for i in 0..ROUTES {
        text += &format!(
            "[[routes]]\nname = \"g{generation:03}-r{i}\"\npath = \"/r{i}\"\nupstream = \"up{generation:03}\"\n"
        );
    }
    text + &format!("[default]\nupstream = \"up{generation:03}\"\n")
}

/// `POST /reload` on the admin listener; it answers when the reload is done.
fn reload(admin: SocketAddr) {
    let answer =
        raw(admin, b"POST /reload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(answer.status, 200, "{}", answer.body_text());
}

fn metrics(admin: SocketAddr) -> String {
    get(admin, "localhost", "/metrics").body_text()
}

#[tokio::test(flavor = "multi_thread")]
async fn renamed_routes_and_upstreams_leave_no_series_behind() {
    let app = Upstream::start("app").await;
    // The listeners' configured addresses stay the same, so reloads keep them.
    let listen = "[listen]\naddrs = [\"127.0.0.1:0\"]\n";
    let daemon = Daemon::start(&format!("{listen}{}", renamed_config(&app, 0)));
    let admin = daemon.admin.unwrap();
    // Each generation serves a few requests, so its routes have counts,
    // latency buckets and status-page windows to leave behind.
    let serve = |generation: usize| {
        for i in [0, 7, ROUTES - 1] {
            assert_eq!(get(daemon.addr, "h", &format!("/r{i}")).status, 200, "generation {generation}");
        }
        let counted =
            format!("route=\"g{generation:03}-r{}\",upstream=\"up{generation:03}\",class=\"2xx\"}} 1", ROUTES - 1);
        assert!(eventually(Duration::from_secs(5), || metrics(admin).contains(&counted)), "{counted}");
    };
    serve(0);
    let first = metrics(admin).len();
    let mut warm_rss = 0;
    const GENERATIONS: usize = 150;
    for generation in 1..=GENERATIONS {
        daemon.rewrite_config(&format!("{listen}{}", renamed_config(&app, generation)));
        reload(admin);
        serve(generation);
        if generation == 10 {
            warm_rss = daemon.rss_kib();
        }
    }
    let text = metrics(admin);
    for old in [0, 1, GENERATIONS / 2, GENERATIONS - 1] {
        for gone in [format!("route=\"g{old:03}-r"), format!("upstream=\"up{old:03}\"")] {
            assert!(!text.contains(&gone), "{gone} is still exported:\n{text}");
        }
    }
    let now = format!("hookgate_request_duration_seconds_count{{route=\"g{GENERATIONS:03}-r7\"}} 1");
    assert!(text.contains(&now), "{now} missing:\n{text}");
    assert_eq!(text.matches("hookgate_requests_total{").count(), (ROUTES + 2) * 5, "{text}");
    // Only the reload counters and timestamps got longer.
    assert!(text.len() < first + 200, "/metrics grew from {first} to {} bytes", text.len());
    // 140 generations of 20 names used to add about 8 KiB each (series and windows).
    let rss = daemon.rss_kib();
    assert!(rss < warm_rss + 8 * 1024, "RSS grew from {warm_rss} KiB to {rss} KiB");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_certificate_is_no_longer_measured() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let config = tls_config(&pki, &app, "");
    let daemon = Daemon::start(&config);
    let admin = daemon.admin.unwrap();
    let expiry = |name: &str| format!("hookgate_tls_certificate_expiry_days{{cert_file=\"{}.pem\"}}", pki.path(name));
    assert!(
        eventually(Duration::from_secs(8), || {
            let text = metrics(admin);
            text.contains(&expiry("a")) && text.contains(&expiry("b"))
        }),
        "{}",
        metrics(admin)
    );

    // b.test gets a new certificate in a new file; a.test keeps its own.
    pki.issue("b-renewed", &["b.test"]);
    let renewed = config.replace(&format!("{}.", pki.path("b")), &format!("{}.", pki.path("b-renewed")));
    assert_ne!(renewed, config);
    daemon.rewrite_config(&renewed);
    reload(admin);
    let text = metrics(admin);
    assert!(!text.contains(&expiry("b")), "the replaced certificate is still measured:\n{text}");
    assert!(text.contains(&expiry("a")), "{text}");
    // The new file is measured from the next housekeeping round (every 5 s).
    assert!(eventually(Duration::from_secs(8), || metrics(admin).contains(&expiry("b-renewed"))), "{}", metrics(admin));
    assert!(!metrics(admin).contains(&expiry("b")));
}

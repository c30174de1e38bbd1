//! Per-route guards over real sockets. Clients bind to different loopback
//! addresses (127.0.0.2, .3, ...) to be different sources. Every refusal is
//! checked on the upstream too: what it recorded, not only the status.

use crate::common;

use std::io::Write;
use std::time::Duration;

use common::{Daemon, Upstream, connect_from, eventually, raw_from};

fn hook(host_extra: &str) -> String {
    format!("POST /hook HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n{host_extra}Connection: close\r\n\r\n{{}}")
}

async fn daemon_with(route_guards: &str, listen_extra: &str) -> (Upstream, Daemon) {
    let backend = Upstream::start("backend").await;
    let config = format!(
        "[listen]\naddrs = [\"127.0.0.1:0\"]\n{listen_extra}\n[admin]\naddr = \"127.0.0.1:0\"\n[upstreams.backend]\nurl = \"{}\"\n[[routes]]\nname = \"hook\"\npath = \"/hook\"\nupstream = \"backend\"\n{route_guards}\n[default]\nrespond = {{ status = 404 }}\n",
        backend.url()
    );
    (backend, Daemon::start(&config))
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_from_uses_the_socket_peer_not_a_spoofed_header() {
    let (backend, daemon) =
        daemon_with("allow_from = [\"127.0.0.2/32\", \"office\"]", "[sets.office]\ncidrs = [\"127.0.0.6/31\"]").await;
    assert_eq!(raw_from("127.0.0.2", daemon.addr, hook("").as_bytes()).status, 200);
    assert_eq!(raw_from("127.0.0.7", daemon.addr, hook("").as_bytes()).status, 200, "named set");
    let refused = raw_from("127.0.0.3", daemon.addr, hook("").as_bytes());
    assert_eq!((refused.status, refused.body_text().as_str()), (403, "forbidden\n"));
    // A forged X-Forwarded-For from an untrusted peer changes nothing.
    let spoofed = raw_from("127.0.0.3", daemon.addr, hook("X-Forwarded-For: 127.0.0.2\r\n").as_bytes());
    assert_eq!(spoofed.status, 403);
    assert_eq!(backend.seen().len(), 2, "refused requests must not reach the upstream");
    let line = daemon.wait_for_log("status=403", Duration::from_secs(5));
    assert!(line.contains("client=127.0.0.3") && line.contains("route=hook"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_proxy_chains_resolve_the_rightmost_untrusted_address() {
    let (backend, daemon) =
        daemon_with("allow_from = [\"127.0.0.2/32\"]", "trusted_proxies = [\"127.0.0.4/32\", \"127.0.0.9/32\"]").await;
    // Proxy 127.0.0.4 says the client is 127.0.0.2 (behind another trusted hop 127.0.0.9).
    let ok = raw_from("127.0.0.4", daemon.addr, hook("X-Forwarded-For: 127.0.0.2, 127.0.0.9\r\n").as_bytes());
    assert_eq!(ok.status, 200);
    assert_eq!(backend.seen()[0].headers["x-forwarded-for"], "127.0.0.2, 127.0.0.9, 127.0.0.4");
    // A client that prepends the allowed address is still itself: the right-most untrusted entry.
    let forged = raw_from("127.0.0.4", daemon.addr, hook("X-Forwarded-For: 127.0.0.2, 127.0.0.3\r\n").as_bytes());
    assert_eq!(forged.status, 403);
    assert_eq!(backend.seen().len(), 1);
    daemon.wait_for_log("client=127.0.0.3", Duration::from_secs(5));
}

fn proxy_v2(source: &str, dest: &str) -> Vec<u8> {
    use ppp::v2::{Builder, Command, Protocol, Version};
    let addresses: ppp::v2::Addresses =
        (source.parse::<std::net::SocketAddr>().unwrap(), dest.parse::<std::net::SocketAddr>().unwrap()).into();
    Builder::with_addresses(Version::Two | Command::Proxy, Protocol::Stream, addresses).build().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_protocol_is_believed_only_from_trusted_peers() {
    let (backend, daemon) =
        daemon_with("allow_from = [\"127.0.0.2/32\"]", "trusted_proxies = [\"127.0.0.4/32\"]\nproxy_protocol = true")
            .await;
    let v1 = format!("PROXY TCP4 127.0.0.2 127.0.0.1 50000 80\r\n{}", hook(""));
    assert_eq!(raw_from("127.0.0.4", daemon.addr, v1.as_bytes()).status, 200);
    assert_eq!(backend.seen()[0].headers["x-forwarded-for"], "127.0.0.2");

    let mut v2 = proxy_v2("127.0.0.2:50001", "127.0.0.1:80");
    v2.extend_from_slice(hook("").as_bytes());
    assert_eq!(raw_from("127.0.0.4", daemon.addr, &v2).status, 200);
    let mut v2_other = proxy_v2("127.0.0.3:50002", "127.0.0.1:80");
    v2_other.extend_from_slice(hook("").as_bytes());
    assert_eq!(raw_from("127.0.0.4", daemon.addr, &v2_other).status, 403);

    // From an untrusted peer a PROXY line is not believed: it is bad HTTP.
    let forged = format!("PROXY TCP4 127.0.0.2 127.0.0.1 50003 80\r\n{}", hook(""));
    assert_eq!(raw_from("127.0.0.5", daemon.addr, forged.as_bytes()).status, 400);
    // A trusted peer that skips the header is cut off without an answer.
    let mut bare = connect_from("127.0.0.4", daemon.addr);
    bare.write_all(hook("").as_bytes()).unwrap();
    assert!(common::read_response(&mut bare).is_err());
    assert_eq!(backend.seen().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_header_missing_wrong_right_stripped_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "s3cret_Token-1\n").unwrap();
    let guard = format!(
        "secret_header = {{ name = \"X-Telegram-Bot-Api-Secret-Token\", value_file = \"{}\" }}",
        secret_file.display()
    );
    let (backend, daemon) = daemon_with(&guard, "").await;
    let with = |v: &str| hook(&format!("X-Telegram-Bot-Api-Secret-Token: {v}\r\n"));
    let missing = raw_from("127.0.0.2", daemon.addr, hook("").as_bytes());
    assert_eq!((missing.status, missing.body_text().as_str()), (401, "unauthorized\n"));
    assert_eq!(raw_from("127.0.0.2", daemon.addr, with("s3cret_Token-2").as_bytes()).status, 403);
    assert_eq!(raw_from("127.0.0.2", daemon.addr, with("s3cret_Token-1").as_bytes()).status, 200);
    assert_eq!(backend.seen().len(), 1);
    assert!(!backend.seen()[0].headers.contains_key("x-telegram-bot-api-secret-token"), "strip defaults to true");

    // Reload re-reads the file: the old value stops working at once.
    std::fs::write(&secret_file, "rotated_Token\n").unwrap();
    daemon.signal("HUP");
    daemon.wait_for_log("reloaded", Duration::from_secs(5));
    assert_eq!(raw_from("127.0.0.2", daemon.addr, with("s3cret_Token-1").as_bytes()).status, 403);
    assert_eq!(raw_from("127.0.0.2", daemon.addr, with("rotated_Token").as_bytes()).status, 200);
    assert!(daemon.logs().iter().all(|l| !l.contains("s3cret_Token") && !l.contains("rotated_Token")));

    // strip = false forwards the header.
    let guard = guard.replace("\" }", "\", strip = false }");
    let (backend, daemon) = daemon_with(&guard, "").await;
    assert_eq!(raw_from("127.0.0.2", daemon.addr, with("rotated_Token").as_bytes()).status, 200);
    assert_eq!(backend.seen()[0].headers["x-telegram-bot-api-secret-token"], "rotated_Token");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_the_route_limit_never_reaches_the_backend_whole() {
    let (backend, daemon) = daemon_with("max_body = \"1KiB\"", "").await;
    let big = "x".repeat(2048);
    let declared = format!("POST /hook HTTP/1.1\r\nHost: h\r\nContent-Length: 2048\r\nConnection: close\r\n\r\n{big}");
    assert_eq!(raw_from("127.0.0.2", daemon.addr, declared.as_bytes()).status, 413);
    assert!(backend.seen().is_empty(), "a declared-too-large body must not reach the upstream at all");
    let chunked =
        format!("POST /hook HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n{big}\r\n0\r\n\r\n");
    assert_eq!(raw_from("127.0.0.2", daemon.addr, chunked.as_bytes()).status, 413);
    assert!(backend.seen().iter().all(|s| !s.complete), "the upstream must never receive a complete oversized body");
    let fine =
        format!("POST /hook HTTP/1.1\r\nHost: h\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n{}", &big[..1024]);
    assert_eq!(raw_from("127.0.0.2", daemon.addr, fine.as_bytes()).status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_bursts_refuses_with_retry_after_and_recovers() {
    let (backend, daemon) = daemon_with("rate_limit = { per_second = 4, burst = 3 }", "").await;
    for _ in 0..3 {
        assert_eq!(raw_from("127.0.0.2", daemon.addr, hook("").as_bytes()).status, 200);
    }
    let limited = raw_from("127.0.0.2", daemon.addr, hook("").as_bytes());
    assert_eq!(limited.status, 429);
    let retry: u64 = limited.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // Another client has its own bucket.
    assert_eq!(raw_from("127.0.0.3", daemon.addr, hook("").as_bytes()).status, 200);
    assert_eq!(backend.seen().len(), 4);
    // The bucket refills at 4 per second: one token after 250 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(raw_from("127.0.0.2", daemon.addr, hook("").as_bytes()).status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_client_addresses_keep_memory_bounded() {
    let (backend, daemon) = daemon_with(
        "rate_limit = { per_second = 1, burst = 1, max_keys = 1000 }",
        "trusted_proxies = [\"127.0.0.4/32\"]",
    )
    .await;
    let admin = daemon.admin.unwrap();
    let mut stream = connect_from("127.0.0.4", daemon.addr);
    let rss_before = daemon.rss_kib();
    let mut served = 0;
    for i in 0..10_000u32 {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        let request =
            format!("POST /hook HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: {ip}\r\nContent-Length: 2\r\n\r\n{{}}");
        stream.write_all(request.as_bytes()).unwrap();
        let response = common::read_response(&mut stream).unwrap();
        if response.status == 200 {
            served += 1;
        } else {
            assert_eq!(response.status, 429);
            // A 429 closes the connection; open a new one.
            stream = connect_from("127.0.0.4", daemon.addr);
        }
    }
    let grown = daemon.rss_kib().saturating_sub(rss_before);
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB for 10,000 client keys");
    assert!(served >= 1000, "the first 1,000 distinct clients each get their own bucket ({served} served)");
    assert_eq!(backend.seen().len(), served);
    let keys = |text: &str| -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with("hookgate_rate_limit_keys{route=\"hook\"}"))?
            .rsplit(' ')
            .next()?
            .parse()
            .ok()
    };
    assert!(
        eventually(Duration::from_secs(8), || keys(&common::get(admin, "localhost", "/metrics").body_text()).is_some())
    );
    let tracked = keys(&common::get(admin, "localhost", "/metrics").body_text()).unwrap();
    assert!(tracked <= 1000, "{tracked} buckets tracked with max_keys = 1000");
    eprintln!("10,000 client keys: RSS grew {grown} KiB, {served} served, {tracked} buckets tracked");
}

#[tokio::test(flavor = "multi_thread")]
async fn max_in_flight_answers_503_beyond_the_cap() {
    let backend = Upstream::start("backend").await;
    let config = format!(
        "[upstreams.backend]\nurl = \"{}\"\n[[routes]]\nname = \"slow\"\npath = \"/slow\"\nupstream = \"backend\"\nmax_in_flight = 2\n[default]\nupstream = \"backend\"\n",
        backend.url()
    );
    let daemon = Daemon::start(&config);
    let addr = daemon.addr;
    let running: Vec<_> =
        (0..2).map(|_| std::thread::spawn(move || common::get(addr, "h", "/slow?ms=1500").status)).collect();
    assert!(eventually(Duration::from_secs(5), || backend.seen().len() == 2));
    let busy = common::get(addr, "h", "/slow?ms=10");
    assert_eq!(busy.status, 503);
    // Other routes are not affected.
    assert_eq!(common::get(addr, "h", "/other").status, 200);
    for r in running {
        assert_eq!(r.join().unwrap(), 200);
    }
    assert_eq!(common::get(addr, "h", "/slow?ms=10").status, 200, "slots free up when responses end");
    assert_eq!(backend.seen().iter().filter(|s| s.target.starts_with("/slow")).count(), 3);
}

//! Cloudflare in front (issue 33), over real sockets: the client address
//! from `CF-Connecting-IP` when a trusted Cloudflare address hands the
//! request on, never from anyone else; the hint when Cloudflare is not
//! trusted (logged once a minute, on the status page and in `hookgate
//! status`); and IPv4 clients of a dual-stack `[::]` listener written as IPv4.
//!
//! A test cannot send from 104.16.0.1, so Cloudflare's address reaches the
//! daemon in the two ways it does in production behind a local proxy: as the
//! source of a PROXY protocol header from a trusted 127.0.0.1 peer (the
//! connection's peer then *is* the Cloudflare address, as when Cloudflare
//! connects directly), or as the right-most `X-Forwarded-For` entry from a
//! trusted 127.0.0.1 (nginx in front, `$proxy_add_x_forwarded_for`). Both run
//! the daemon's one client-address rule, not a test double of it.

use crate::common;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use common::{Daemon, Upstream, connect_from, raw, raw_from, read_response};

const HINT: &str = "this request came through Cloudflare; add `cloudflare` to `trusted_proxies`";
const WEBHOOK: &str = "/api/v1/guest/telegram/webhook";

/// A Telegram-like update, as Cloudflare hands it on: `CF-Connecting-IP`
/// and `X-Forwarded-For` naming Telegram's address.
fn update(extra: &str) -> String {
    let body = r#"{"update_id":7,"message":{"message_id":1,"chat":{"id":42},"text":"hi"}}"#;
    format!(
        "POST {WEBHOOK}?access_token=x HTTP/1.1\r\nHost: panel.test\r\nContent-Type: application/json\r\n\
         {extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

async fn daemon(listen_extra: &str) -> (Upstream, Daemon) {
    let backend = Upstream::start("backend").await;
    let config = format!(
        "[listen]\naddrs = [\"127.0.0.1:0\"]\n{listen_extra}\n[admin]\naddr = \"127.0.0.1:0\"\n\
         [upstreams.backend]\nurl = \"{}\"\n[[routes]]\nname = \"telegram-webhook\"\npath = \"{WEBHOOK}\"\n\
         upstream = \"backend\"\nallow_from = [\"telegram\"]\n[default]\nrespond = {{ status = 404 }}\n",
        backend.url()
    );
    (backend, Daemon::start(&config))
}

/// `request` from 127.0.0.1 behind a PROXY v1 header naming `source` as the client.
fn through_proxy_protocol(daemon: &Daemon, source: &str, request: &str) -> common::RawResponse {
    let family = if source.contains(':') { "TCP6" } else { "TCP4" };
    let dest = if source.contains(':') { "::1" } else { "127.0.0.1" };
    let bytes = format!("PROXY {family} {source} {dest} 50000 443\r\n{request}");
    raw_from("127.0.0.1", daemon.addr, bytes.as_bytes())
}

fn status_json(daemon: &Daemon) -> Value {
    let request = "GET /status.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let response = raw(daemon.admin.unwrap(), request.as_bytes());
    assert_eq!(response.status, 200, "{}", response.body_text());
    serde_json::from_str(&response.body_text()).unwrap()
}

/// The access lines of the webhook's requests.
fn access_lines(daemon: &Daemon) -> Vec<String> {
    daemon.logs().into_iter().filter(|l| l.contains("hookgate::access") && l.contains(WEBHOOK)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_through_a_trusted_cloudflare_is_from_telegram() {
    let (backend, daemon) = daemon("trusted_proxies = [\"cloudflare\", \"127.0.0.1\"]\nproxy_protocol = true").await;
    let cf = "CF-Connecting-IP: 149.154.167.1\r\nX-Forwarded-For: 149.154.167.1\r\n";
    let passed = through_proxy_protocol(&daemon, "104.16.0.1", &update(cf));
    assert_eq!(passed.status, 200, "{}", passed.body_text());
    let seen = backend.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["x-forwarded-for"], "149.154.167.1, 104.16.0.1", "the chain, with the Cloudflare hop");
    assert_eq!(seen[0].headers["cf-connecting-ip"], "149.154.167.1", "an end-to-end header passes unchanged");
    let line = daemon.wait_for_log("status=200", Duration::from_secs(5));
    assert!(line.contains("client=149.154.167.1"), "the access line names Telegram: {line}");

    // Cloudflare over IPv6 is Cloudflare too.
    let v6 = through_proxy_protocol(&daemon, "2606:4700::6810:1", &update(cf));
    assert_eq!(v6.status, 200);
    // A Cloudflare hop whose header is not one address: X-Forwarded-For decides, as without it.
    let garbled = "CF-Connecting-IP: 149.154.167.1, 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\n";
    assert_eq!(through_proxy_protocol(&daemon, "104.16.0.1", &update(garbled)).status, 403);
    assert_eq!(backend.seen().len(), 2);
    assert!(status_json(&daemon)["cloudflare_untrusted"].is_null(), "nothing to hint at when Cloudflare is trusted");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_cloudflare_is_refused_with_the_hint_once_a_minute() {
    let (backend, mut daemon) = daemon("trusted_proxies = [\"127.0.0.1\"]\nproxy_protocol = true").await;
    let cf = "CF-Connecting-IP: 149.154.167.1\r\nX-Forwarded-For: 149.154.167.1\r\n";
    for _ in 0..2 {
        let refused = through_proxy_protocol(&daemon, "104.16.0.1", &update(cf));
        assert_eq!((refused.status, refused.body_text().as_str()), (403, "forbidden\n"));
    }
    assert!(backend.seen().is_empty());
    daemon.wait_for_lines("status=403", 2, Duration::from_secs(5));
    let snapshot = status_json(&daemon);
    let seen = &snapshot["cloudflare_untrusted"];
    assert_eq!((seen["route"].as_str(), seen["via"].as_str()), (Some("telegram-webhook"), Some("104.16.0.1")));
    assert_eq!(seen["hint"], HINT);
    let trouble = snapshot["trouble"].as_array().unwrap();
    assert!(trouble.iter().any(|t| t.as_str().unwrap().contains(HINT)), "{trouble:?}");
    let page = raw(daemon.admin.unwrap(), b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert!(page.body_text().contains(HINT), "the HTML page's list of what needs attention");

    // `hookgate status` reads the same document.
    let config = std::fs::read_to_string(&daemon.config_path).unwrap();
    let cli = daemon.dir().join("cli.toml");
    let admin = format!("addr = \"{}\"", daemon.admin.unwrap());
    std::fs::write(&cli, config.replacen("addr = \"127.0.0.1:0\"", &admin, 1)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate")).args(["status", "-c"]).arg(&cli).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("verdict: needs attention") && said.contains(HINT), "{said}");

    // Two refusals within the minute, one line; every line is in once the daemon has stopped.
    let lines = daemon.stop();
    let hints: Vec<&String> = lines.iter().filter(|l| l.contains(HINT)).collect();
    assert_eq!(hints.len(), 1, "{hints:#?}");
    assert!(hints[0].contains("WARN") && hints[0].contains("client=104.16.0.1"), "{}", hints[0]);
}

/// `CF-Connecting-IP` is believed only from a trusted Cloudflare hop: not
/// from an untrusted peer, nor from a trusted proxy that is not Cloudflare
/// and names no Cloudflare hop before it.
#[tokio::test(flavor = "multi_thread")]
async fn a_spoofed_cf_connecting_ip_is_ignored() {
    let (backend, daemon) = daemon("trusted_proxies = [\"cloudflare\", \"127.0.0.1\"]").await;
    let spoof = "CF-Connecting-IP: 149.154.167.1\r\n";
    let from_stranger = raw_from("127.0.0.3", daemon.addr, update(spoof).as_bytes());
    assert_eq!(from_stranger.status, 403);
    let line = daemon.wait_for_log("client=127.0.0.3", Duration::from_secs(5));
    assert!(line.contains("status=403"), "{line}");
    assert_eq!(raw_from("127.0.0.1", daemon.addr, update(spoof).as_bytes()).status, 403, "no Cloudflare hop");
    // A client that writes a Cloudflare hop itself is still the hop nginx saw.
    let forged = "CF-Connecting-IP: 149.154.167.1\r\nX-Forwarded-For: 104.16.0.1, 127.0.0.3\r\n";
    assert_eq!(raw_from("127.0.0.1", daemon.addr, update(forged).as_bytes()).status, 403);
    assert!(backend.seen().is_empty(), "no refused request reaches the backend");

    // nginx on 127.0.0.1 in front, Cloudflare before it: the real path passes.
    let nginx = "CF-Connecting-IP: 149.154.167.1\r\nX-Forwarded-For: 149.154.167.1, 104.16.0.1\r\n";
    assert_eq!(raw_from("127.0.0.1", daemon.addr, update(nginx).as_bytes()).status, 200);
    assert_eq!(backend.seen()[0].headers["x-forwarded-for"], "149.154.167.1, 104.16.0.1, 127.0.0.1");
    common::eventually(Duration::from_secs(5), || access_lines(&daemon).len() >= 4);
    let mut clients: Vec<String> = access_lines(&daemon).iter().filter_map(|l| field(l, "client")).collect();
    clients.sort();
    assert_eq!(clients, ["127.0.0.1", "127.0.0.3", "127.0.0.3", "149.154.167.1"]);
}

/// An `X-Forwarded-For` line with a byte past ASCII (a client's own value,
/// on the line nginx's `$proxy_add_x_forwarded_for` adds the real address
/// to) is read entry by entry, and reaches the upstream whole: it was skipped,
/// so the trusted proxy became the client (found by a hostile probe: past an
/// `allow_from` that names loopback).
#[tokio::test(flavor = "multi_thread")]
async fn a_forwarded_for_line_with_bytes_past_ascii_still_names_the_client() {
    let (backend, daemon) = daemon("trusted_proxies = [\"127.0.0.1\"]").await;
    let nginx = "X-Forwarded-For: \u{80}, 149.154.167.1\r\n";
    assert_eq!(raw_from("127.0.0.1", daemon.addr, update(nginx).as_bytes()).status, 200);
    let seen = backend.seen()[0].headers["x-forwarded-for"].as_bytes().to_vec();
    assert_eq!(seen, "\u{80}, 149.154.167.1, 127.0.0.1".as_bytes());
    common::eventually(Duration::from_secs(5), || !access_lines(&daemon).is_empty());
    assert_eq!(field(&access_lines(&daemon)[0], "client").as_deref(), Some("149.154.167.1"));
}

/// The value of `name=` in a text log line.
fn field(line: &str, name: &str) -> Option<String> {
    line.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=').map(String::from))
}

/// Binds `[::]:0` with IPv4 accepted, or says why this machine cannot.
fn dual_stack_available() -> bool {
    let socket = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None);
    let ok = socket.is_ok_and(|s| {
        s.set_only_v6(false).is_ok() && s.bind(&"[::]:0".parse::<std::net::SocketAddr>().unwrap().into()).is_ok()
    });
    // Not a tool `.ci/run` could install: a kernel without IPv6 skips this even in CI.
    if !ok {
        common::say("skipped: this machine cannot bind a dual-stack [::] socket (no IPv6)");
    }
    ok
}

/// An IPv4 client of a `[::]` listener is `::ffff:127.0.0.1` to the socket;
/// everywhere hookgate writes it, it is `127.0.0.1`: the access line, the
/// upstream's `X-Forwarded-For`, the status page (here through a PROXY
/// source), and the trusted-proxy check (`127.0.0.1` trusts it).
#[tokio::test(flavor = "multi_thread")]
async fn ipv4_clients_of_a_dual_stack_listener_are_ipv4() {
    if !dual_stack_available() {
        return;
    }
    let backend = Upstream::start("backend").await;
    let config = |listen: &str| {
        format!(
            "[listen]\naddrs = [\"[::]:0\"]\n{listen}\n[admin]\naddr = \"127.0.0.1:0\"\n[upstreams.backend]\n\
             url = \"{}\"\n[[routes]]\nname = \"hook\"\npath = \"/hook\"\nupstream = \"backend\"\n\
             allow_from = [\"127.0.0.0/8\"]\n[default]\nupstream = \"backend\"\n",
            backend.url()
        )
    };
    let daemon = Daemon::start(&config(""));
    assert!(daemon.addr.is_ipv6(), "{}", daemon.addr);
    let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], daemon.addr.port()));
    let request = "POST /hook HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    assert_eq!(raw(v4, request.as_bytes()).status, 200, "allow_from 127.0.0.0/8 matches the mapped address");
    assert_eq!(backend.seen()[0].headers["x-forwarded-for"], "127.0.0.1");
    let access = || daemon.logs().into_iter().find(|l| l.contains("hookgate::access") && l.contains("path=/hook"));
    assert!(common::eventually(Duration::from_secs(5), || access().is_some()), "no access line");
    let line = access().unwrap();
    assert_eq!(field(&line, "client").as_deref(), Some("127.0.0.1"), "{line}");
    assert!(!line.contains("::ffff:"), "{line}");

    // Trusted as 127.0.0.1, its PROXY source (mapped too) is Cloudflare's, untrusted: the
    // refusal's hint names 104.16.0.1 on the status page.
    let daemon = Daemon::start(&config("trusted_proxies = [\"127.0.0.1\"]\nproxy_protocol = true"));
    let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], daemon.addr.port()));
    let mut stream = connect_from("127.0.0.1", v4);
    let proxied = format!("PROXY TCP6 ::ffff:104.16.0.1 ::1 50000 80\r\n{request}");
    std::io::Write::write_all(&mut stream, proxied.as_bytes()).unwrap();
    assert_eq!(read_response(&mut stream).unwrap().status, 403, "104.16.0.1 is not in 127.0.0.0/8");
    let snapshot = status_json(&daemon);
    assert_eq!(snapshot["cloudflare_untrusted"]["via"], "104.16.0.1", "{snapshot}");
    let page = raw(daemon.admin.unwrap(), b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let html = page.body_text();
    assert!(html.contains("104.16.0.1") && !html.contains("::ffff:"), "status page");
    let line = daemon.wait_for_log("status=403", Duration::from_secs(5));
    assert_eq!(field(&line, "client").as_deref(), Some("104.16.0.1"), "{line}");
    assert!(!line.contains("::ffff:"), "{line}");
}

/// An IPv4 and an IPv6 listener on one port (`["0.0.0.0:80", "[::]:80"]`,
/// the README's and nginx's habit) both start, the IPv6 one kept to IPv6
/// (its dual-stack half would clash with the IPv4 one), with one runtime and
/// with several (SO_REUSEPORT and the probe bind); each family is served.
#[tokio::test(flavor = "multi_thread")]
async fn an_ipv4_and_an_ipv6_listener_share_a_port() {
    if !dual_stack_available() {
        return;
    }
    let backend = Upstream::start("backend").await;
    for workers in [1, 2] {
        let port = common::free_port();
        let daemon = Daemon::start(&format!(
            "[runtime]\nworkers = {workers}\n[listen]\naddrs = [\"127.0.0.1:{port}\", \"[::]:{port}\"]\n\
             [upstreams.backend]\nurl = \"{}\"\n[default]\nupstream = \"backend\"\n",
            backend.url()
        ));
        for addr in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
            let response = raw(addr.parse().unwrap(), b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
            assert_eq!(response.status, 200, "workers = {workers}, {addr}");
        }
        let line = daemon.wait_for_log("client=::1", Duration::from_secs(5));
        assert!(line.contains("status=200"), "{line}");
    }
}

/// The same rule on HTTP/2 (hyper's service, not the HTTP/1 engine): through
/// nginx on 127.0.0.1 behind Cloudflare, Telegram's update passes; a forged
/// Cloudflare hop does not.
#[tokio::test(flavor = "multi_thread")]
async fn http2_clients_get_the_same_rule() {
    use common::tls_client::{Front, Pki, tls_config};
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let config = tls_config(&pki, &app, "allow_from = [\"telegram\"]").replacen(
        "addrs = []\n",
        "addrs = []\ntrusted_proxies = [\"cloudflare\", \"127.0.0.1\"]\n",
        1,
    );
    let daemon = Daemon::start(&config);
    let mut front = Front::connect(&pki, daemon.addr, true).await;
    let post = |xff: &str| {
        http::Request::post(format!("https://a.test{WEBHOOK}"))
            .header("cf-connecting-ip", "149.154.167.1")
            .header("x-forwarded-for", xff)
            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{\"update_id\":1}")))
            .unwrap()
    };
    assert_eq!(front.send(post("149.154.167.1, 104.16.0.1")).await.0, 200);
    assert_eq!(front.send(post("104.16.0.1, 127.0.0.3")).await.0, 403);
    assert_eq!(app.seen().len(), 1);
    assert_eq!(app.seen()[0].headers["x-forwarded-for"], "149.154.167.1, 104.16.0.1, 127.0.0.1");
    let line = daemon.wait_for_log("status=200", Duration::from_secs(5));
    assert_eq!(field(&line, "client").as_deref(), Some("149.154.167.1"), "{line}");
}

fn hookgate(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate")).args(args).env_remove("HOOKGATE_CONFIG").output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

/// `init --cloudflare` writes the trusted set; `check` prints it with the
/// list's date; `route --from` a Cloudflare address shows both cases.
#[test]
fn init_check_and_route_speak_cloudflare() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookgate.toml");
    let file = path.to_str().unwrap();
    let (code, said) = hookgate(&[
        "init",
        "--frontend",
        "http://127.0.0.1:3000",
        "--backend",
        "http://127.0.0.1:7001",
        "--domain",
        "www.example.com",
        "--tls",
        "acme",
        "--cloudflare",
        "-o",
        file,
    ]);
    assert_eq!(code, Some(0), "{said}");
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.contains("\ntrusted_proxies = [\"cloudflare\", \"127.0.0.1\"]"), "{written}");
    assert!(written.contains("\nchallenge = \"http-01\""), "tls-alpn-01 cannot pass Cloudflare: {written}");

    let (code, said) = hookgate(&["check", "-c", file]);
    assert_eq!(code, Some(0), "{said}");
    let line = said.lines().find(|l| l.starts_with("set cloudflare: ")).unwrap_or_else(|| panic!("{said}"));
    let date = line.split("as of ").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap_or_default();
    assert!(date.len() == 10 && date.as_bytes()[4] == b'-' && date[..4].parse::<u16>().is_ok(), "{line}");
    assert!(line.contains("15 IPv4, 7 IPv6"), "{line}");
    assert!(said.contains("trusted_proxies = [\"cloudflare\", \"127.0.0.1\"]"), "{said}");

    let url = "https://www.example.com/api/v1/guest/telegram/webhook?access_token=x";
    let route = |file: &str| {
        hookgate(&["route", "-c", file, "--from", "104.16.0.1", "-H", "CF-Connecting-IP: 149.154.167.1", "POST", url])
    };
    let (code, trusted) = route(file);
    assert_eq!(code, Some(0), "{trusted}");
    assert!(trusted.contains("client: 149.154.167.1 (from CF-Connecting-IP"), "{trusted}");
    assert!(trusted.contains("allow_from [telegram]: 149.154.167.1 is allowed"), "{trusted}");
    assert!(!trusted.contains(HINT), "{trusted}");

    let untrusting = dir.path().join("untrusting.toml");
    std::fs::write(&untrusting, written.replace("[\"cloudflare\", \"127.0.0.1\"]", "[\"127.0.0.1\"]")).unwrap();
    let (_, refused) = route(untrusting.to_str().unwrap());
    assert!(refused.contains("client: 104.16.0.1 (the peer; it is not in [listen] trusted_proxies"), "{refused}");
    assert!(refused.contains("104.16.0.1 is NOT allowed (403)"), "{refused}");
    assert!(refused.contains(&format!("hint: 104.16.0.1 is Cloudflare's: {HINT}")), "{refused}");
    assert!(refused.contains("refuses this request with 403"), "{refused}");

    // Behind a panel's nginx and Cloudflare: --compose host's loopback and the set, merged.
    let panel = dir.path().join("panel.toml");
    let panel = panel.to_str().unwrap();
    let args = ["init", "--compose", "host", "--domain", "www.example.com", "--cloudflare", "-o", panel];
    let (code, said) = hookgate(&args);
    assert_eq!(code, Some(0), "{said}");
    let written = std::fs::read_to_string(panel).unwrap();
    assert_eq!(written.matches("\ntrusted_proxies = ").count(), 1, "{written}");
    assert!(written.contains("\ntrusted_proxies = [\"cloudflare\", \"127.0.0.1\"]"), "{written}");
    let nginx = ["-H", "X-Forwarded-For: 149.154.167.1, 104.16.0.1", "-H", "CF-Connecting-IP: 149.154.167.1"];
    let (code, said) = hookgate(&[&["route", "-c", panel, "--from", "127.0.0.1"][..], &nginx, &["POST", url]].concat());
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("allow_from [telegram]: 149.154.167.1 is allowed"), "{said}");
}

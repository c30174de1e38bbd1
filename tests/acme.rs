//! `[listen.tls.acme]` against a real ACME server: Debian's pebble, started
//! per test on loopback (`common::pebble`). Each test prints the orders pebble
//! recorded, and asserts on how many there were.

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::pebble::{Pebble, PebbleOptions};
use common::tls_client::{connect, peek_client, presented, trusting};
use common::{Daemon, Upstream, get};
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::client::TlsStream;

const DOMAINS: [&str; 2] = ["shop.test", "www.shop.test"];
const ISSUED: &str = "ACME: obtained a certificate";

fn config(pebble: &Pebble, app: &Upstream, cache: &Path, challenge: &str, extra: &str) -> String {
    format!(
        r#"
[listen]
addrs = ["127.0.0.1:0"]
{extra}
[listen.tls]
addrs = ["127.0.0.1:{tls}"]
{acme}[admin]
addr = "127.0.0.1:0"
[upstreams.app]
url = "{app}"
[default]
upstream = "app"
"#,
        tls = pebble.tls_port,
        acme = pebble.acme_table(cache, challenge),
        app = app.url(),
    )
}

/// hookgate's TLS listener, on pebble's tls-alpn-01 port.
fn at(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// One keep-alive GET on `stream`; the status line.
async fn get_over(stream: &mut TlsStream<tokio::net::TcpStream>, host: &str) -> String {
    let request = format!("GET /shop HTTP/1.1\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "connection closed mid-response");
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let length: usize = text
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    text.lines().next().unwrap().to_string()
}

fn show_orders(test: &str, pebble: &Pebble) -> usize {
    let orders = pebble.orders();
    println!("{test}: pebble recorded {} orders", orders.len());
    for order in &orders {
        println!("  {order}");
    }
    orders.len()
}

/// The DNS names on a certificate, sorted.
fn names(cert: &CertificateDer<'_>) -> Vec<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).unwrap();
    let san = parsed.subject_alternative_name().unwrap().unwrap();
    let mut names: Vec<String> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
            _ => None,
        })
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn http01_is_answered_on_the_redirect_listener_and_the_certificate_is_served() {
    let Some(pebble) = Pebble::start(PebbleOptions::default()) else { return };
    let app = Upstream::start("app").await;
    let cache = tempfile::tempdir().unwrap();
    // Port 80's stand-in is a redirect listener: the challenge must be exempt from the redirect.
    let redirect = format!("[listen.redirect]\naddrs = [\"127.0.0.1:{}\"]", pebble.http_port);
    let daemon = Daemon::start(&config(&pebble, &app, cache.path(), "http-01", &redirect));
    daemon.wait_for_log(ISSUED, Duration::from_secs(60));

    let root = pebble.root_file();
    for name in DOMAINS {
        let mut stream = connect(&trusting(&root, &[]), at(pebble.tls_port), name).await;
        assert_eq!(names(&presented(&stream)), DOMAINS, "one certificate for both names");
        assert_eq!(get_over(&mut stream, name).await, "HTTP/1.1 200 OK");
    }
    let validations = pebble.log().lines().filter(|l| l.contains("set VALID by completed challenge")).count();
    assert_eq!(validations, 2, "pebble validated both names over http-01:\n{}", pebble.log());
    let answered =
        daemon.logs().iter().filter(|l| l.contains("route=acme-challenge") && l.contains("status=200")).count();
    assert!(answered >= 2, "the challenge answers are in the access log: {:?}", daemon.logs());
    // Once the order is done, the tokens are gone: the path falls through to the redirect.
    let after = get(SocketAddr::from(([127, 0, 0, 1], pebble.http_port)), "shop.test", "/.well-known/acme-challenge/x");
    assert_eq!(after.status, 308);
    let files = cache.path().read_dir().unwrap().next().unwrap().unwrap().path();
    for file in ["account.json", "cert.pem", "key.pem"] {
        let mode = std::os::unix::fs::PermissionsExt::mode(&files.join(file).metadata().unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "{file} is private");
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(&cache.path().metadata().unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "cache_dir is 0700");
    assert_eq!(show_orders("http-01 first issuance", &pebble), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_alpn01_issues_once_and_a_restart_reuses_the_cached_certificate() {
    let Some(pebble) = Pebble::start(PebbleOptions::default()) else { return };
    let app = Upstream::start("app").await;
    let cache = tempfile::tempdir().unwrap();
    let config = config(&pebble, &app, cache.path(), "tls-alpn-01", "");
    let first = {
        let daemon = Daemon::start(&config);
        daemon.wait_for_log(ISSUED, Duration::from_secs(60));
        let mut stream = connect(&trusting(&pebble.root_file(), &[]), at(pebble.tls_port), "shop.test").await;
        assert_eq!(get_over(&mut stream, "shop.test").await, "HTTP/1.1 200 OK");
        presented(&stream)
    };
    assert_eq!(show_orders("tls-alpn-01 first issuance", &pebble), 1);

    let daemon = Daemon::start(&config);
    daemon.wait_for_log("ACME: serving the cached certificate", Duration::from_secs(20));
    let stream = connect(&trusting(&pebble.root_file(), &[]), at(pebble.tls_port), "www.shop.test").await;
    assert_eq!(presented(&stream), first, "the restart serves the cached certificate");
    assert!(!daemon.logs().iter().any(|l| l.contains("registered an ACME account")), "the account is reused too");
    // A reload with the table unchanged keeps the store and its task: no second start, no order.
    daemon.signal("HUP");
    daemon.wait_for_log("reloaded", Duration::from_secs(10));
    let starts = daemon.logs().iter().filter(|l| l.contains("ACME: managing the certificate")).count();
    assert_eq!(starts, 1, "the ACME task carried over the reload");
    assert_eq!(presented(&connect(&peek_client(), at(pebble.tls_port), "shop.test").await), first);
    assert_eq!(show_orders("tls-alpn-01 after a restart", &pebble), 1, "no new order at restart");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_lived_certificate_is_renewed_without_dropping_connections() {
    // 6 s certificates: renewal is due with a third of that left, 4 s after issue.
    let validity = Duration::from_secs(6);
    let Some(pebble) = Pebble::start(PebbleOptions { validity, ..PebbleOptions::default() }) else { return };
    let app = Upstream::start("app").await;
    let cache = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&config(&pebble, &app, cache.path(), "tls-alpn-01", ""));
    daemon.wait_for_log(ISSUED, Duration::from_secs(60));
    let root = pebble.root_file();
    let mut open = connect(&trusting(&root, &[]), at(pebble.tls_port), "shop.test").await;
    let first = presented(&open);
    assert_eq!(get_over(&mut open, "shop.test").await, "HTTP/1.1 200 OK");

    daemon.wait_for_lines(ISSUED, 2, Duration::from_secs(60));
    let fresh = connect(&trusting(&root, &[]), at(pebble.tls_port), "shop.test").await;
    assert_ne!(presented(&fresh), first, "new handshakes get the renewed certificate");
    assert_eq!(get_over(&mut open, "shop.test").await, "HTTP/1.1 200 OK", "the open connection keeps working");
    assert!(show_orders("renewal of a 6 s certificate", &pebble) >= 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_order_leaves_the_cached_certificate_serving() {
    let options = PebbleOptions { blocklist: &["shop.test"], ..PebbleOptions::default() };
    let Some(pebble) = Pebble::start(options) else { return };
    let app = Upstream::start("app").await;
    let cache = tempfile::tempdir().unwrap();
    // A cached certificate one day from expiry: due for renewal at once.
    let folder = cache.path().join(pebble.directory.trim_start_matches("https://").replace([':', '/'], "_"));
    std::fs::create_dir_all(&folder).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(DOMAINS.map(String::from).to_vec()).unwrap();
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(89);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    let cached = params.self_signed(&key).unwrap();
    std::fs::write(folder.join("cert.pem"), cached.pem()).unwrap();
    std::fs::write(folder.join("key.pem"), key.serialize_pem()).unwrap();

    let daemon = Daemon::start(&config(&pebble, &app, cache.path(), "tls-alpn-01", ""));
    let failure = daemon.wait_for_log("ACME: obtaining a certificate failed", Duration::from_secs(60));
    assert!(failure.contains("rejectedIdentifier"), "the problem document is in the line: {failure}");
    assert!(failure.contains("the current certificate keeps serving"), "{failure}");
    let mut stream = connect(&peek_client(), at(pebble.tls_port), "shop.test").await;
    assert_eq!(presented(&stream), *cached.der(), "the cached certificate still serves");
    assert_eq!(get_over(&mut stream, "shop.test").await, "HTTP/1.1 200 OK");

    let admin = daemon.admin.unwrap();
    let metrics = get(admin, "localhost", "/metrics").body_text();
    assert!(metrics.contains("hookgate_acme_attempts_total{result=\"failure\"} 1"), "{metrics}");
    assert!(metrics.contains("hookgate_tls_certificate_expiry_days"), "the ACME certificate is measured: {metrics}");
    let status: serde_json::Value = serde_json::from_str(&get(admin, "localhost", "/status.json").body_text()).unwrap();
    assert_eq!(status["acme"]["state"], "failing", "{status}");
    assert!(status["acme"]["last_error"].as_str().unwrap().contains("rejectedIdentifier"));
    let page = get(admin, "localhost", "/").body_text();
    assert!(page.contains("<p id=\"acme\">ACME (tls-alpn-01"), "the status page shows ACME: {page}");
    assert!(page.contains("failing"), "{page}");
    assert_eq!(show_orders("an order pebble refuses", &pebble), 0);
}

#[test]
fn check_names_what_will_be_obtained_and_warns_about_the_challenge_port() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hookgate.toml");
    let config = |challenge: &str, tls_port: u16| {
        format!(
            "[listen]\naddrs = [\"127.0.0.1:8080\"]\n[listen.tls]\naddrs = [\"0.0.0.0:{tls_port}\"]\n[listen.tls.acme]\n\
             domains = [\"shop.test\", \"www.shop.test\"]\nchallenge = \"{challenge}\"\ncache_dir = \"acme\"\n\
             [upstreams.app]\nurl = \"http://127.0.0.1:3000\"\n[default]\nupstream = \"app\"\n"
        )
    };
    let check = |text: String| {
        std::fs::write(&file, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .arg("check")
            .arg("-c")
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    let http01 = check(config("http-01", 443));
    assert!(
        http01
            .contains("acme: shop.test, www.shop.test by http-01 from https://acme-v02.api.letsencrypt.org/directory"),
        "{http01}"
    );
    assert!(http01.contains("no cached certificate: these names will be obtained at start"), "{http01}");
    assert!(http01.contains("uses http-01, which the ACME server checks on port 80, but no [listen]"), "{http01}");
    let alpn = check(config("tls-alpn-01", 8443));
    assert!(alpn.contains("uses tls-alpn-01, which the ACME server checks on port 443"), "{alpn}");
    let fine = check(config("tls-alpn-01", 443));
    assert!(!fine.contains("which the ACME server checks"), "{fine}");
    assert!(!dir.path().join("acme").exists(), "check creates nothing");
}

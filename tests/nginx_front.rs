//! Debian's nginx in front of hookgate, as behind aaPanel's or 1Panel's
//! OpenResty (issue 33): nginx terminates TLS with a test certificate and
//! sends the site to hookgate on loopback with the `location` block of the
//! README's "Behind aaPanel, 1Panel or another nginx", read from the README
//! itself so the two cannot drift; hookgate trusts `127.0.0.1`, as that
//! section says.
//!
//! What this shows: a webhook sent by curl through nginx reaches the backend
//! with the address nginx appended as hookgate's client address, and
//! `X-Forwarded-Proto: https`; a WebSocket upgrade on `/ws` passes both ways.
//! What it cannot: send from Telegram's addresses. Its client connects from
//! 127.0.0.1 with `X-Forwarded-For: 149.154.167.220`, a trusted hop standing
//! in for the network between Telegram and nginx, so the chain hookgate reads
//! from the right is Telegram's address, then loopback (trusted, skipped). The
//! same request from 127.0.0.2, an address nobody trusts, is refused by the
//! route's `allow_from = ["telegram"]`: the address nginx saw counts, and a
//! client's own `X-Forwarded-For` does not.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::tls_client::{Pki, client, connect};
use common::{Daemon, Upstream, eventually, free_port, have_tool};

const SECTION: &str = "### Behind aaPanel, 1Panel or another nginx";

/// The README section's nginx `location` block and its `trusted_proxies` line.
fn readme_block() -> (String, &'static str) {
    let readme = include_str!("../README.md");
    let (_, section) = readme.split_once(SECTION).expect("the README has the section");
    let section = section.split("\n## ").next().unwrap().split("\n### ").next().unwrap();
    let (_, block) = section.split_once("```nginx\n").expect("the section has an nginx block");
    let (block, _) = block.split_once("```").unwrap();
    let trusted = "trusted_proxies = [\"127.0.0.1\"]";
    assert!(section.contains(trusted), "the section names {trusted}");
    assert!(block.contains("proxy_pass http://127.0.0.1:8080;"), "{block}");
    (block.to_string(), trusted)
}

/// nginx run as this user from a temporary prefix, stopped on drop.
struct Nginx {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// nginx serving `panel.test` over TLS on a free loopback port, with `block` in its server.
    fn start(pki: &Pki, block: &str) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let prefix = dir.path().display();
        let (cert, key) = (pki.path("site.pem"), pki.path("site.key"));
        // One process (no master, no workers): it runs as whoever starts it and
        // goes with the kill on drop.
        let config = format!(
            "pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log info;\nevents {{ worker_connections 64; }}\n\
             http {{\n    access_log off;\n    client_body_temp_path {prefix}/body;\n    proxy_temp_path {prefix}/proxy;\n\
             \x20   fastcgi_temp_path {prefix}/fastcgi;\n    uwsgi_temp_path {prefix}/uwsgi;\n    scgi_temp_path {prefix}/scgi;\n\
             \x20   server {{\n        listen 127.0.0.1:{port} ssl;\n        server_name panel.test;\n\
             \x20       ssl_certificate {cert};\n        ssl_certificate_key {key};\n{block}    }}\n}}\n"
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config).unwrap();
        let child = Command::new("nginx")
            .args(["-e", &format!("{prefix}/error.log"), "-p", &prefix.to_string(), "-c"])
            .arg(&conf)
            .args(["-g", "daemon off; master_process off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut nginx = Nginx { child, port, dir };
        let up = eventually(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() || nginx.child.try_wait().unwrap().is_some()
        });
        let running = nginx.child.try_wait().unwrap().is_none();
        assert!(up && running, "nginx did not start: {}", nginx.error_log());
        nginx
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Telegram-like update POSTed by curl to nginx from the local address
/// `from`, claiming Telegram's address; the status and body.
fn post_update(pki: &Pki, nginx: &Nginx, from: &str) -> (u16, String) {
    let url = format!("https://panel.test:{}/api/v1/guest/telegram/webhook?access_token=x", nginx.port);
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--cacert", &pki.path("ca.pem"), "--interface", from])
        .args(["--resolve", &format!("panel.test:{}:127.0.0.1", nginx.port)])
        .args(["-H", "Content-Type: application/json", "-H", "X-Forwarded-For: 149.154.167.220"])
        .args(["--data-binary", r#"{"update_id":7}"#, "-w", "\n%{http_code}", &url])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "curl: {}{said}", String::from_utf8_lossy(&out.stderr));
    let (body, status) = said.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_with_the_readmes_block_passes_the_client_https_and_websockets() {
    if !have_tool("nginx", "nginx-light") || !have_tool("curl", "curl") {
        return;
    }
    let (block, trusted) = readme_block();
    let backend = Upstream::start("backend").await;
    let config = format!(
        "[listen]\naddrs = [\"127.0.0.1:0\"]\n{trusted}\n\n[upstreams.backend]\nurl = \"{}\"\n\n\
         [[routes]]\nname = \"telegram-webhook\"\npath = \"/api/v1/guest/telegram/webhook\"\nmethods = [\"POST\"]\n\
         upstream = \"backend\"\nallow_from = [\"telegram\"]\n\n[default]\nupstream = \"backend\"\n",
        backend.url()
    );
    let daemon = Daemon::start(&config);
    let pki = Pki::new();
    pki.issue("site", &["panel.test"]);
    let nginx = Nginx::start(&pki, &block.replace("127.0.0.1:8080", &daemon.addr.to_string()));

    // Telegram's address, from a trusted hop: allowed, and XBoard hears https.
    assert_eq!(post_update(&pki, &nginx, "127.0.0.1"), (200, "backend".to_string()), "{}", nginx.error_log());
    let seen = backend.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, r#"{"update_id":7}"#);
    assert_eq!(seen[0].headers["x-forwarded-proto"], "https");
    assert_eq!(seen[0].headers["host"], "panel.test");
    let chain = seen[0].headers["x-forwarded-for"].to_str().unwrap().to_string();
    assert!(chain.starts_with("149.154.167.220, 127.0.0.1"), "X-Forwarded-For: {chain}");

    // The same claim from an address nobody trusts: nginx appends 127.0.0.2,
    // which is the client hookgate sees, and not one of Telegram's.
    let (status, _) = post_update(&pki, &nginx, "127.0.0.2");
    assert_eq!(status, 403);
    assert_eq!(backend.seen().len(), 1, "the refused update never reached the backend");

    websocket_passes(&pki, &nginx, &backend).await;
    drop(daemon);
}

/// A WebSocket upgrade on `/ws` through nginx and hookgate, and bytes both ways.
async fn websocket_passes(pki: &Pki, nginx: &Nginx, backend: &Upstream) {
    let addr = format!("127.0.0.1:{}", nginx.port).parse().unwrap();
    let mut stream = connect(&client(pki, &[b"http/1.1"]), addr, "panel.test").await;
    let upgrade = "GET /ws HTTP/1.1\r\nHost: panel.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                   Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    stream.write_all(upgrade.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    // A bound on a hang, not a timed assertion.
    let read_head = async {
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(
                stream.read(&mut byte).await.unwrap(),
                1,
                "closed in the head: {}",
                String::from_utf8_lossy(&head)
            );
            head.push(byte[0]);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read_head).await.expect("no answer to the upgrade");
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}\n{}", nginx.error_log());
    assert!(head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "{head}");
    let seen = backend.seen().into_iter().find(|s| s.target == "/ws").expect("the upgrade reached the backend");
    assert_eq!(seen.headers["upgrade"], "websocket");
    assert_eq!(seen.headers["x-forwarded-proto"], "https");
    for message in ["ping-1", "a longer second frame of bytes"] {
        stream.write_all(message.as_bytes()).await.unwrap();
        let mut echoed = vec![0u8; message.len()];
        stream.read_exact(&mut echoed).await.unwrap();
        assert_eq!(echoed, message.as_bytes());
    }
}

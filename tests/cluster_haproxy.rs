//! The README's "Several hosts" layout, run: Debian's HAProxy in TCP mode
//! with `send-proxy-v2` in front of two hookgates that share a redis-server,
//! each with the README's own `[listen]` and `[cluster]` lines (read from the
//! README, so the two cannot drift), addresses moved to loopback: the
//! balancer's 10.0.0.2 becomes 127.0.0.1, the hosts' ports free ones, and
//! `[listen.tls]` left out (its ACME order would go to Let's Encrypt). The
//! README's haproxy.cfg is used whole, its `defaults` and timeouts included.
//!
//! What this shows: HAProxy spreads the connections over both hosts, each
//! host reads the client's address from the PROXY header (a client on
//! 127.0.0.2 is `X-Forwarded-For: 127.0.0.2` at the backend, not the
//! balancer's 127.0.0.1), and both hosts share one cluster with one leader.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use common::redis::Redis;
use common::{Daemon, Upstream, eventually, free_port, have_tool, raw, raw_from};

const SECTION: &str = "## Several hosts";

/// The README section's haproxy.cfg and hookgate.toml blocks.
fn readme_blocks() -> (String, String) {
    let readme = include_str!("../README.md");
    let (_, section) = readme.split_once(SECTION).expect("the README has the section");
    let section = section.split("\n## ").next().unwrap();
    let block = |fence: &str, first: &str| {
        let (_, block) = section.split_once(&format!("{fence}{first}")).expect(first);
        format!("{first}{}", block.split_once("```").unwrap().0)
    };
    (block("```\n", "# haproxy.cfg"), block("```toml\n", "# hookgate.toml"))
}

/// HAProxy in the foreground from a temporary folder, killed on drop.
struct Haproxy {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_haproxy(cfg: &str, port: u16) -> Haproxy {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, format!("global\n    maxconn 256\n{cfg}")).unwrap();
    let child = Command::new("haproxy").arg("-db").arg("-f").arg(&path).stdout(Stdio::null()).spawn().unwrap();
    let up = eventually(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert!(up, "haproxy listens on {port}");
    Haproxy { child, _dir: dir }
}

/// The README's hookgate.toml for `node`, on loopback, with `app` as the site,
/// without its `[listen.tls]` tables (the ACME order would go to Let's
/// Encrypt; HAProxy passes the bytes of port 443 as it does those of 80).
fn hookgate_config(block: &str, redis: &Redis, node: &str, app: &Upstream) -> String {
    let (before_tls, rest) = block.split_once("[listen.tls]").expect("the README's toml has [listen.tls]");
    let (_, from_cluster) = rest.split_once("[cluster]").expect("and [cluster] after it");
    let block = format!("{before_tls}[cluster]{from_cluster}");
    let listen = block
        .replace("\"0.0.0.0:80\"", "\"127.0.0.1:0\"")
        .replace("\"10.0.0.2\"", "\"127.0.0.1\"")
        .replace("redis://10.0.0.5:6379/0", &redis.url)
        .replace("\"edge-1\"", &format!("\"{node}\""));
    // The test's Redis has no password.
    let listen: String = listen.lines().filter(|l| !l.starts_with("password_file")).map(|l| format!("{l}\n")).collect();
    format!(
        "{listen}\n[admin]\naddr = \"127.0.0.1:0\"\n[upstreams.app]\nurl = \"{}\"\n[default]\nupstream = \"app\"\n",
        app.url()
    )
}

fn start_host(block: &str, redis: &Redis, node: &str, app: &Upstream) -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("credentials")).unwrap();
    std::fs::write(
        dir.path().join("credentials/cluster.key"),
        "5f1d0c7e9a8b6f4e3d2c1b0a99887766554433221100ffeeddccbbaa99887766\n",
    )
    .unwrap();
    let daemon = Daemon::start_in(dir.path(), &hookgate_config(block, redis, node, app));
    (dir, daemon)
}

fn cluster(daemon: &Daemon) -> Value {
    let request = b"GET /status.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let status: Value = serde_json::from_str(&raw(daemon.admin.unwrap(), request).body_text()).unwrap();
    status["cluster"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn haproxy_in_tcp_mode_spreads_clients_over_two_hosts_that_keep_their_address() {
    if !have_tool("haproxy", "haproxy") {
        return;
    }
    let Some(redis) = Redis::start() else { return };
    let (cfg, toml) = readme_blocks();
    assert!(cfg.contains("mode tcp") && cfg.contains("send-proxy-v2"), "{cfg}");
    assert!(toml.contains("proxy_protocol = true") && toml.contains("[cluster]"), "{toml}");
    let app = Upstream::start("app").await;
    let (_dir_a, a) = start_host(&toml, &redis, "edge-1", &app);
    let (_dir_b, b) = start_host(&toml, &redis, "edge-2", &app);

    let (port, tls_port) = (free_port(), free_port());
    let cfg = cfg
        .replace("bind :80", &format!("bind 127.0.0.1:{port}"))
        .replace("bind :443", &format!("bind 127.0.0.1:{tls_port}"))
        .replace("10.0.0.11:80", &a.addr.to_string())
        .replace("10.0.0.12:80", &b.addr.to_string())
        .replace("10.0.0.11:443", &a.addr.to_string())
        .replace("10.0.0.12:443", &b.addr.to_string());
    let _haproxy = start_haproxy(&cfg, port);
    let balancer = std::net::SocketAddr::from(([127, 0, 0, 1], port));

    // Round robin over the hosts HAProxy's checks find up: under load one may
    // not be up for the first requests, so send until both served two.
    let served = |d: &Daemon| d.logs().iter().filter(|l| l.contains("/page/")).count();
    let mut sent = 0;
    while sent < 40 && (served(&a) < 2 || served(&b) < 2) {
        let request = format!("GET /page/{sent} HTTP/1.1\r\nHost: panel.test\r\nConnection: close\r\n\r\n");
        let response = raw_from("127.0.0.2", balancer, request.as_bytes());
        assert_eq!(response.status, 200, "{}", response.body_text());
        sent += 1;
        // The access line is written as the answer ends; give it a moment.
        eventually(Duration::from_millis(500), || served(&a) + served(&b) == sent);
    }
    common::say(&format!("cluster_haproxy: {sent} requests, {} to edge-1, {} to edge-2", served(&a), served(&b)));
    assert!(served(&a) >= 2 && served(&b) >= 2, "both hosts take clients: {} and {}", served(&a), served(&b));
    let seen = app.seen();
    assert_eq!(seen.len(), sent);
    for request in &seen {
        let xff = request.headers.get("x-forwarded-for").map(|v| v.to_str().unwrap().to_string());
        assert_eq!(xff.as_deref(), Some("127.0.0.2"), "the client's address, from the PROXY header");
    }

    let leaders = || [&a, &b].iter().filter(|d| cluster(d)["is_leader"] == true).count();
    assert!(eventually(Duration::from_secs(10), || leaders() == 1), "one leader of the two");
    for host in [&a, &b] {
        assert_eq!(cluster(host)["state"], "sharing", "{}", cluster(host));
    }
}

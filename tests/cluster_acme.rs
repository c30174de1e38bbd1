//! `[listen.tls.acme]` with `[cluster]`: two hookgates (nodes `edge-a` and
//! `edge-b`), one redis-server, one pebble.
//!
//! Pebble validates on its own fixed ports (http-01 on `http_port`,
//! tls-alpn-01 on `tls_port`), and only one process can listen there. The
//! test puts a relay there that sends each of pebble's validation
//! connections to the host that does NOT hold the lease (read from Redis at
//! each connection), while each host listens on ports of its own. So the
//! leader orders, but every validation reaches the follower, which can only
//! answer with what the leader put in Redis: that is what these tests show,
//! besides one order for both hosts and the same pebble-issued certificate
//! served by each. With Redis stopped no host orders; back, one does, once.

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::pebble::{Pebble, PebbleOptions};
use common::redis::Redis;
use common::tls_client::{connect, presented, trusting};
use common::{Daemon, Upstream, free_port};

const DOMAINS: [&str; 2] = ["shop.test", "www.shop.test"];
const ISSUED: &str = "ACME: obtained a certificate";
const ADOPTED: &str = "ACME: serving the certificate the cluster's leader stored in Redis";
const LEADS: &str = "cluster: this host is the leader";

/// One host: its node name, its plain and TLS listeners, its cache.
struct Host {
    node: &'static str,
    plain: SocketAddr,
    tls: SocketAddr,
    cache: tempfile::TempDir,
}

impl Host {
    fn new(node: &'static str) -> Host {
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        Host { node, plain: at(free_port()), tls: at(free_port()), cache: tempfile::tempdir().unwrap() }
    }

    fn config(&self, pebble: &Pebble, redis: &Redis, app: &Upstream, key: &Path, challenge: &str) -> String {
        format!(
            r#"
[listen]
addrs = ["{plain}"]
[listen.tls]
addrs = ["{tls}"]
{acme}[cluster]
redis = "{redis}"
node = "{node}"
lease = "2s"
encryption_key_file = "{key}"
[admin]
addr = "127.0.0.1:0"
[upstreams.app]
url = "{app}"
[default]
upstream = "app"
"#,
            plain = self.plain,
            tls = self.tls,
            acme = pebble.acme_table(self.cache.path(), challenge),
            redis = redis.url,
            node = self.node,
            key = key.display(),
            app = app.url(),
        )
    }
}

/// The node holding the lease, as Redis says (empty when none).
fn lease_holder(redis_port: u16) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &redis_port.to_string(), "GET", "hookgate:lease:leader"])
        .output()
        .unwrap();
    let value = String::from_utf8_lossy(&out.stdout).trim().to_string();
    value.rsplit_once('#').map_or(value.clone(), |(node, _)| node.to_string())
}

/// Listens on `port` and relays each connection to the host (node, address)
/// that does not hold the lease; returns the nodes reached, one per connection.
async fn relay_to_follower(
    port: u16,
    redis_port: u16,
    hosts: [(&'static str, SocketAddr); 2],
) -> Arc<Mutex<Vec<String>>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let reached = Arc::new(Mutex::new(Vec::new()));
    let record = reached.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let holder = tokio::task::spawn_blocking(move || lease_holder(redis_port)).await.unwrap();
                let (node, addr) = hosts.into_iter().find(|(node, _)| *node != holder).unwrap();
                record.lock().unwrap().push(node.to_string());
                let Ok(mut outbound) = tokio::net::TcpStream::connect(addr).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    reached
}

struct Cluster {
    pebble: Pebble,
    redis: Redis,
    hosts: [Host; 2],
    daemons: Vec<Daemon>,
    reached: Arc<Mutex<Vec<String>>>,
    _app: Upstream,
    _key: tempfile::TempDir,
}

/// Pebble, Redis (stopped before the hosts start unless `redis_up`), the
/// relay on pebble's port for `challenge`, and two hosts.
async fn cluster(challenge: &str, redis_up: bool) -> Option<Cluster> {
    let pebble = Pebble::start(PebbleOptions::default())?;
    let mut redis = Redis::start()?;
    if !redis_up {
        redis.stop();
    }
    let app = Upstream::start("app").await;
    let key = tempfile::tempdir().unwrap();
    let key_file = key.path().join("cluster.key");
    std::fs::write(&key_file, "5f1c0d9e8b7a6f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a190817263\n").unwrap();
    std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let hosts = [Host::new("edge-a"), Host::new("edge-b")];
    let (port, targets) = match challenge {
        "http-01" => (pebble.http_port, hosts.each_ref().map(|h| (h.node, h.plain))),
        _ => (pebble.tls_port, hosts.each_ref().map(|h| (h.node, h.tls))),
    };
    let reached = relay_to_follower(port, redis.port, targets).await;
    let daemons = hosts.iter().map(|h| Daemon::start(&h.config(&pebble, &redis, &app, &key_file, challenge))).collect();
    Some(Cluster { pebble, redis, hosts, daemons, reached, _app: app, _key: key })
}

impl Cluster {
    /// Waits for the one order and for the other host to serve its result;
    /// returns (leader, follower) indexes.
    fn issued(&self) -> (usize, usize) {
        let issued = common::eventually(Duration::from_secs(60), || self.daemons.iter().any(|d| has(d, ISSUED)));
        assert!(issued, "no certificate: {:?}\n{:?}", self.daemons[0].logs(), self.daemons[1].logs());
        let leader = if has(&self.daemons[0], ISSUED) { 0 } else { 1 };
        let follower = 1 - leader;
        assert!(has(&self.daemons[leader], LEADS));
        self.daemons[follower].wait_for_log(ADOPTED, Duration::from_secs(10));
        (leader, follower)
    }

    /// Both hosts present the same certificate, issued by pebble for both names.
    async fn both_serve_the_certificate(&self) {
        let root = self.pebble.root_file();
        let mut served = Vec::new();
        for host in &self.hosts {
            for name in DOMAINS {
                let stream = connect(&trusting(&root, &[]), host.tls, name).await;
                served.push(presented(&stream));
            }
        }
        assert!(served.windows(2).all(|w| w[0] == w[1]), "one certificate on both hosts");
    }

    /// What the order left in Redis: sealed, no PEM to read.
    fn redis_holds_only_sealed_values(&self) {
        let certs = self.redis.keys("hookgate:acme:*:cert");
        assert_eq!(certs.len(), 1, "{:?}", self.redis.keys("*"));
        let value = self.redis.cli(&["GET", &certs[0]]);
        assert!(!value.contains("BEGIN") && !value.contains("PRIVATE KEY"), "the certificate is sealed: {value}");
    }

    fn orders(&self, test: &str) -> usize {
        let orders = self.pebble.orders();
        common::say(&format!(
            "{test}: pebble recorded {} orders; validations reached {:?}",
            orders.len(),
            self.reached()
        ));
        orders.len()
    }

    fn reached(&self) -> Vec<String> {
        self.reached.lock().unwrap().clone()
    }
}

fn has(daemon: &Daemon, needle: &str) -> bool {
    daemon.logs().iter().any(|l| l.contains(needle))
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_alpn01_one_order_validated_on_the_follower_and_served_by_both() {
    let Some(cluster) = cluster("tls-alpn-01", true).await else { return };
    let (leader, follower) = cluster.issued();
    let reached = cluster.reached();
    assert!(!reached.is_empty(), "pebble validated through the relay");
    assert!(reached.iter().all(|n| n == cluster.hosts[follower].node), "only the follower was asked: {reached:?}");
    cluster.both_serve_the_certificate().await;
    cluster.redis_holds_only_sealed_values();
    // The follower wrote it to its own cache_dir: a restart without Redis still serves it.
    let folder = cluster.hosts[follower].cache.path().read_dir().unwrap().next().unwrap().unwrap().path();
    assert!(folder.join("cert.pem").exists() && folder.join("key.pem").exists());
    assert!(!has(&cluster.daemons[follower], ISSUED), "the follower ordered nothing");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(cluster.orders("tls-alpn-01 in a cluster"), 1, "one order for the two hosts");
    assert!(has(&cluster.daemons[leader], "stored the certificate in Redis"));
}

#[tokio::test(flavor = "multi_thread")]
async fn http01_answered_from_redis_by_the_follower() {
    let Some(cluster) = cluster("http-01", true).await else { return };
    let (_, follower) = cluster.issued();
    let reached = cluster.reached();
    assert!(!reached.is_empty() && reached.iter().all(|n| n == cluster.hosts[follower].node), "{reached:?}");
    let answered = cluster.daemons[follower]
        .logs()
        .iter()
        .filter(|l| l.contains("route=acme-challenge") && l.contains("status=200"))
        .count();
    assert!(answered >= 2, "the follower answered both names from Redis: {:?}", cluster.daemons[follower].logs());
    // A token nobody published: 404 from the follower, not the app.
    let unknown = common::get(cluster.hosts[follower].plain, "shop.test", "/.well-known/acme-challenge/nope");
    assert_eq!(unknown.status, 404);
    cluster.both_serve_the_certificate().await;
    assert_eq!(cluster.orders("http-01 in a cluster"), 1, "one order for the two hosts");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_redis_down_no_host_orders_and_when_it_is_back_one_does() {
    let Some(mut cluster) = cluster("tls-alpn-01", false).await else { return };
    for daemon in &cluster.daemons {
        daemon.wait_for_log("cluster: degraded", Duration::from_secs(5));
    }
    // Two lease times and more: no host leads, so none orders.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(cluster.pebble.orders().len(), 0, "no host orders while Redis is unreachable");
    assert!(!cluster.daemons.iter().any(|d| has(d, LEADS)));

    cluster.redis.restart();
    cluster.issued();
    cluster.both_serve_the_certificate().await;
    assert_eq!(cluster.orders("after Redis came back"), 1);
}

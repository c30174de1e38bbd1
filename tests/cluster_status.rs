//! `[cluster]` as operators see it (issue 34), with Debian's redis-server
//! and two daemons over real sockets: one leader between them, the cluster
//! section of `/status.json`, the page, `hookgate status` and `/metrics`;
//! Redis stopped (both hosts say degraded, nobody leads, traffic flows) and
//! started again (both rejoin, one leads, no restart); a leader that stops
//! hands the lease on at once; the password from its file (a wrong one shown
//! as Redis says it, never the password); a host starts and serves with Redis
//! unreachable.

use crate::common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::redis::Redis;
use common::{Daemon, Upstream, eventually, get, raw};

const WAIT: Duration = Duration::from_secs(10);

fn config(app: &Upstream, redis_url: &str, node: &str, lease: &str) -> String {
    format!(
        "[listen]\naddrs = [\"127.0.0.1:0\"]\n[admin]\naddr = \"127.0.0.1:0\"\n[upstreams.app]\nurl = \"{}\"\n\
         [default]\nupstream = \"app\"\n[cluster]\nredis = \"{redis_url}\"\nnode = \"{node}\"\nlease = \"{lease}\"\n",
        app.url()
    )
}

fn admin_get(daemon: &Daemon, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let response = raw(daemon.admin.unwrap(), request.as_bytes());
    assert_eq!(response.status, 200, "{path}: {}", response.body_text());
    response.body_text()
}

fn cluster(daemon: &Daemon) -> Value {
    let status: Value = serde_json::from_str(&admin_get(daemon, "/status.json")).unwrap();
    status["cluster"].clone()
}

fn trouble(daemon: &Daemon) -> Vec<String> {
    let status: Value = serde_json::from_str(&admin_get(daemon, "/status.json")).unwrap();
    status["trouble"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect()
}

/// The value of the metric line that starts with `series` (e.g. `name{node="a"}`).
fn metric(daemon: &Daemon, series: &str) -> Option<f64> {
    let metrics = admin_get(daemon, "/metrics");
    let line = metrics.lines().find(|l| l.starts_with(series))?;
    line.rsplit(' ').next()?.parse().ok()
}

/// `hookgate status` against the daemon, through a copy of its config that names the bound admin address.
fn hookgate_status(daemon: &Daemon) -> Output {
    let config = std::fs::read_to_string(&daemon.config_path).unwrap();
    let path = daemon.dir().join("cli.toml");
    let admin = format!("addr = \"{}\"", daemon.admin.unwrap());
    std::fs::write(&path, config.replacen("addr = \"127.0.0.1:0\"", &admin, 1)).unwrap();
    Command::new(env!("CARGO_BIN_EXE_hookgate")).args(["status", "-c"]).arg(&path).output().unwrap()
}

fn leaders(hosts: &[&Daemon]) -> Vec<String> {
    hosts.iter().map(|h| cluster(h)).filter(|c| c["is_leader"] == true).map(|c| c["node"].to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hosts_share_one_leader_and_say_when_redis_is_gone_and_back() {
    let Some(mut redis) = Redis::start() else { return };
    let app = Upstream::start("app").await;
    let a = Daemon::start(&config(&app, &redis.url, "edge-a", "2s"));
    let b = Daemon::start(&config(&app, &redis.url, "edge-b", "2s"));

    // Both connected (a host still `connecting` when the other has led is a race, not a fault).
    let settled = || leaders(&[&a, &b]).len() == 1 && [&a, &b].iter().all(|h| cluster(h)["state"] == "sharing");
    assert!(eventually(WAIT, settled), "one host leads: {} {}", cluster(&a), cluster(&b));
    let leader = leaders(&[&a, &b])[0].trim_matches('"').to_string();
    for host in [&a, &b] {
        let c = cluster(host);
        assert_eq!(c["state"], "sharing", "{c}");
        assert_eq!(c["redis"], redis.url.as_str());
        assert_eq!(c["leader"], leader.as_str(), "both name the same leader: {c}");
        assert!(trouble(host).is_empty(), "{:?}", trouble(host));
    }
    assert!(redis.cli(&["GET", "hookgate:lease:leader"]).starts_with(&format!("{leader}#")));
    let out = hookgate_status(&a);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains(&format!("cluster node edge-a: sharing state through {}", redis.url)), "{said}");
    let page = admin_get(&b, "/");
    assert!(page.contains("<h2>Cluster</h2>") && page.contains("node edge-b: sharing state"), "the HTML page");
    assert_eq!(metric(&a, "hookgate_cluster_redis_up{node=\"edge-a\"}"), Some(1.0));

    redis.stop();
    for host in [&a, &b] {
        assert!(eventually(WAIT, || cluster(host)["state"] == "degraded"), "{}", cluster(host));
        assert_eq!(cluster(host)["is_leader"], false, "nobody leads while Redis is unreachable");
        assert!(trouble(host).iter().any(|t| t.starts_with("cluster: degraded")), "{:?}", trouble(host));
        assert_eq!(get(host.addr, "shop.test", "/").status, 200, "traffic flows");
    }
    let node = |h: &Daemon, name: &str| {
        metric(h, &format!("hookgate_cluster_{name}{{node=\"{}\"}}", cluster(h)["node"].as_str().unwrap()))
    };
    assert_eq!((node(&a, "redis_up"), node(&a, "leader")), (Some(0.0), Some(0.0)));
    assert_eq!((node(&b, "redis_up"), node(&b, "leader")), (Some(0.0), Some(0.0)));
    let out = hookgate_status(&b);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "degraded is trouble: {said}");
    assert!(said.contains("cluster node edge-b: degraded: not sharing through"), "{said}");
    a.wait_for_log("cluster: degraded", WAIT);

    redis.restart();
    for host in [&a, &b] {
        assert!(eventually(WAIT, || cluster(host)["state"] == "sharing"), "rejoins without a restart");
    }
    assert!(eventually(WAIT, || leaders(&[&a, &b]).len() == 1), "one host leads again");
    a.wait_for_log("cluster: Redis reachable", WAIT);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_that_stops_hands_the_lease_on_at_once() {
    let Some(redis) = Redis::start() else { return };
    let app = Upstream::start("app").await;
    // A lease of 30 s: taking it over within a few seconds shows it was released, not expired.
    let mut a = Daemon::start(&config(&app, &redis.url, "edge-a", "30s"));
    assert!(eventually(WAIT, || cluster(&a)["is_leader"] == true), "{}", cluster(&a));
    let b = Daemon::start(&config(&app, &redis.url, "edge-b", "30s"));
    assert!(eventually(WAIT, || cluster(&b)["leader"] == "edge-a"), "{}", cluster(&b));
    assert_eq!(cluster(&b)["is_leader"], false);
    let fence_before: u64 = redis.cli(&["GET", "hookgate:lease:leader"]).rsplit_once('#').unwrap().1.parse().unwrap();

    let stopped = Instant::now();
    a.signal("TERM");
    assert_eq!(a.wait_exit(WAIT), Some(0));
    assert!(a.logs().iter().any(|l| l.contains("cluster: lease released")), "{:#?}", a.logs());
    assert!(eventually(Duration::from_secs(8), || cluster(&b)["is_leader"] == true), "{}", cluster(&b));
    assert!(stopped.elapsed() < Duration::from_secs(15), "well inside the 30 s lease: {:?}", stopped.elapsed());
    let held = redis.cli(&["GET", "hookgate:lease:leader"]);
    let fence_after: u64 = held.strip_prefix("edge-b#").expect(&held).parse().unwrap();
    assert!(fence_after > fence_before, "a new holding has a greater fencing value: {fence_before} then {fence_after}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_password_comes_from_its_file_and_a_wrong_one_is_shown_not_hidden() {
    let Some(redis) = Redis::start_with_password(Some("s3cret-pass")) else { return };
    let app = Upstream::start("app").await;
    let with_password =
        |file: &str| config(&app, &redis.url, "edge-a", "2s") + &format!("password_file = \"{file}\"\n");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("right.pass"), "s3cret-pass\n").unwrap();
    std::fs::write(dir.path().join("wrong.pass"), "not-it\n").unwrap();

    let right = Daemon::start_in(dir.path(), &with_password("right.pass"));
    assert!(eventually(WAIT, || cluster(&right)["is_leader"] == true), "{}", cluster(&right));
    assert_eq!(cluster(&right)["state"], "sharing");
    drop(right);

    let other = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("wrong.pass"), other.path().join("wrong.pass")).unwrap();
    let wrong = Daemon::start_in(other.path(), &with_password("wrong.pass"));
    assert_eq!(get(wrong.addr, "shop.test", "/").status, 200, "traffic flows");
    assert!(eventually(WAIT, || cluster(&wrong)["state"] == "degraded"), "{}", cluster(&wrong));
    let c = cluster(&wrong);
    let error = c["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("Password authentication failed"), "Redis's refusal is shown: {c}");
    assert!(!admin_get(&wrong, "/status.json").contains("not-it"), "the password never shows");
    assert!(!wrong.logs().iter().any(|l| l.contains("not-it")), "nor in the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_starts_and_serves_with_redis_unreachable() {
    let app = Upstream::start("app").await;
    let nobody = format!("redis://127.0.0.1:{}/0", common::free_port());
    let daemon = Daemon::start(&config(&app, &nobody, "edge-a", "2s"));
    assert_eq!(get(daemon.addr, "shop.test", "/").status, 200);
    assert!(eventually(WAIT, || cluster(&daemon)["state"] == "degraded"), "{}", cluster(&daemon));
    let c = cluster(&daemon);
    assert_eq!((c["is_leader"].as_bool(), c["leader"].is_null()), (Some(false), true), "{c}");
    assert!(c["last_error"].as_str().is_some_and(|e| e.contains("refused")), "{c}");
}

/// `[cluster]` is read at start-up: a reload that changes it says so in its
/// answer (what `hookgate reload` prints), not only in the daemon's log.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_that_changes_the_cluster_says_it_waits_for_a_restart() {
    let Some(redis) = Redis::start() else { return };
    let app = Upstream::start("app").await;
    let daemon = Daemon::start(&config(&app, &redis.url, "edge-a", "2s"));
    let admin = format!("addr = \"{}\"", daemon.admin.unwrap());
    let renamed = config(&app, &redis.url, "edge-renamed", "2s").replacen("addr = \"127.0.0.1:0\"", &admin, 1);
    daemon.rewrite_config(&renamed);
    let out =
        Command::new(env!("CARGO_BIN_EXE_hookgate")).args(["reload", "-c"]).arg(&daemon.config_path).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        said.contains("reloaded") && said.contains("[cluster] changed; it takes effect at the next restart"),
        "{said}"
    );
    assert_eq!(cluster(&daemon)["node"], "edge-a", "the running node keeps its name until a restart");
}

/// Redis stalls for a moment (SIGSTOP) while edge-a leads: both hosts
/// degrade and nobody leads; when it answers again, the lease key still
/// holds edge-a's value (nobody took it), so edge-a leads again at once, not
/// when its 30 s lease would have run out.
#[tokio::test(flavor = "multi_thread")]
async fn after_a_stall_of_redis_the_leader_takes_its_lease_back() {
    let Some(redis) = Redis::start() else { return };
    let app = Upstream::start("app").await;
    let a = Daemon::start(&config(&app, &redis.url, "edge-a", "30s"));
    assert!(eventually(WAIT, || cluster(&a)["is_leader"] == true), "{}", cluster(&a));
    let b = Daemon::start(&config(&app, &redis.url, "edge-b", "30s"));
    assert!(eventually(WAIT, || cluster(&b)["leader"] == "edge-a"), "{}", cluster(&b));

    redis.pause();
    for host in [&a, &b] {
        assert!(eventually(WAIT, || cluster(host)["state"] == "degraded"), "{}", cluster(host));
        assert!(cluster(host)["leader"].is_null(), "no leader is known while degraded: {}", cluster(host));
    }
    assert_eq!(cluster(&a)["is_leader"], false);
    redis.resume();
    let back = Instant::now();
    assert!(eventually(WAIT, || cluster(&a)["is_leader"] == true), "{}", cluster(&a));
    assert!(back.elapsed() < Duration::from_secs(10), "well before the 30 s lease ran out: {:?}", back.elapsed());
    assert!(eventually(WAIT, || cluster(&b)["leader"] == "edge-a"), "{}", cluster(&b));
    a.wait_for_log("cluster: this host stops leading", WAIT);
}

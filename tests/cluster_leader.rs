//! `[cluster]`'s leader for the Telegram webhook: two hookgates (nodes
//! `edge-a` and `edge-b`) sharing one redis-server (`common::redis`) and one
//! fake Bot API (`common::telegram_sim`), which counts every `setWebhook`.
//!
//! Only the lease holder repairs, so each breakage costs exactly one
//! `setWebhook` across both hosts; a leader killed with SIGKILL right after a
//! repair leaves the lease to the other host within the lease (2 s here) and
//! a tenth, and that host checks the repair instead of making it again, then
//! performs the next one; with Redis stopped no host leads, so none repairs,
//! and when it is back one does, once; a follower, which asks Telegram
//! nothing, shows what the leader saw (a broken webhook is trouble on every
//! host's status page). `[telegram] repair_gap = "1s"` (5 minutes by default)
//! lets one repair follow another within a test.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::redis::Redis;
use common::telegram_sim::TelegramSim;
use common::{Daemon, Webhook, eventually};

const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const SECRET: &str = "hookgate_Secret-42";
const LEASE: Duration = Duration::from_secs(2);
const LEADS: &str = "cluster: this host is the leader";
/// Somewhere else: what the fake API is told to break the webhook.
const ELSEWHERE: &str = "https://elsewhere.example/hook";

fn config(dir: &Path, sim: &TelegramSim, redis: &Redis, node: &str, interval: &str) -> String {
    let webhook = Webhook::new(dir, sim.api_addr)
        .allow_telegram()
        .secret()
        .monitor_interval(interval)
        .telegram_line("repair_gap = \"1s\"");
    format!(
        "[listen]\naddrs = [\"127.0.0.1:0\"]\n[admin]\naddr = \"127.0.0.1:0\"\n\
         [cluster]\nredis = \"{}\"\nnode = \"{node}\"\nlease = \"2s\"\n\
         [upstreams.frontend]\nurl = \"http://127.0.0.1:9\"\n[upstreams.backend]\nurl = \"http://127.0.0.1:9\"\n\
         {}[default]\nupstream = \"frontend\"\n{}",
        redis.url,
        webhook.route(),
        webhook.telegram()
    )
}

/// Two hosts on one Redis and one fake Bot API, whose webhook starts unset.
async fn two_hosts(interval: &str) -> Option<(Redis, TelegramSim, tempfile::TempDir, [Daemon; 2])> {
    let redis = Redis::start()?;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(dir.path().join("secret"), format!("{SECRET}\n")).unwrap();
    let sim = TelegramSim::start(TOKEN).await;
    let a = Daemon::start(&config(dir.path(), &sim, &redis, "edge-a", interval));
    let b = Daemon::start(&config(dir.path(), &sim, &redis, "edge-b", interval));
    Some((redis, sim, dir, [a, b]))
}

fn webhook_url() -> String {
    use md5::{Digest, Md5};
    let token: String = Md5::digest(TOKEN.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    format!("https://www.example.com{}?access_token={token}", common::WEBHOOK_PATH)
}

fn count(daemon: &Daemon, needle: &str) -> usize {
    daemon.logs().iter().filter(|l| l.contains(needle)).count()
}

/// Waits until `sim` has `n` setWebhook calls, then a few monitor rounds more, and checks no more came.
fn settled_at(sim: &TelegramSim, n: usize, quiet: Duration) {
    assert!(eventually(Duration::from_secs(15), || sim.set_calls().len() >= n), "no setWebhook #{n}");
    std::thread::sleep(quiet);
    let calls = sim.set_calls();
    assert_eq!(calls.len(), n, "exactly one setWebhook per repair across both hosts: {calls:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_host_repairs_and_after_its_kill_the_other_takes_over() {
    let Some((_redis, sim, _dir, [a, b])) = two_hosts("1s").await else { return };
    // The webhook starts unset: the leader's first round repairs it.
    assert!(eventually(Duration::from_secs(15), || !sim.set_calls().is_empty()), "no repair");
    let (mut leader, follower) = if count(&a, LEADS) > 0 { (a, b) } else { (b, a) };
    // Killed right after its setWebhook: its check of the repair is left to the next leader.
    leader.kill();
    let killed = Instant::now();
    let first = sim.set_calls();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].1["url"], webhook_url().as_str());
    assert_eq!(first[0].1["secret_token"], SECRET);
    assert_eq!(count(&follower, LEADS), 0, "one leader at a time");

    follower.wait_for_log(LEADS, LEASE * 3);
    let took_over = killed.elapsed();
    common::say(&format!("cluster_leader: the lease passed {took_over:?} after the kill (lease {LEASE:?})"));
    assert!(took_over <= LEASE + LEASE / 10 + Duration::from_secs(1), "{took_over:?}");
    // The new leader looks at once, finds the repair took, and says so; no second call.
    let checked = |d: &Daemon| count(d, "telegram webhook repaired") > 0;
    assert!(eventually(Duration::from_secs(5), || checked(&follower) || checked(&leader)), "{:?}", follower.logs());
    let by = if checked(&follower) { "the new leader" } else { "the killed leader, before its kill" };
    common::say(&format!("cluster_leader: the first repair was checked by {by}"));
    settled_at(&sim, 1, Duration::from_secs(2));

    // The next breakage: the survivor repairs it, once.
    sim.press_xboard_button(ELSEWHERE).await;
    settled_at(&sim, 3, Duration::from_secs(3));
    let calls = sim.set_calls();
    assert_eq!(calls[2].1["url"], webhook_url().as_str());
    assert_eq!(calls[2].1["secret_token"], SECRET);
    follower.wait_for_log("telegram webhook repaired: webhook set to https://elsewhere.example/hook", LEASE);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_redis_down_no_host_repairs_and_when_it_is_back_one_does() {
    let Some((mut redis, sim, _dir, [a, b])) = two_hosts("300ms").await else { return };
    settled_at(&sim, 1, Duration::from_millis(1500));
    // Only the leader watches: the follower makes no Bot API call, and over
    // 3 s the two hosts ask no more than one host can (a round every 270 ms at
    // the least, with the jitter); two watching hosts would ask about twice that.
    let follower = if count(&a, LEADS) > 0 { &b } else { &a };
    let before = sim.info_calls();
    std::thread::sleep(Duration::from_secs(3));
    let asked = sim.info_calls() - before;
    common::say(&format!("cluster_leader: {asked} getWebhookInfo calls in 3 s at a 300 ms interval"));
    assert!(asked <= 12, "{asked} getWebhookInfo calls in 3 s: more than one host watches");
    assert_eq!(count(follower, "telegram webhook:"), 0, "the follower does not watch: {:?}", follower.logs());

    redis.stop();
    for host in [&a, &b] {
        host.wait_for_log("cluster: degraded", Duration::from_secs(5));
    }
    sim.press_xboard_button(ELSEWHERE).await;
    // Both hosts watch on their own while no host leads, and neither repairs.
    for host in [&a, &b] {
        host.wait_for_log("telegram webhook: the webhook points at https://elsewhere.example/hook", LEASE * 2);
    }
    settled_at(&sim, 2, LEASE * 2);
    assert_eq!(sim.webhook_url(), ELSEWHERE);

    redis.restart();
    settled_at(&sim, 3, Duration::from_secs(2));
    assert_eq!(sim.webhook_url(), webhook_url());
    for host in [&a, &b] {
        assert!(count(host, "Redis reachable; sharing state") >= 2, "rejoined without a restart: {:?}", host.logs());
    }
}

/// A follower asks Telegram nothing, yet its status page and `/readyz` must
/// not call a broken webhook healthy: they show what the leader's last round
/// saw, naming the leader. Repair is off here, so the unset webhook stays
/// broken.
#[tokio::test(flavor = "multi_thread")]
async fn a_follower_shows_what_the_leader_saw() {
    let Some(redis) = Redis::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(dir.path().join("secret"), format!("{SECRET}\n")).unwrap();
    let sim = TelegramSim::start(TOKEN).await;
    let no_repair =
        |node| config(dir.path(), &sim, &redis, node, "300ms").replace("repair_gap", "repair = false\nrepair_gap");
    let a = Daemon::start(&no_repair("edge-a"));
    let b = Daemon::start(&no_repair("edge-b"));
    assert!(eventually(Duration::from_secs(10), || count(&a, LEADS) + count(&b, LEADS) == 1), "one leader");
    let (leader, follower, leader_node) = if count(&a, LEADS) > 0 { (&a, &b, "edge-a") } else { (&b, &a, "edge-b") };

    let status = |d: &Daemon| -> serde_json::Value {
        let request = b"GET /status.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        serde_json::from_str(&common::raw(d.admin.unwrap(), request).body_text()).unwrap()
    };
    let state = |d: &Daemon| status(d)["telegram"]["webhook"]["state"].as_str().map(str::to_string);
    assert!(eventually(Duration::from_secs(10), || state(leader).is_some() && state(follower) == state(leader)));
    let seen = status(follower);
    assert_eq!(seen["telegram"]["webhook"]["healthy"], false, "{seen}");
    let trouble = seen["trouble"].as_array().unwrap();
    assert!(trouble.iter().any(|t| t.as_str().unwrap().starts_with("telegram webhook:")), "{trouble:?}");
    let readyz =
        common::raw(follower.admin.unwrap(), b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let line = format!("(seen by the cluster's leader, {leader_node})");
    assert!(readyz.body_text().contains(&line), "{}", readyz.body_text());
    assert!(sim.set_calls().is_empty(), "repair is off");
}

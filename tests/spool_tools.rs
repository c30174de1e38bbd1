//! The spool's operator tools against the real daemon: `hookgate spool
//! list/show/retry/drop` through a running daemon and on the file of a
//! stopped one (a request retried there is delivered at the next start),
//! secrets redacted; the `/spool` admin endpoints' statuses; the spool in
//! `/status.json`, the page, `hookgate status` and `/metrics`; and a spool
//! file that is not a spool, which leaves the daemon serving and says so.
//!
//! A dead letter is made by a `store = { mode = "always" }` route whose
//! upstream answers 404 (a final answer); a request keeps waiting on one
//! whose upstream refuses connections.

use crate::common;

use std::time::Duration;

use serde_json::Value;

use common::spool_harness::{
    ADMIN_TOKEN, Upstreams, admin, assert_redacted, bearer, config, free_admin, hookgate, ids, json, notify, post,
    said, spool_cli, spool_route, upstreams,
};
use common::{Daemon, Upstream, eventually};

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_works_through_the_daemon_and_on_the_file_once_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (to, orders, app) = upstreams().await;
    let admin_addr = free_admin();
    let mut daemon = Daemon::start_in(dir.path(), &config(dir.path(), &admin_addr, &to));
    let (addr, admin_at, file) = (daemon.addr, daemon.admin.unwrap(), daemon.config_path.clone());
    assert_eq!((notify(addr, 1), notify(addr, 2), post(addr, "/later", &[], "later")), (200, 200, 200));
    let buried = || spool_route(&json(admin_at, "/status.json", ""), "notify")["dead"] == 2;
    assert!(eventually(Duration::from_secs(10), buried), "{:#}", json(admin_at, "/status.json", ""));
    let (dead, waiting) = (ids(admin_at, true, ""), ids(admin_at, false, ""));
    let [first, second] = dead[..] else { panic!("{dead:?}") };
    let [later] = waiting[..] else { panic!("{waiting:?}") };

    // Through the daemon.
    let through = format!("via the daemon at {admin_addr}\n");
    let listed = spool_cli(&["list"], &file, 0);
    assert!(listed.starts_with(&through), "{listed}");
    let header = listed.lines().nth(1).unwrap();
    for column in ["id", "route", "age", "method", "target", "size", "attempts", "last error"] {
        assert!(header.contains(column), "{header}");
    }
    let row = |l: &&str| l.trim_start().starts_with(&later.to_string()) && l.contains("later") && l.contains("POST");
    assert!(listed.lines().any(|l| row(&l) && l.contains("/later")), "{listed}");
    assert!(!listed.contains("/notify"), "only the waiting ones: {listed}");
    let listed = spool_cli(&["list", "--dead", "--route", "notify"], &file, 0);
    assert!(listed.contains("/notify?access_token=[redacted]&out_trade_no=7"), "{listed}");
    assert!(listed.contains("orders answered 404") && listed.contains("2 dead letters"), "{listed}");
    assert_redacted(&listed);

    let shown = spool_cli(&["show", &first.to_string()], &file, 0);
    assert!(shown.starts_with(&through), "{shown}");
    assert!(shown.contains(&format!("request {first} · route notify → upstream orders · dead letter")), "{shown}");
    // hookgate writes header names in lower case upstream, and keeps them so.
    for header in ["authorization", "cookie", "x-hook-key", "x-telegram-bot-api-secret-token"] {
        assert!(shown.contains(&format!("\n{header}: [redacted]\n")), "{header}: {shown}");
    }
    assert!(shown.contains("POST /notify?access_token=[redacted]&out_trade_no=7 HTTP/1.1"), "{shown}");
    assert!(shown.contains("body:\n{\"order\":1}\n") && shown.contains("last answer (404):\nno order"), "{shown}");
    assert_redacted(&shown);
    let missing = spool_cli(&["show", "999999"], &file, 1);
    assert!(missing.contains(&format!("no request 999999 in the spool (asked the daemon at {admin_addr})")));

    // A waiting request is made due now, skipping the rest of its back-off.
    let due = spool_cli(&["retry", &later.to_string()], &file, 0);
    assert!(due.contains(&format!("request {later} is back in its queue")), "{due}");
    let retried = spool_cli(&["retry", &first.to_string()], &file, 0);
    assert!(retried.contains(&format!("request {first} is back in its queue")), "{retried}");
    let again = || orders.requests().len() == 3 && ids(admin_at, true, "").len() == 2;
    assert!(eventually(Duration::from_secs(10), again), "the retried letter is attempted again (and dies again)");
    assert!(spool_cli(&["drop", &later.to_string()], &file, 0).contains(&format!("dropped request {later}")));
    assert!(spool_cli(&["list"], &file, 0).contains("no waiting requests"));
    spool_cli(&["drop", &later.to_string()], &file, 1);

    // On the file, once the daemon has stopped.
    daemon.stop();
    let spool_file = dir.path().join("spool/spool.sqlite3");
    let on_file =
        format!("nothing answers at [admin] addr {admin_addr}: working on {} directly\n", spool_file.display());
    let listed = spool_cli(&["list", "--dead"], &file, 0);
    assert!(listed.starts_with(&on_file), "{listed}");
    assert!(listed.contains(&first.to_string()) && listed.contains(&second.to_string()), "{listed}");
    let shown = spool_cli(&["show", &second.to_string()], &file, 0);
    assert!(shown.starts_with(&on_file) && shown.contains("x-hook-key: [redacted]"), "{shown}");
    assert!(shown.contains("body:\n{\"order\":2}\n"), "{shown}");
    assert_redacted(&shown);
    assert!(spool_cli(&["drop", &second.to_string()], &file, 0).contains(&format!("dropped request {second}")));
    let retried = spool_cli(&["retry", "--dead", "--route", "notify"], &file, 0);
    let back = format!("request {first} is back in its queue; to be delivered when the daemon next starts");
    assert!(retried.contains(&back), "{retried}");
    assert!(spool_cli(&["list", "--dead"], &file, 0).contains("no dead letters"));
    assert!(spool_cli(&["list"], &file, 0).contains("/notify?access_token=[redacted]"));
    spool_cli(&["show", &second.to_string()], &file, 1);

    // The next daemon, whose `orders` now answers, delivers what was retried on the file.
    let answering = Upstreams { orders: to.app.clone(), ..to };
    let restarted = Daemon::start_in(dir.path(), &config(dir.path(), &admin_addr, &answering));
    let delivered = || app.seen().iter().any(|s| s.target.starts_with("/notify") && s.body == "{\"order\":1}");
    assert!(eventually(Duration::from_secs(10), delivered), "{:?}", app.seen());
    assert!(!app.seen().iter().any(|s| s.body == "{\"order\":2}"), "the dropped one is never delivered");
    let status = json(restarted.admin.unwrap(), "/status.json", "");
    assert_eq!(spool_route(&status, "notify")["dead"], 0, "{status:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_endpoints_answer_with_their_statuses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin-token"), ADMIN_TOKEN).unwrap();
    let (to, _orders, _app) = upstreams().await;
    let daemon = Daemon::start_in(dir.path(), &config(dir.path(), &free_admin(), &to));
    let (addr, at) = (daemon.addr, daemon.admin.unwrap());
    assert_eq!((notify(addr, 1), post(addr, "/later", &[], "later")), (200, 200));
    assert!(eventually(Duration::from_secs(10), || ids(at, true, &bearer()).len() == 1));
    let (dead, waiting) = (ids(at, true, &bearer())[0], ids(at, false, &bearer())[0]);

    assert_eq!(admin(at, "GET", "/spool", "").0, 401);
    assert_eq!(admin(at, "POST", &format!("/spool/{dead}/drop"), "").0, 401);
    let cross_site = format!("{}Origin: http://evil.example\r\n", bearer());
    assert_eq!(admin(at, "POST", &format!("/spool/{dead}/drop"), &cross_site).0, 403);
    for (method, path) in [("GET", "/spool/999999"), ("POST", "/spool/999999/retry"), ("POST", "/spool/999999/drop")] {
        let (status, body, _) = admin(at, method, path, &bearer());
        assert_eq!((status, body.as_str()), (404, "no request 999999 in the spool\n"), "{method} {path}");
    }
    assert_eq!(admin(at, "GET", "/spool/x", &bearer()).0, 404);
    let (status, _, allow) = admin(at, "GET", &format!("/spool/{dead}/drop"), &bearer());
    assert_eq!((status, allow.as_deref()), (405, Some("POST")));
    let (status, _, allow) = admin(at, "POST", "/spool", &bearer());
    assert_eq!((status, allow.as_deref()), (405, Some("GET, HEAD")));
    // A waiting request is attempted at once, skipping the rest of its back-off.
    let (status, body, _) = admin(at, "POST", &format!("/spool/{waiting}/retry"), &bearer());
    let retried: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, retried), (200, serde_json::json!({ "retried": [waiting] })));

    let shown = json(at, &format!("/spool/{dead}"), &bearer());
    assert_eq!(
        (shown["id"].as_i64(), shown["route"].as_str(), shown["dead"].as_bool()),
        (Some(dead), Some("notify"), Some(true))
    );
    assert_eq!((shown["last_status"].as_u64(), shown["last_answer"]["text"].as_str()), (Some(404), Some("no order\n")));
    assert!(shown["head"].as_str().unwrap().contains("authorization: [redacted]"), "{shown:#}");
    assert_eq!(shown["body"], serde_json::json!({"text": "{\"order\":1}", "utf8": true}));
    assert_redacted(&shown.to_string());
    let (status, body, _) = admin(at, "POST", "/spool/dead/retry?route=notify", &bearer());
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["retried"], serde_json::json!([dead]));
    let (status, body, _) = admin(at, "POST", &format!("/spool/{waiting}/drop"), &bearer());
    assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()["dropped"].as_i64()), (200, Some(waiting)));

    // The CLI sends the config's token; with another token it is refused and leaves the file alone.
    let file = daemon.config_path.clone();
    assert!(spool_cli(&["list", "--dead"], &file, 0).starts_with("via the daemon at "));
    std::fs::write(dir.path().join("other-token"), "wrong").unwrap();
    let wrong = dir.path().join("wrong.toml");
    let text = std::fs::read_to_string(&file).unwrap().replace("\"admin-token\"", "\"other-token\"");
    std::fs::write(&wrong, text).unwrap();
    let refused = spool_cli(&["list"], &wrong, 69);
    assert!(refused.contains("the daemon answered 401: a bearer token is required"), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_store_route_the_spool_is_off() {
    let app = Upstream::start("app").await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[admin]\naddr = \"127.0.0.1:0\"\n[spool]\ndir = \"spool\"\n[upstreams.app]\nurl = \"{}\"\n[default]\nupstream = \"app\"\n",
        app.url()
    );
    let daemon = Daemon::start_in(dir.path(), &config);
    let at = daemon.admin.unwrap();
    let (status, body, _) = admin(at, "GET", "/spool", "");
    assert_eq!((status, body.as_str()), (503, "the spool is off: no route has store and there is no spool file\n"));
    let spool = &json(at, "/status.json", "")["spool"];
    assert_eq!(spool["state"], "off");
    assert!(
        spool["file"].is_null() && spool["error"].is_null() && spool["routes"] == serde_json::json!([]),
        "{spool:#}"
    );
    assert!(!dir.path().join("spool").exists(), "nothing is created");
    let (_, metrics, _) = admin(at, "GET", "/metrics", "");
    assert!(!metrics.contains("hookgate_spool_"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_metrics_and_hookgate_status_show_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let (to, _orders, _app) = upstreams().await;
    let daemon = Daemon::start_in(dir.path(), &config(dir.path(), &free_admin(), &to));
    let (addr, at, file) = (daemon.addr, daemon.admin.unwrap(), daemon.config_path.clone());
    assert_eq!(
        (notify(addr, 1), post(addr, "/later", &[], "later"), post(addr, "/fine", &[], "fine")),
        (200, 200, 200)
    );
    let settled = || {
        let s = json(at, "/status.json", "");
        spool_route(&s, "notify")["dead"] == 1
            && spool_route(&s, "fine")["delivered"] == 1
            && spool_route(&s, "later")["last_error"].is_string()
    };
    assert!(eventually(Duration::from_secs(10), settled), "{:#}", json(at, "/status.json", ""));

    let s = json(at, "/status.json", "");
    let spool = &s["spool"];
    assert_eq!((spool["state"].as_str(), spool["error"].as_str()), (Some("open"), None));
    assert!(spool["file"].as_str().unwrap().ends_with("/spool/spool.sqlite3"), "{spool:#}");
    assert_eq!(spool["max_bytes"], 1u64 << 30);
    assert!(spool["bytes"].as_u64().unwrap() > 0, "{spool:#}");
    let names: Vec<&str> = spool["routes"].as_array().unwrap().iter().map(|r| r["route"].as_str().unwrap()).collect();
    assert_eq!(names, ["fine", "later", "notify"]);
    let notify_row = spool_route(&s, "notify");
    let want = serde_json::json!({"route": "notify", "orphaned": false, "waiting": 0, "in_flight": 0, "oldest_seconds": null,
        "stored": 1, "delivered": 0, "dead": 1, "dead_total": 1, "not_kept": 0, "last_error": "orders answered 404",
        "attention": true});
    assert_eq!(notify_row, want);
    let later = spool_route(&s, "later");
    assert_eq!(
        (later["waiting"].as_u64(), later["stored"].as_u64(), later["attention"].as_bool()),
        (Some(1), Some(1), Some(false))
    );
    assert!(later["oldest_seconds"].as_u64().is_some_and(|age| age < 60), "{later:#}");
    let fine = spool_route(&s, "fine");
    assert_eq!(
        (fine["delivered"].as_u64(), fine["waiting"].as_u64(), fine["attention"].as_bool()),
        (Some(1), Some(0), Some(false))
    );
    let trouble: Vec<&str> = s["trouble"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(
        trouble.contains(&"spool route notify: 1 dead letter (hookgate spool list --dead --route notify)"),
        "{trouble:?}"
    );

    let page = admin(at, "GET", "/", "").1;
    assert!(page.contains("<h2>Spool</h2><p id=\"spool-state\"><span class=\"badge ok\">open</span>"), "{page}");
    assert!(page.contains("data-spool-route=\"notify\"") && page.contains("needs attention"), "{page}");
    let out = hookgate(&["status"], &file);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    let text = said(&out);
    assert!(text.contains("spool open: ") && text.contains("spool route") && text.contains("1 dead letter"), "{text}");

    let metrics = admin(at, "GET", "/metrics", "").1;
    let bytes = json(at, "/status.json", "")["spool"]["bytes"].as_u64().unwrap();
    for line in [
        "hookgate_spool_stored_total{route=\"notify\"} 1".to_string(),
        "hookgate_spool_dead_total{route=\"notify\"} 1".to_string(),
        "hookgate_spool_dead_letters{route=\"notify\"} 1".to_string(),
        "hookgate_spool_delivered_total{route=\"fine\"} 1".to_string(),
        "hookgate_spool_waiting{route=\"later\"} 1".to_string(),
        "hookgate_spool_waiting{route=\"fine\"} 0".to_string(),
        "hookgate_spool_not_kept_total{route=\"later\"} 0".to_string(),
        format!("hookgate_spool_bytes {bytes}"),
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    assert!(metrics.lines().any(|l| l.starts_with("hookgate_spool_oldest_seconds{route=\"later\"} ")), "{metrics}");

    // A route the config drops stays shown, orphaned, while it has requests; then it goes.
    let text = std::fs::read_to_string(&file).unwrap().replace("path = \"/later\"", "path = \"/later-renamed\"");
    daemon.rewrite_config(&text.replace("name = \"later\"", "name = \"later-renamed\""));
    daemon.signal("HUP");
    daemon.wait_for_log("reloaded", Duration::from_secs(10));
    let s = json(at, "/status.json", "");
    assert_eq!(
        (spool_route(&s, "later")["orphaned"].as_bool(), spool_route(&s, "later")["waiting"].as_u64()),
        (Some(true), Some(1))
    );
    assert!(admin(at, "GET", "/metrics", "").1.contains("hookgate_spool_waiting{route=\"later\"} 1"));
    let later_id = ids(at, false, "")[0];
    assert_eq!(admin(at, "POST", &format!("/spool/{later_id}/drop"), "").0, 200);
    assert!(spool_route(&json(at, "/status.json", ""), "later").is_null());
    assert!(
        !admin(at, "GET", "/metrics", "").1.contains("route=\"later\""),
        "an orphan with nothing kept is not exported"
    );
}

/// With no daemon to ask and no spool file, the tools say there is none
/// (a mistyped `[spool] dir` must not pass for an empty spool) and create nothing.
#[test]
fn without_a_spool_file_the_tools_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hookgate.toml");
    let toml =
        "[spool]\ndir = \"nowhere\"\n[upstreams.app]\nurl = \"http://127.0.0.1:9\"\n[default]\nupstream = \"app\"\n";
    std::fs::write(&file, toml).unwrap();
    let listed = spool_cli(&["list"], &file, 0);
    let spool_file = dir.path().join("nowhere/spool.sqlite3");
    assert!(listed.contains(&format!("there is no {}: nothing was ever kept there", spool_file.display())), "{listed}");
    assert!(listed.contains("no waiting requests"), "{listed}");
    assert!(spool_cli(&["show", "1"], &file, 1).contains("no request 1 in the spool"));
    assert!(!dir.path().join("nowhere").exists(), "nothing is created");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_spool_answers_503_and_counts_what_it_did_not_keep() {
    let dir = tempfile::tempdir().unwrap();
    let (to, _orders, _app) = upstreams().await;
    let config =
        config(dir.path(), "127.0.0.1:0", &to).replace("dir = \"spool\"", "dir = \"spool\"\nmax_bytes = \"64B\"");
    let daemon = Daemon::start_in(dir.path(), &config);
    assert_eq!(post(daemon.addr, "/later", &[], "too big for a 64-byte spool"), 503);
    let at = daemon.admin.unwrap();
    let later = spool_route(&json(at, "/status.json", ""), "later");
    assert_eq!((later["not_kept"].as_u64(), later["stored"].as_u64()), (Some(1), Some(0)), "{later:#}");
    assert!(admin(at, "GET", "/metrics", "").1.contains("hookgate_spool_not_kept_total{route=\"later\"} 1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spool_file_that_is_not_a_spool_leaves_the_daemon_serving_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (to, _orders, app) = upstreams().await;
    std::fs::create_dir(dir.path().join("spool")).unwrap();
    let garbage = vec![0xA5; 8192];
    std::fs::write(dir.path().join("spool/spool.sqlite3"), &garbage).unwrap();
    let mut daemon = Daemon::start_in(dir.path(), &config(dir.path(), &free_admin(), &to));
    let (at, file) = (daemon.admin.unwrap(), daemon.config_path.clone());

    assert_eq!(post(daemon.addr, "/fine", &[], "live"), 200, "a store route forwards as without store");
    assert!(app.seen().iter().any(|s| s.target == "/fine" && s.body == "live"));
    let (status, readyz, _) = admin(at, "GET", "/readyz", "");
    assert_eq!(status, 200, "{readyz}");
    let line = readyz.lines().find(|l| l.starts_with("spool: unusable: ")).unwrap_or_else(|| panic!("{readyz}"));
    assert!(line.contains("spool.sqlite3 cannot be used"), "{line}");
    let s = json(at, "/status.json", "");
    let spool = &s["spool"];
    assert_eq!((spool["state"].as_str(), spool["routes"].as_array().map(Vec::len)), (Some("broken"), Some(0)));
    assert!(spool["error"].as_str().unwrap().contains("cannot be used"), "{spool:#}");
    assert!(spool["file"].as_str().unwrap().ends_with("spool/spool.sqlite3"), "{spool:#}");
    assert!(s["trouble"].as_array().unwrap().iter().any(|t| t.as_str().unwrap().starts_with("spool: the spool file ")));
    assert!(admin(at, "GET", "/", "").1.contains("<span class=\"badge red\">broken</span>"));
    let (status, body, _) = admin(at, "GET", "/spool", "");
    assert!(status == 503 && body.starts_with("the spool is unusable: "), "{status} {body}");
    assert_eq!(hookgate(&["status"], &file).status.code(), Some(1));
    assert!(spool_cli(&["list"], &file, 69).contains("the daemon answered 503: the spool is unusable"));

    daemon.stop();
    assert!(spool_cli(&["list"], &file, 69).contains("cannot be used"));
    assert_eq!(std::fs::read(dir.path().join("spool/spool.sqlite3")).unwrap(), garbage, "the file is left untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_file_is_refused_while_a_daemon_without_admin_has_it() {
    let dir = tempfile::tempdir().unwrap();
    let (to, _orders, _app) = upstreams().await;
    let config = config(dir.path(), "127.0.0.1:0", &to).replacen("[admin]\naddr = \"127.0.0.1:0\"\n", "", 1);
    let daemon = Daemon::start_in(dir.path(), &config);
    daemon.wait_for_log("spool open", Duration::from_secs(10));
    let refused = spool_cli(&["list"], &daemon.config_path, 69);
    assert!(refused.contains("this config has no [admin] to ask a daemon"), "{refused}");
    assert!(refused.contains("is in use by another process (a running hookgate holds spool.lock)"), "{refused}");
}

/// A daemon with no `store` route, pointed at a spool another running
/// hookgate has open, leaves it to that one: no error, and its status is not
/// made "needs attention" by it (found by a walkthrough: a second instance on
/// the host of the packaged service said so, and failed tests run as root).
#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_without_store_leaves_a_spool_in_use_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (to, _orders, _app) = upstreams().await;
    let owner = Daemon::start_in(dir.path(), &config(dir.path(), "127.0.0.1:0", &to));
    owner.wait_for_log("spool open", Duration::from_secs(10));
    let other_dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let other = format!(
        "[listen]\naddrs = [\"127.0.0.1:0\"]\n[admin]\naddr = \"127.0.0.1:0\"\n[spool]\ndir = \"{}\"\n\
         [default]\nrespond = {{ status = 200 }}\n",
        spool.display()
    );
    let daemon = Daemon::start_in(other_dir.path(), &other);
    let line = daemon.wait_for_log("leaves it to that one", Duration::from_secs(10));
    assert!(line.contains("INFO") && line.contains("in use by another process"), "{line}");
    let s = json(daemon.admin.unwrap(), "/status.json", "");
    assert_ne!(s["spool"]["state"].as_str(), Some("broken"), "{s:#}");
    assert!(!s["trouble"].to_string().contains("spool"), "{s:#}");
}

/// A request being delivered right now is not dropped (its upstream may be
/// taking it): 409, and the CLI says so with exit 1; once the attempt ended
/// it can be.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_being_delivered_is_not_dropped() {
    let backend = common::webhook_senders::Backend::start("ok").await;
    backend.slow(Duration::from_secs(3));
    backend.answer_status(404, None); // final: a dead letter once the attempt ended
    let dir = tempfile::tempdir().unwrap();
    let admin_addr = free_admin();
    let config = format!(
        "[admin]\naddr = \"{admin_addr}\"\n[spool]\ndir = \"spool\"\n[upstreams.slow]\nurl = \"http://{}\"\n\
         [[routes]]\nname = \"hooks\"\npath = \"/hooks\"\nupstream = \"slow\"\nstore = {{ mode = \"always\" }}\n",
        backend.addr
    );
    let daemon = Daemon::start_in(dir.path(), &config);
    assert_eq!(post(daemon.addr, "/hooks", &[], "id=1"), 200);
    let at = daemon.admin.unwrap();
    let delivering = || spool_route(&json(at, "/status.json", ""), "hooks")["in_flight"].as_u64() == Some(1);
    assert!(eventually(Duration::from_secs(5), delivering), "the attempt is under way");
    let id = ids(at, false, "")[0];
    let (status, body, _) = admin(at, "POST", &format!("/spool/{id}/drop"), "");
    assert_eq!((status, body.as_str()), (409, format!("request {id} is being forwarded or delivered now\n").as_str()));
    let said = spool_cli(&["drop", &id.to_string()], &dir.path().join("hookgate.toml"), 1);
    assert!(said.contains("being forwarded or delivered now"), "{said}");
    assert!(eventually(Duration::from_secs(10), || ids(at, true, "") == [id]), "the attempt ends: a dead letter");
    assert_eq!(admin(at, "POST", &format!("/spool/{id}/drop"), "").0, 200, "then it can be dropped");
    assert!(ids(at, true, "").is_empty() && ids(at, false, "").is_empty());
}

//! Telegram deliverability, scored by a Telegram-like sender
//! (`common::telegram_sim`): at least 500 updates across at least 20 chats
//! per scenario, each update's fate checked against what the fake XBoard
//! backend handled. The scenario table (sent, once, twice, lost, repair time,
//! median delay) is printed for the record; the assertions are about fates,
//! never about timings.

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

use common::telegram_sim::{Tally, TelegramSim, Timings, median_delay, tally};
use common::webhook_backend::WebhookBackend;
use common::{Daemon, Webhook, eventually};

const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const SECRET: &str = "hookgate_Secret-42";
const CHATS: usize = 25;

fn access_token() -> String {
    Md5::digest(TOKEN.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The URL XBoard builds from its site URL, which is also this config's.
fn webhook_url() -> String {
    format!("https://www.example.com{}?access_token={}", common::WEBHOOK_PATH, access_token())
}

struct Setup {
    dir: tempfile::TempDir,
    sim: TelegramSim,
    backend: WebhookBackend,
    /// `[telegram] monitor_interval`; shorter where a test waits for the monitor.
    monitor_interval: &'static str,
}

impl Setup {
    async fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
        std::fs::write(dir.path().join("secret"), format!("{SECRET}\n")).unwrap();
        let sim = TelegramSim::start(TOKEN).await;
        Setup { dir, sim, backend: WebhookBackend::start(&access_token()).await, monitor_interval: "1s" }
    }

    /// The config; `listen` is the proxy address, `dedupe` adds the route's dedupe.
    fn config(&self, listen: &str, dedupe: bool) -> String {
        let mut webhook = Webhook::new(self.dir.path(), self.sim.api_addr)
            .allow_telegram()
            .secret()
            .monitor_interval(self.monitor_interval);
        if dedupe {
            webhook = webhook.route_line("dedupe = { key = \"telegram_update_id\", window = \"10m\" }");
        }
        format!(
            "[listen]\naddrs = [\"{listen}\"]\n[admin]\naddr = \"127.0.0.1:0\"\n[limits]\nshutdown_grace = \"5s\"\n\
             [upstreams.frontend]\nurl = \"http://127.0.0.1:9\"\n[upstreams.backend]\nurl = \"http://{}\"\n\
             {}[default]\nupstream = \"frontend\"\n{}",
            self.backend.addr,
            webhook.route(),
            webhook.telegram()
        )
    }

    /// Registers the webhook the way the operator does, before the daemon runs.
    fn set_webhook(&self, config: &str) {
        let path = self.dir.path().join("hookgate.toml");
        std::fs::write(&path, config).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .args(["telegram", "set-webhook", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// A daemon on `127.0.0.1:0` with the webhook registered.
    fn daemon(&self, dedupe: bool) -> Daemon {
        let config = self.config("127.0.0.1:0", dedupe);
        self.set_webhook(&config);
        Daemon::start(&config)
    }
}

fn report(scenario: &str, tally: &Tally, extra: &str) {
    eprintln!(
        "scenario {scenario:<28} sent {:>4}  once {:>4}  twice {:>2}  lost {:>2}  out-of-order {}  {extra}",
        tally.sent, tally.once, tally.twice, tally.lost, tally.out_of_order
    );
}

fn assert_exactly_once(tally: &Tally) {
    assert!(tally.sent >= 500, "{tally:?}");
    assert_eq!((tally.once, tally.twice, tally.lost, tally.out_of_order), (tally.sent, 0, 0, 0), "{tally:?}");
}

fn assert_no_secrets(logs: &[String]) {
    let text = logs.join("\n");
    for secret in [TOKEN, SECRET, access_token().as_str()] {
        assert!(!text.contains(secret), "a secret leaked into the logs:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn xboards_button_is_repaired_within_one_monitor_round() {
    let mut setup = Setup::new().await;
    setup.monitor_interval = "200ms";
    let daemon = setup.daemon(true);
    let sim = setup.sim.clone();
    let stream = tokio::spawn({
        let sim = sim.clone();
        let target = daemon.addr;
        async move { sim.deliver(target, CHATS, 24, Duration::from_millis(50), Timings::default(), 1).await }
    });
    // The button is pressed while updates flow: some have been handled.
    assert!(eventually(Duration::from_secs(10), || setup.backend.handled().len() >= CHATS), "no delivery");
    let pressed = Instant::now();
    sim.press_xboard_button(&webhook_url()).await;
    let fates = stream.await.unwrap();

    let calls = sim.set_calls();
    assert_eq!(calls.len(), 3, "the operator's, the button's and one repair: {calls:?}");
    let (repaired_at, params) = &calls[2];
    assert_eq!(params["url"], webhook_url().as_str());
    assert_eq!(params["secret_token"], SECRET, "the repair registers the route's secret again");
    let repair_time = repaired_at.duration_since(pressed);
    let line = daemon.wait_for_log("telegram webhook repaired", Duration::from_secs(5));
    assert!(line.contains("401/403 from the webhook"), "{line}");
    let tally = tally(&fates, &setup.backend.handled());
    report("xboard button", &tally, &format!("repair after {repair_time:?}"));
    assert_exactly_once(&tally);

    let admin = daemon.admin.unwrap();
    let metrics = common::get(admin, "localhost", "/metrics").body_text();
    assert!(metrics.contains("hookgate_telegram_webhook_repairs_total{result=\"success\"} 1"), "{metrics}");
    let readyz = common::get(admin, "localhost", "/readyz").body_text();
    assert!(readyz.contains("telegram last repair: ") && readyz.contains("(success)"), "{readyz}");

    // `hookgate telegram info` asks the daemon (through [admin]) for its last repair.
    let config = std::fs::read_to_string(&daemon.config_path).unwrap();
    let with_admin = config.replacen("addr = \"127.0.0.1:0\"", &format!("addr = \"{admin}\""), 1);
    let path = setup.dir.path().join("with-admin.toml");
    std::fs::write(&path, with_admin).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_hookgate")).args(["telegram", "info", "-c"]).arg(&path).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("repair:          on; last repair: ") && said.contains("(success)"), "{said}");
    let mut logs = daemon.logs();
    logs.push(said);
    assert_no_secrets(&logs);
}

/// Telegram refuses the repair's `setWebhook` with 429 and `retry_after`:
/// the repair waits that long before its next call, not its own shorter gap
/// (found by a hostile probe: called again after 20 s and 41 s when asked to
/// wait 300 s).
#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_repair_waits_for_telegrams_retry_after() {
    let setup = Setup::new().await;
    setup.sim.rate_limit_set_webhook(30);
    let config =
        setup.config("127.0.0.1:0", false).replace("monitor_interval = ", "repair_gap = \"1s\"\nmonitor_interval = ");
    // No webhook registered: the monitor's first round repairs, and is refused.
    let daemon = Daemon::start(&config);
    assert!(eventually(Duration::from_secs(10), || setup.sim.set_calls().len() == 1), "no repair was tried");
    daemon.wait_for_log("telegram webhook repair failed", Duration::from_secs(5));
    // Without retry_after the gap (1 s, doubling) would have let it call again twice by now.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(setup.sim.set_calls().len(), 1, "the repair called again within retry_after");
    assert!(setup.sim.info_calls() >= 4, "the monitor kept watching: {}", setup.sim.info_calls());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_url_this_config_would_not_route_is_never_registered_by_repair() {
    let mut setup = Setup::new().await;
    setup.monitor_interval = "100ms";
    // The route only takes GET, so Telegram's POST would go to the frontend.
    let config = setup.config("127.0.0.1:0", false).replace("methods = [\"POST\"]", "methods = [\"GET\"]");
    let mut daemon = Daemon::start(&config);
    setup.sim.press_xboard_button("https://elsewhere.example/hook").await;
    let line =
        daemon.wait_for_log("needs a repair, but this config's URL cannot be registered", Duration::from_secs(10));
    assert!(line.contains("would go to [default]"), "{line}");
    // Five more rounds that see the same state, then every line the daemon wrote.
    let rounds = setup.sim.info_calls() + 5;
    assert!(eventually(Duration::from_secs(10), || setup.sim.info_calls() >= rounds), "the monitor stopped");
    let logs = daemon.stop();
    assert_eq!(setup.sim.set_calls().len(), 1, "only the button's call: {:?}", setup.sim.set_calls());
    assert_eq!(setup.sim.webhook_url(), "https://elsewhere.example/hook");
    assert_eq!(logs.iter().filter(|l| l.contains("needs a repair")).count(), 1, "logged once");
    assert_no_secrets(&logs);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_restart_loses_and_repeats_nothing() {
    let setup = Setup::new().await;
    let daemon = setup.daemon(false);
    let stream = tokio::spawn({
        let (sim, target) = (setup.sim.clone(), daemon.addr);
        async move { sim.deliver(target, CHATS, 24, Duration::from_millis(100), Timings::default(), 1).await }
    });
    assert!(eventually(Duration::from_secs(10), || setup.backend.handled().len() >= 2 * CHATS), "no delivery");
    setup.backend.stop();
    let down = Instant::now();
    // Down until every chat's sender has failed three times: its immediate
    // retry and a backed-off one failed too.
    let felt = eventually(Duration::from_secs(20), || setup.sim.chats_failed(3) == CHATS);
    assert!(felt, "only {} of {CHATS} chats felt the outage", setup.sim.chats_failed(3));
    let down = down.elapsed();
    setup.backend.start_again().await;
    let fates = stream.await.unwrap();
    let tally = tally(&fates, &setup.backend.handled());
    let retried = fates.iter().filter(|f| f.attempts > 1).count();
    report(&format!("backend down {down:.1?}"), &tally, &format!("{retried} updates retried"));
    assert!(retried >= CHATS, "the outage must have been felt: {retried}");
    assert_exactly_once(&tally);
    assert_no_secrets(&daemon.logs());
}

/// One update answered after the sender's timeout is redelivered: with dedupe
/// the backend handles it once, without it twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_answer_is_handled_once_with_dedupe_and_twice_without() {
    for dedupe in [true, false] {
        let setup = Setup::new().await;
        let daemon = setup.daemon(dedupe);
        let timings = Timings::default();
        let slow_id = 7 * CHATS as i64 + 3;
        setup.backend.slow_for(slow_id, timings.answer_timeout * 3 / 2);
        let fates = setup.sim.deliver(daemon.addr, CHATS, 20, Duration::from_millis(50), timings, 0).await;
        let handled = setup.backend.handled();
        let tally = tally(&fates, &handled);
        let times = handled.iter().filter(|(_, id)| *id == slow_id).count();
        let slow = fates.iter().find(|f| f.update_id == slow_id).unwrap();
        report(
            if dedupe { "slow answer, dedupe on" } else { "slow answer, dedupe off" },
            &tally,
            &format!("slow update sent {} times, handled {times}", slow.attempts),
        );
        assert!(slow.attempts >= 2, "the slow update must have been redelivered: {slow:?}");
        assert_eq!((tally.sent, tally.lost, tally.out_of_order), (500, 0, 0), "{tally:?}");
        if dedupe {
            assert_eq!((times, tally.twice), (1, 0), "{tally:?}");
            let metrics = common::get(daemon.admin.unwrap(), "localhost", "/metrics").body_text();
            let suppressed = "hookgate_dedupe_suppressed_total{route=\"telegram-webhook\"}";
            assert!(metrics.lines().any(|l| l.starts_with(suppressed) && !l.ends_with(" 0")), "{metrics}");
            daemon.wait_for_log("redelivered update answered without forwarding it again", Duration::from_secs(2));
        } else {
            assert_eq!((times, tally.twice), (2, 1), "without dedupe the redelivery reaches XBoard again");
        }
        assert_no_secrets(&daemon.logs());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reloads_and_a_refused_broken_config_lose_nothing() {
    let setup = Setup::new().await;
    let daemon = setup.daemon(true);
    let good = std::fs::read_to_string(&daemon.config_path).unwrap();
    let stream = tokio::spawn({
        let (sim, target) = (setup.sim.clone(), daemon.addr);
        async move { sim.deliver(target, CHATS, 24, Duration::from_millis(100), Timings::default(), 1).await }
    });
    let reloads = || daemon.logs().iter().filter(|l| l.contains("reloaded ")).count();
    for done in 1..=5 {
        // Each config serves a round of updates, one per chat, before the next reload.
        let handled = setup.backend.handled().len() + CHATS;
        assert!(eventually(Duration::from_secs(10), || setup.backend.handled().len() >= handled), "stalled");
        daemon.signal("HUP");
        daemon.wait_for_lines("reloaded ", done, Duration::from_secs(5));
    }
    daemon.rewrite_config(&good.replace("upstream = \"backend\"", "upstream = \"nowhere\""));
    daemon.signal("HUP");
    daemon.wait_for_log("reload failed", Duration::from_secs(5));
    daemon.rewrite_config(&good);
    let fates = stream.await.unwrap();
    let tally = tally(&fates, &setup.backend.handled());
    report("5 reloads + a broken config", &tally, &format!("{} reloads done", reloads()));
    assert_eq!(reloads(), 5);
    assert_exactly_once(&tally);
    assert_no_secrets(&daemon.logs());
}

/// `systemd-socket-activate` holds the listening socket; the daemon under it
/// is stopped and started again while updates flow, so connections wait in
/// the kernel's queue instead of being refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_under_socket_activation_loses_nothing() {
    if !common::have_tool("systemd-socket-activate", "systemd") {
        return;
    }
    let setup = Setup::new().await;
    let port = common::free_port();
    // No listen address: only the inherited socket serves.
    let config = setup.config("127.0.0.1:9", true).replace("[listen]\naddrs = [\"127.0.0.1:9\"]\n", "");
    setup.set_webhook(&config);
    let path = setup.dir.path().join("hookgate.toml");
    // Each run is a fresh `sh` that execs hookgate, so LISTEN_PID is its pid;
    // the outer shell keeps the inherited socket open between the two runs.
    let run = format!(
        "sh -c 'export LISTEN_PID=$$; exec \"$0\" run -c \"$1\"' {hookgate} {path}",
        hookgate = env!("CARGO_BIN_EXE_hookgate"),
        path = path.display()
    );
    let mut activator = Command::new("systemd-socket-activate")
        .arg(format!("--listen=127.0.0.1:{port}"))
        .args(["sh", "-c", &format!("{run}; {run}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start systemd-socket-activate");
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert!(eventually(Duration::from_secs(20), || std::net::TcpStream::connect(target).is_ok()));
    let stream = tokio::spawn({
        let sim = setup.sim.clone();
        async move { sim.deliver(target, CHATS, 24, Duration::from_millis(100), Timings::default(), 1).await }
    });
    // The first hookgate is stopped while updates flow: some have been handled.
    assert!(eventually(Duration::from_secs(10), || setup.backend.handled().len() >= 2 * CHATS), "no delivery");
    let children = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default().trim().to_string()
    };
    let first = children(activator.id());
    assert!(!first.is_empty(), "hookgate must run under the activator");
    Command::new("kill").args(["-TERM", &first]).status().unwrap();
    let restarted = eventually(Duration::from_secs(10), || {
        let now = children(activator.id());
        !now.is_empty() && now != first
    });
    assert!(restarted, "the second hookgate did not start");
    let fates = stream.await.unwrap();
    let tally = tally(&fates, &setup.backend.handled());
    report("restart, socket activation", &tally, "");
    Command::new("kill").args(["-TERM", &children(activator.id())]).status().unwrap();
    let _ = activator.wait();
    assert_exactly_once(&tally);
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_delivery_is_reported() {
    let setup = Setup::new().await;
    let daemon = setup.daemon(true);
    let fates = setup.sim.deliver(daemon.addr, CHATS, 20, Duration::from_millis(20), Timings::default(), 1).await;
    let tally = tally(&fates, &setup.backend.handled());
    report("healthy", &tally, &format!("median delay {:?}", median_delay(&fates)));
    assert_exactly_once(&tally);
}

/// The engine's side of dedupe over raw sockets: a chunked update sent with
/// `Expect: 100-continue` reaches the backend byte for byte (re-framed with a
/// Content-Length); its redelivery is answered with the first answer without
/// reaching it; bodies
/// without an `update_id` pass through every time.
#[tokio::test(flavor = "multi_thread")]
async fn dedupe_forwards_the_body_unchanged_and_answers_the_redelivery_itself() {
    let backend = common::Upstream::start("backend").await;
    let config = format!(
        "[upstreams.backend]\nurl = \"{}\"\n[[routes]]\nname = \"hook\"\npath = \"/hook\"\nupstream = \"backend\"\n\
         dedupe = {{ key = \"telegram_update_id\" }}\n[default]\nrespond = {{ status = 404 }}\n",
        backend.url()
    );
    let daemon = Daemon::start(&config);
    let update = r#"{"update_id":42,"message":{"text":"caf\u00e9 \"quoted\""}}"#;
    let (first, second) = update.split_at(20);
    let mut stream = std::net::TcpStream::connect(daemon.addr).unwrap();
    use std::io::Write;
    let head = "POST /hook HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
    stream.write_all(head.as_bytes()).unwrap();
    let mut interim = [0u8; 25];
    std::io::Read::read_exact(&mut stream, &mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    let chunks = format!("{:x}\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\n\r\n", first.len(), second.len());
    stream.write_all(chunks.as_bytes()).unwrap();
    let answer = common::read_response(&mut stream).unwrap();
    assert_eq!((answer.status, answer.body.as_slice()), (200, &b"backend"[..]), "{}", daemon.logs().join("\n"));
    let seen = backend.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, update.as_bytes(), "the body reaches the backend unchanged");
    assert_eq!(seen[0].headers["content-length"], update.len().to_string().as_str());

    let again = format!("POST /hook HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{update}", update.len());
    stream.write_all(again.as_bytes()).unwrap();
    let answer = common::read_response(&mut stream).unwrap();
    assert_eq!((answer.status, answer.body.as_slice()), (200, &b"backend"[..]), "the redelivery gets the first answer");
    assert_eq!(backend.seen().len(), 1, "and never reaches the backend");

    for body in ["not json", r#"{"message":{"update_id":42}}"#] {
        let request = format!("POST /hook HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        stream.write_all(request.as_bytes()).unwrap();
        assert_eq!(common::read_response(&mut stream).unwrap().status, 200);
    }
    assert_eq!(backend.seen().len(), 3, "bodies without a top-level update_id always pass");
    let suppressed =
        daemon.wait_for_log("redelivered update answered without forwarding it again", Duration::from_secs(2));
    assert!(suppressed.contains("update_id=42"), "{suppressed}");
}

//! Store and forward (issue 30) through a whole backend outage, scored by
//! the senders' and the backend's records: a Telegram-like sender with
//! `fallback` and without `store`, and a payment gateway that gives up, with
//! `journal` and without `store`. The figures (lost, handled twice) are
//! printed with `common::say`; the assertions are about fates, not timings.

use crate::common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::spool_requests::{ACCESS_TOKEN, telegram_config};
use common::telegram_sim::{Tally, TelegramSim, Timings, tally};
use common::webhook_backend::WebhookBackend;
use common::webhook_senders::{Backend, PaymentGateway, spool_rows};
use common::{Daemon, eventually, say};

const CHATS: usize = 25;
const PER_CHAT: usize = 24;

/// 600 updates across 25 chats, one every 300 ms per chat (about 7 s),
/// with the backend down from 1.5 s to 5.5 s: Telegram's 3 minutes scaled
/// like its other timings (`Timings`). Telegram would keep an update for a
/// day; the sender here gives up on one after 2 s (about seven tries), which
/// is what an outage costs a sender that does give up. The backend's record
/// is read once every update has reached it or `settle` has passed.
async fn telegram_outage(store: &str, settle: Duration) -> (Tally, Daemon, Duration) {
    let sim = TelegramSim::start("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw").await;
    let backend = WebhookBackend::start(ACCESS_TOKEN).await;
    let daemon = Daemon::start(&telegram_config(backend.addr, store));
    let url = format!("https://www.example.com{}?access_token={ACCESS_TOKEN}", common::WEBHOOK_PATH);
    sim.press_xboard_button(&url).await;
    let timings = Timings { expiry: Duration::from_secs(2), ..Timings::default() };
    let started = Instant::now();
    let stream = tokio::spawn({
        let (sim, target) = (sim.clone(), daemon.addr);
        async move { sim.deliver(target, CHATS, PER_CHAT, Duration::from_millis(300), timings, 1).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    backend.stop();
    tokio::time::sleep(Duration::from_secs(4)).await;
    backend.start_again().await;
    let fates = tokio::time::timeout(Duration::from_secs(30), stream).await.expect("the sender finished").unwrap();
    let unique = || backend.handled().iter().map(|(_, id)| *id).collect::<std::collections::HashSet<_>>().len();
    eventually(settle, || unique() >= fates.len());
    let elapsed = started.elapsed();
    (tally(&fates, &backend.handled()), daemon, elapsed)
}

fn tally_line(tally: &Tally) -> String {
    format!(
        "sent {}, handled once {}, twice {}, lost {}, out of order {}",
        tally.sent, tally.once, tally.twice, tally.lost, tally.out_of_order
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn telegram_through_a_backend_outage_loses_and_repeats_nothing_with_fallback() {
    let store = "store = { mode = \"fallback\", order = \"telegram_chat\", expire = \"1h\" }";
    let (with_store, daemon, took) = telegram_outage(store, Duration::from_secs(25)).await;
    say(&format!("with store (fallback, telegram_chat): {} in {took:.1?}", tally_line(&with_store)));
    let kept = daemon.logs().iter().filter(|l| l.contains("spool: keeping the request")).count();
    assert!(kept >= CHATS, "the outage must have reached hookgate: {kept} requests kept");
    assert_eq!(with_store.sent, CHATS * PER_CHAT);
    assert_eq!(
        (with_store.once, with_store.twice, with_store.lost, with_store.out_of_order),
        (with_store.sent, 0, 0, 0),
        "{with_store:?}"
    );
    assert!(common::eventually(Duration::from_secs(5), || spool_rows(&daemon.dir().join("spool/spool.sqlite3")) == 0));

    let (without, _daemon, took) = telegram_outage("", Duration::from_secs(2)).await;
    say(&format!("without store: {} in {took:.1?}", tally_line(&without)));
    assert_eq!(without.sent, CHATS * PER_CHAT);
    assert!(without.lost > 0, "the same outage without store must lose updates: {without:?}");
}

/// The gateway's answers, the backend's record and the figures of one run.
struct GatewayRun {
    notifies: Vec<common::webhook_senders::Notify>,
    counts: HashMap<String, usize>,
}

/// 60 notifies, one every 50 ms, from a gateway that tries 4 times 250 ms
/// apart (about 0.75 s) and gives up; the backend (`success` when up) is down
/// from 0.5 s to 3.5 s, longer than the gateway tries.
async fn gateway_outage(store: &str, settle: Duration) -> (GatewayRun, Daemon) {
    let backend = Backend::start("success").await;
    let config = format!(
        "[spool]\ndir = \"spool\"\n[upstreams.frontend]\nurl = \"http://127.0.0.1:9\"\n\
         [upstreams.backend]\nurl = \"http://{}\"\n\
         [[routes]]\nname = \"payment-notify\"\npath_prefix = \"/api/v1/guest/payment/notify/\"\nupstream = \"backend\"\n\
         {store}\n[default]\nupstream = \"frontend\"\n",
        backend.addr
    );
    let daemon = Daemon::start(&config);
    let gateway = PaymentGateway { retries: 3, wait: Duration::from_millis(250), timeout: Duration::from_secs(3) };
    let sending = tokio::spawn(gateway.notify_all(daemon.addr, 60, Duration::from_millis(50)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    backend.down();
    tokio::time::sleep(Duration::from_secs(3)).await;
    backend.up().await;
    let notifies = tokio::time::timeout(Duration::from_secs(20), sending).await.expect("the gateway finished").unwrap();
    eventually(settle, || backend.counts("out_trade_no").len() >= notifies.len());
    (GatewayRun { notifies, counts: backend.counts("out_trade_no") }, daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_that_gives_up_loses_no_notify_with_journal() {
    let (run, daemon) =
        gateway_outage("store = { mode = \"journal\", order = \"none\" }", Duration::from_secs(25)).await;
    let given_up = run.notifies.iter().filter(|n| !n.acknowledged).count();
    let errors = run.notifies.iter().flat_map(|n| &n.answers).filter(|(status, _)| *status != 200).count();
    // hookgate never answers for the upstream: every 200 is the backend's `success`, every
    // other answer the 502 a down backend gets without store.
    for notify in &run.notifies {
        for (status, body) in &notify.answers {
            let backends = *status == 200 && body.trim() == "success";
            assert!(backends || *status == 502, "order {}: answered {status} {body:?}", notify.order);
        }
    }
    assert!(given_up > 0 && errors > 0, "the outage must outlast the gateway's retries: {given_up} given up");
    let lost: Vec<&String> =
        run.notifies.iter().map(|n| &n.order).filter(|order| !run.counts.contains_key(*order)).collect();
    let handled: usize = run.counts.values().sum();
    let twice = run.counts.values().filter(|n| **n > 1).count();
    say(&format!(
        "with journal: {} notifies, {given_up} given up by the gateway, {} lost, {twice} handled more than once \
         ({} extra deliveries)",
        run.notifies.len(),
        lost.len(),
        handled - run.counts.len()
    ));
    assert!(lost.is_empty(), "notifies never handled: {lost:?}");
    for notify in &run.notifies {
        // Each attempt that reached hookgate is one copy, delivered until the backend's 2xx.
        let reached = notify.answers.iter().filter(|(status, _)| *status != 0).count();
        let times = run.counts[&notify.order];
        assert!(times <= reached, "order {} handled {times} times from {reached} attempts", notify.order);
    }
    let spool = daemon.dir().join("spool/spool.sqlite3");
    assert!(eventually(Duration::from_secs(5), || spool_rows(&spool) == 0), "the spool drains");

    let (run, _daemon) = gateway_outage("", Duration::from_secs(1)).await;
    let lost = run.notifies.iter().filter(|n| !run.counts.contains_key(&n.order)).count();
    let given_up = run.notifies.iter().filter(|n| !n.acknowledged).count();
    say(&format!("without store: {} notifies, {given_up} given up by the gateway, {lost} lost", run.notifies.len()));
    assert!(lost > 0, "without store the notifies the gateway gave up on are lost");
    assert!(lost <= given_up, "only what the gateway gave up on can be lost: {lost} of {given_up}");
}

//! The request path's side of the spool against a real spool file: what each
//! mode keeps and answers, the place a live request holds in its chat's
//! line, a journal copy's fate by the live answer, and a full spool keeping
//! nothing.

use std::time::Duration;

use super::*;
use crate::spool::StoreMode;
use crate::spool::queue::Ready;

const ORDERED: Rules = Rules { ordered: true, concurrency: 8 };

fn spec(mode: StoreMode, order: StoreOrder) -> StoreSpec {
    StoreSpec { mode, ack: StatusCode::ACCEPTED, order, expire: Duration::from_secs(3600), concurrency: 8 }
}

async fn depot(dir: &std::path::Path, max_bytes: u64) -> Arc<Depot> {
    Depot::open(&SpoolSettings { dir: dir.to_path_buf(), max_bytes }).await.unwrap()
}

fn keeping(depot: &Arc<Depot>, spec: &StoreSpec, chat: i64) -> Keeping {
    let body = format!(r#"{{"update_id":{chat},"message":{{"chat":{{"id":{chat}}}}}}}"#).into_bytes();
    Keeping::new(depot.clone(), spec, "tg", "backend", b"POST /tg HTTP/1.1\r\nhost: a\r\n\r\n".to_vec(), body)
}

fn ready(depot: &Depot) -> Vec<Ready> {
    depot.take_ready(|_| ORDERED).0
}

async fn rows(depot: &Depot) -> usize {
    depot.spool().read(|c| read::list(c, &read::Filter::default())).await.unwrap().len()
}

#[tokio::test]
async fn always_keeps_and_acknowledges_and_the_request_is_due_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let depot = depot(dir.path(), 1 << 20).await;
    let admitted = keeping(&depot, &spec(StoreMode::Always, StoreOrder::None), 1).admit().await;
    assert!(matches!(admitted, Admitted::Kept(StatusCode::ACCEPTED)));
    assert_eq!(rows(&depot).await, 1);
    let due = ready(&depot);
    assert_eq!(due.len(), 1);
    depot.delivered(&due[0]).await;
    assert_eq!(rows(&depot).await, 0, "a delivered request is forgotten");
    assert_eq!(depot.report()[0].stats.delivered, 1);
}

#[tokio::test]
async fn a_chat_with_a_request_in_flight_keeps_its_next_ones_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let depot = depot(dir.path(), 1 << 20).await;
    let fallback = spec(StoreMode::Fallback, StoreOrder::TelegramChat);
    let Admitted::Live(first) = keeping(&depot, &fallback, 5).admit().await else { panic!("an empty line goes live") };
    let second = keeping(&depot, &fallback, 5).admit().await;
    assert!(matches!(second, Admitted::Kept(_)), "kept behind the live one");
    let Admitted::Live(other) = keeping(&depot, &fallback, 6).admit().await else { panic!("other chats go live") };
    assert!(ready(&depot).is_empty(), "the kept one waits for the live one ahead of it");
    first.answered(200);
    other.answered(200);
    assert_eq!(ready(&depot).len(), 1, "then it is due");
}

#[tokio::test]
async fn fallback_keeps_a_request_whose_live_attempt_failed() {
    let dir = tempfile::tempdir().unwrap();
    let depot = depot(dir.path(), 1 << 20).await;
    let Admitted::Live(live) = keeping(&depot, &spec(StoreMode::Fallback, StoreOrder::TelegramChat), 5).admit().await
    else {
        panic!()
    };
    let kept = live.live_failed("backend answered 503").await;
    assert!(matches!(kept, Some(Admitted::Kept(StatusCode::ACCEPTED))));
    assert_eq!(rows(&depot).await, 1);
    assert_eq!(ready(&depot).len(), 1);
}

#[tokio::test]
async fn a_journal_copy_is_forgotten_after_a_final_answer_and_redelivered_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let depot = depot(dir.path(), 1 << 20).await;
    let journal = spec(StoreMode::Journal, StoreOrder::None);
    let Admitted::Live(ok) = keeping(&depot, &journal, 1).admit().await else { panic!() };
    let Admitted::Live(failed) = keeping(&depot, &journal, 2).admit().await else { panic!() };
    let Admitted::Live(abandoned) = keeping(&depot, &journal, 3).admit().await else { panic!() };
    let Admitted::Live(refused) = keeping(&depot, &journal, 4).admit().await else { panic!() };
    assert_eq!(rows(&depot).await, 4, "each copy is kept before it is forwarded");
    assert!(ready(&depot).is_empty(), "nothing is due while it is live");
    ok.answered(200);
    failed.answered(503);
    refused.answered(404); // final, and the sender got it: forgotten, no dead letter
    drop(abandoned); // the client left: the copy waits for the deliverer
    let waited = tokio::time::timeout(Duration::from_secs(5), async {
        let mut due = 0;
        while rows(&depot).await != 2 || due < 2 {
            due += depot.take_ready(|_| Rules { ordered: false, concurrency: 8 }).0.len();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert!(waited.await.is_ok(), "the 2xx and 404 copies are forgotten, the other two are due");
    assert!(depot.report().iter().all(|r| r.stats.dead == 0), "a live 404 makes no dead letter");
}

#[tokio::test]
async fn a_full_spool_keeps_nothing_and_holds_no_place() {
    let dir = tempfile::tempdir().unwrap();
    let depot = depot(dir.path(), 50).await;
    let always = spec(StoreMode::Always, StoreOrder::TelegramChat);
    let admitted = keeping(&depot, &always, 5).admit().await;
    assert!(matches!(admitted, Admitted::NotKept(SpoolError::Full { .. })));
    assert_eq!(rows(&depot).await, 0);
    assert!(depot.report().iter().all(|r| r.waiting == 0 && r.stats.not_kept == 1));
}

#[tokio::test]
async fn a_restart_queues_what_was_kept_in_order_and_counts_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    {
        let depot = depot(dir.path(), 1 << 20).await;
        let always = spec(StoreMode::Always, StoreOrder::TelegramChat);
        for _ in 0..3 {
            keeping(&depot, &always, 5).admit().await;
        }
        let first = ready(&depot).remove(0);
        depot.bury(&first, 1, Some(404), "answered 404".into(), b"no".to_vec()).await;
    }
    let depot = depot(dir.path(), 1 << 20).await;
    let report = depot.report();
    assert_eq!((report[0].waiting, report[0].stats.dead), (2, 1));
    let due = ready(&depot);
    assert_eq!(due.len(), 1, "one at a time in the chat's line");
    assert_eq!(due[0].id, 2, "the oldest waiting one first");
}

/// A delivered request the spool cannot delete (here another writer holds
/// the file's lock; in the field, a full disk) is deleted on a later try, so
/// a restart does not deliver it again (found by a probe on a full tmpfs).
#[tokio::test]
async fn a_delivered_request_that_could_not_be_forgotten_is_forgotten_later() {
    let dir = tempfile::tempdir().unwrap();
    let depot = depot(dir.path(), 1 << 20).await;
    let admitted = keeping(&depot, &spec(StoreMode::Always, StoreOrder::None), 1).admit().await;
    assert!(matches!(admitted, Admitted::Kept(_)));
    let due = ready(&depot);
    let blocker = rusqlite::Connection::open(dir.path().join(crate::spool::FILE_NAME)).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    depot.delivered(&due[0]).await; // fails after SQLite's busy wait (rusqlite's default: 5 s)
    assert_eq!(rows(&depot).await, 1, "the delete failed while the file was locked");
    blocker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(depot.forget_delivered().await, None, "nothing left to forget");
    assert_eq!(rows(&depot).await, 0, "forgotten on the later try");
    assert!(ready(&depot).is_empty(), "and never due again meanwhile");
}

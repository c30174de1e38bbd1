//! The queues' rules without a spool: an ordered line delivers its head only
//! and a live request holds its place; an unordered route runs up to its
//! concurrency; a retry waits for its time.

use super::*;
use crate::spool::Pending;

fn kept(id: i64, queue: &str) -> Pending {
    Pending {
        id,
        route: "tg".into(),
        upstream: "backend".into(),
        queue: queue.into(),
        received_ms: id,
        expires_ms: i64::MAX,
        attempts: 0,
    }
}

const ORDERED: Rules = Rules { ordered: true, concurrency: 8 };

#[test]
fn an_ordered_line_delivers_one_at_a_time_in_arrival_order() {
    let mut queues = Queues::default();
    let now = Instant::now();
    let first = queues.add(&kept(1, "chat:1"), now);
    queues.add(&kept(2, "chat:1"), now);
    queues.add(&kept(3, "chat:2"), now);
    let (ready, _) = queues.take_ready(now, |_| ORDERED);
    let mut ids: Vec<i64> = ready.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 3], "one per chat, the oldest");
    assert!(queues.take_ready(now, |_| ORDERED).0.is_empty(), "nothing more until they end");
    queues.remove("tg", first);
    assert_eq!(queues.take_ready(now, |_| ORDERED).0.iter().map(|r| r.id).collect::<Vec<_>>(), [2]);
}

#[test]
fn a_live_request_holds_its_place_and_later_ones_wait_behind_it() {
    let mut queues = Queues::default();
    let now = Instant::now();
    let (live, arrival) = queues.arrive("tg", "chat:1", "backend", now, true);
    assert_eq!(arrival, Arrival::Live);
    let (behind, arrival) = queues.arrive("tg", "chat:1", "backend", now, true);
    assert_eq!(arrival, Arrival::Behind, "its line is not empty");
    queues.kept("tg", behind, &kept(7, "chat:1"), now);
    assert!(queues.take_ready(now, |_| ORDERED).0.is_empty(), "the live one is ahead of it");
    queues.remove("tg", live);
    assert_eq!(queues.take_ready(now, |_| ORDERED).0.iter().map(|r| r.id).collect::<Vec<_>>(), [7]);
}

#[test]
fn an_unordered_route_runs_up_to_its_concurrency_and_retries_wait() {
    let mut queues = Queues::default();
    let now = Instant::now();
    for id in 1..=5 {
        queues.add(&kept(id, ""), now);
    }
    let rules = |_: &str| Rules { ordered: false, concurrency: 3 };
    let (ready, _) = queues.take_ready(now, rules);
    assert_eq!(ready.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2, 3]);
    let later = now + Duration::from_secs(5);
    queues.retry("tg", ready[0].key, 1, later);
    let (ready, next) = queues.take_ready(now, rules);
    assert_eq!(ready.iter().map(|r| r.id).collect::<Vec<_>>(), [4], "one slot came free");
    assert_eq!(next, Some(later), "the retry's time is the next wake-up");
    let depth = &queues.depths()["tg"];
    assert_eq!((depth.waiting, depth.in_flight, depth.oldest_ms), (5, 3, Some(1)));
}

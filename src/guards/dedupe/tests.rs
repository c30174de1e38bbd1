//! The table: what is remembered, what waits, what expires and what a full table gives up.

use super::*;

fn table(max_keys: usize) -> Arc<Dedupe> {
    Dedupe::new(DedupeSpec { key: KeySource::TelegramUpdateId, window: Duration::from_secs(60), max_keys })
}

fn key(n: u64) -> Key {
    Key::new(n.to_string().as_bytes()).unwrap()
}

/// Claims `n` and answers 200 with `body`.
fn answer(dedupe: &Arc<Dedupe>, n: u64, body: &[u8]) {
    let Claim::Forward(ticket) = dedupe.claim(key(n)) else { panic!("{n} must be forwarded") };
    let mut capture = ticket.head(200, Some(b"text/plain"), None).expect("a 2xx is captured");
    assert!(capture.push(body));
    capture.finish();
}

fn answered(claim: Claim) -> Option<Answer> {
    match claim {
        Claim::Answered(answer) => Some(answer),
        _ => None,
    }
}

#[test]
fn a_2xx_answer_is_remembered_whole_and_anything_else_forgotten() {
    let dedupe = table(10);
    let Claim::Forward(ticket) = dedupe.claim(key(1)) else { panic!("the first request must be forwarded") };
    let mut capture = ticket.head(201, Some(b"application/json"), Some(26)).unwrap();
    assert!(capture.push(br#"{"method":"sendMessage","#) && capture.push(b"}"));
    capture.finish();
    let repeat = answered(dedupe.claim(key(1))).expect("the repeat is answered here");
    assert_eq!(repeat.status, 201);
    assert_eq!(repeat.content_type.unwrap(), "application/json");
    assert_eq!(&repeat.body[..], br#"{"method":"sendMessage",}"#);

    let Claim::Forward(ticket) = dedupe.claim(key(2)) else { panic!() };
    assert!(ticket.head(502, None, Some(0)).is_none());
    assert!(matches!(dedupe.claim(key(2)), Claim::Forward(_)), "a failed answer lets the retry through");

    let Claim::Forward(ticket) = dedupe.claim(key(3)) else { panic!() };
    drop(ticket.head(200, None, Some(2)));
    assert!(matches!(dedupe.claim(key(3)), Claim::Forward(_)), "a body that did not end lets the retry through");

    let Claim::Forward(ticket) = dedupe.claim(key(4)) else { panic!() };
    ticket.head(204, None, Some(0)).unwrap().finish();
    let empty = answered(dedupe.claim(key(4))).unwrap();
    assert_eq!((empty.status, empty.content_type, empty.body.len()), (204, None, 0));
}

#[test]
fn answers_short_and_long_come_back_byte_for_byte() {
    let dedupe = table(10);
    let long_type = format!("text/plain; charset=utf-8; {}", "x".repeat(100));
    for (n, content_type, pieces) in [
        (1, "text/html; charset=UTF-8", vec!["succ", "ess"]),
        (2, "application/json", vec![r#"{"method":"sendMessage","#, r#""chat_id":42,"text":"paid"}"#]),
        (3, long_type.as_str(), vec!["ok"]),
        (4, "", vec![""]),
        (5, "text/plain", vec!["a"; 300]),
    ] {
        let Claim::Forward(ticket) = dedupe.claim(key(n)) else { panic!() };
        let mut capture = ticket.head(200, Some(content_type.as_bytes()), None).unwrap();
        for piece in &pieces {
            assert!(capture.push(piece.as_bytes()));
        }
        capture.finish();
        let answer = answered(dedupe.claim(key(n))).unwrap();
        assert_eq!(
            answer.content_type.as_ref().map(|t| t.as_bytes()),
            (!content_type.is_empty()).then_some(content_type.as_bytes())
        );
        assert_eq!(answer.body, pieces.concat().as_bytes(), "answer {n}");
    }
}

#[test]
fn only_bodies_up_to_max_body_are_remembered() {
    let dedupe = table(10);
    let Claim::Forward(ticket) = dedupe.claim(key(1)) else { panic!() };
    assert!(ticket.head(200, None, Some(MAX_BODY as u64 + 1)).is_none(), "a declared longer body is not captured");
    assert!(matches!(dedupe.claim(key(1)), Claim::Forward(_)));

    let Claim::Forward(ticket) = dedupe.claim(key(2)) else { panic!() };
    let mut capture = ticket.head(200, None, None).unwrap();
    assert!(capture.push(&[b'x'; MAX_BODY]));
    assert!(!capture.push(b"y"), "one byte more and the capture gives up");
    drop(capture);
    assert!(matches!(dedupe.claim(key(2)), Claim::Forward(_)), "a chunked body over the limit is forgotten");

    let Claim::Forward(ticket) = dedupe.claim(key(3)) else { panic!() };
    assert!(ticket.head(200, Some(&[b'a'; MAX_CONTENT_TYPE + 1]), Some(2)).is_none());

    let Claim::Forward(ticket) = dedupe.claim(key(4)) else { panic!() };
    ticket.remember(200, Some(&HeaderValue::from_static("text/plain")), &[b'x'; MAX_BODY]);
    assert_eq!(answered(dedupe.claim(key(4))).unwrap().body.len(), MAX_BODY);
}

#[test]
fn a_repeat_in_flight_waits_until_the_first_answer_ends() {
    let dedupe = table(10);
    let Claim::Forward(ticket) = dedupe.claim(key(5)) else { panic!() };
    let Claim::Wait(waiting) = dedupe.claim(key(5)) else { panic!("the second request must wait") };
    let Claim::Wait(also) = dedupe.claim(key(5)) else { panic!() };
    let mut capture = ticket.head(200, None, None).unwrap();
    assert!(matches!(waiting.has_changed(), Ok(false)), "the head alone does not end the wait");
    assert!(capture.push(b"ok"));
    assert!(matches!(dedupe.claim(key(5)), Claim::Wait(_)), "nor a part of the body");
    capture.finish();
    assert!(waiting.has_changed().is_err() && also.has_changed().is_err(), "the end of the body wakes them");
    assert_eq!(&answered(dedupe.claim(key(5))).unwrap().body[..], b"ok");

    let Claim::Forward(ticket) = dedupe.claim(key(6)) else { panic!() };
    let Claim::Wait(waiting) = dedupe.claim(key(6)) else { panic!() };
    drop(ticket);
    assert!(waiting.has_changed().is_err(), "the waiter learns that the first request ended unremembered");
    assert!(matches!(dedupe.claim(key(6)), Claim::Forward(_)), "and claims it for itself");
}

#[tokio::test(start_paused = true)]
async fn settle_waits_for_the_answer_then_times_out() {
    let dedupe = table(10);
    let Claim::Forward(ticket) = dedupe.claim(key(1)) else { panic!() };
    let waiter = tokio::spawn({
        let dedupe = dedupe.clone();
        async move { dedupe.settle(key(1), Duration::from_secs(30)).await }
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    ticket.remember(200, None, b"success");
    let Ok(Settled::Repeat(answer)) = waiter.await else { panic!("the waiter gets the first answer") };
    assert_eq!(&answer.body[..], b"success");

    let Claim::Forward(_in_flight) = dedupe.claim(key(2)) else { panic!() };
    let started = tokio::time::Instant::now();
    assert!(matches!(dedupe.settle(key(2), Duration::from_secs(30)).await, Settled::TimedOut));
    assert_eq!(started.elapsed(), Duration::from_secs(30));
}

#[test]
fn answers_expire_in_answer_order() {
    let dedupe = table(10);
    let start = Instant::now();
    for n in 1..=3 {
        answer(&dedupe, n, b"ok");
    }
    assert!(answered(dedupe.claim_at(key(1), start)).is_some());
    // Past the window, every answer is gone, and claiming expires them.
    let later = Instant::now() + Duration::from_secs(60);
    let Claim::Forward(_fresh) = dedupe.claim_at(key(3), later) else { panic!("an expired key is forwarded") };
    assert_eq!(dedupe.lock().entries.len(), 1, "only the new claim is left");
    assert_eq!(dedupe.lock().answer_bytes, 0);
}

#[test]
fn a_full_table_evicts_its_oldest_answer_and_never_a_key_in_flight() {
    let dedupe = table(3);
    let Claim::Forward(in_flight) = dedupe.claim(key(100)) else { panic!() };
    for n in 1..=2 {
        answer(&dedupe, n, b"ok");
    }
    answer(&dedupe, 3, b"ok");
    let held = |n| dedupe.lock().entries.contains_key(&key(n));
    assert!(!held(1), "the oldest answer made room");
    assert!(held(2) && held(3) && held(100), "the key in flight stays");
    answer(&dedupe, 4, b"ok");
    assert!(!held(2) && held(3) && held(4) && held(100));
    assert!(matches!(dedupe.claim(key(100)), Claim::Wait(_)));

    // Full of keys in flight: new keys pass through unremembered.
    let dedupe = table(2);
    let (Claim::Forward(a), Claim::Forward(b)) = (dedupe.claim(key(1)), dedupe.claim(key(2))) else { panic!() };
    let Claim::Forward(unremembered) = dedupe.claim(key(3)) else { panic!() };
    assert!(unremembered.head(200, None, Some(0)).is_none(), "nothing to remember it in");
    assert!(matches!(dedupe.claim(key(3)), Claim::Forward(_)));
    drop((a, b, in_flight));
}

#[test]
fn remembered_bytes_are_bounded_by_evicting_the_oldest() {
    let dedupe = table(100_000);
    let body = [b'x'; MAX_BODY];
    let over = MAX_ANSWER_BYTES / (MAX_BODY + 10) + 100;
    for n in 0..over as u64 {
        answer(&dedupe, n, &body);
    }
    let table = dedupe.lock();
    assert!(table.answer_bytes <= MAX_ANSWER_BYTES, "{}", table.answer_bytes);
    assert!(table.entries.len() < over && !table.entries.contains_key(&key(0)));
    assert!(table.entries.contains_key(&key(over as u64 - 1)));
}

/// Each claim on a full table costs the same whatever the table holds: the
/// table this replaced searched all of it for expired keys on every new key
/// (100,000 claims on a full 200,000-key table took minutes; this, a second).
#[test]
fn claims_on_a_full_table_do_not_search_it() {
    let dedupe = table(200_000);
    for n in 0..200_000 {
        answer(&dedupe, n, b"");
    }
    let started = Instant::now();
    for n in 200_000..300_000 {
        answer(&dedupe, n, b"");
    }
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    assert_eq!(dedupe.sweep(), 200_000);
    assert!(answered(dedupe.claim(key(299_999))).is_some() && answered(dedupe.claim(key(99_999))).is_none());
}

#[test]
fn sweep_forgets_expired_keys_and_keeps_the_rest() {
    let dedupe =
        Dedupe::new(DedupeSpec { key: KeySource::TelegramUpdateId, window: Duration::from_millis(50), max_keys: 10 });
    answer(&dedupe, 1, b"ok");
    let Claim::Forward(_in_flight) = dedupe.claim(key(2)) else { panic!() };
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(dedupe.sweep(), 1, "the key in flight is kept");
    assert!(matches!(dedupe.claim(key(1)), Claim::Forward(_)));
}

/// A table takes its room once (it never copies itself by doubling while it
/// fills), and gives it back when it empties.
#[test]
fn a_table_takes_its_room_at_once_and_gives_it_back_when_empty() {
    let dedupe = Dedupe::new(DedupeSpec {
        key: KeySource::TelegramUpdateId,
        window: Duration::from_millis(50),
        max_keys: 5_000,
    });
    answer(&dedupe, 1, b"ok");
    let room = |dedupe: &Dedupe| {
        let table = dedupe.lock();
        (table.entries.capacity(), table.order.capacity())
    };
    let first = room(&dedupe);
    assert!(first.0 >= 5_000 && first.1 >= 5_000, "{first:?}");
    for n in 2..=5_000 {
        answer(&dedupe, n, b"ok");
    }
    assert_eq!(room(&dedupe), first, "no regrowth");
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(dedupe.sweep(), 0);
    assert!(room(&dedupe).0 < 100, "{:?}", room(&dedupe));
}

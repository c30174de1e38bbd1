//! Duplicate suppression for Telegram updates (`dedupe` on a route).
//!
//! Telegram sends an update again when the answer took longer than 60 s or
//! the connection dropped after the backend had handled it. A route with
//! `dedupe` remembers, for `window`, each `update_id` the backend answered
//! with 2xx: a redelivery is answered here with the same status and an empty
//! body instead of being forwarded again. A redelivery that arrives while the
//! first copy is still in flight waits for that answer and gets its status.
//! A non-2xx or unfinished answer is forgotten, so Telegram's retry goes
//! through. Memory is bounded like `rate_limit`: at most `max_keys` ids; when
//! full, expired ones are dropped, and if it is still full new ids pass
//! through unremembered. `DedupeSpec` is the validated `dedupe` setting a
//! table runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// A validated `dedupe = { key = "telegram_update_id", window, max_keys }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupeSpec {
    pub window: Duration,
    pub max_keys: usize,
}

impl DedupeSpec {
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(600);
    pub const DEFAULT_MAX_KEYS: usize = 100_000;
}

/// The update id Telegram puts at the top of every update.
pub fn update_id(body: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Update {
        update_id: Option<i64>,
    }
    serde_json::from_slice::<Update>(body).ok()?.update_id
}

enum Entry {
    /// Forwarded; the sender publishes the backend's status when it answers.
    InFlight(watch::Sender<Option<u16>>),
    /// Answered with a 2xx `status` at `at`.
    Answered { status: u16, at: Instant },
}

/// One route's table of update ids, shared across reloads while the route
/// keeps its name and `dedupe` settings.
pub struct Dedupe {
    spec: DedupeSpec,
    entries: Mutex<HashMap<i64, Entry>>,
}

/// What to do with an update.
pub enum Claim {
    /// Forward it; report the answer through the ticket.
    Forward(Ticket),
    /// Already answered with this status: answer the same, do not forward.
    Answered(u16),
    /// The first copy is in flight: wait for its status (`None` if it ended
    /// without one, then claim again).
    Wait(watch::Receiver<Option<u16>>),
}

impl Dedupe {
    pub fn new(spec: DedupeSpec) -> Arc<Self> {
        Arc::new(Dedupe { spec, entries: Mutex::default() })
    }

    pub fn spec(&self) -> DedupeSpec {
        self.spec
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i64, Entry>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Decides what to do with update `id`.
    pub fn claim(self: &Arc<Self>, id: i64) -> Claim {
        let mut entries = self.lock();
        let now = Instant::now();
        match entries.get(&id) {
            Some(Entry::Answered { status, at }) if now.duration_since(*at) < self.spec.window => {
                return Claim::Answered(*status);
            }
            Some(Entry::InFlight(sender)) => return Claim::Wait(sender.subscribe()),
            _ => {}
        }
        if entries.len() >= self.spec.max_keys && !entries.contains_key(&id) {
            Self::forget_expired(&mut entries, self.spec.window, now);
            if entries.len() >= self.spec.max_keys {
                return Claim::Forward(Ticket { table: None, id });
            }
        }
        entries.insert(id, Entry::InFlight(watch::Sender::new(None)));
        Claim::Forward(Ticket { table: Some(self.clone()), id })
    }

    /// Claims update `id`, waiting (at most `wait_limit`) for a copy in flight.
    pub async fn settle(self: &Arc<Self>, id: i64, wait_limit: Duration) -> Settled {
        loop {
            match self.claim(id) {
                Claim::Forward(ticket) => return Settled::Forward(ticket),
                Claim::Answered(status) => return Settled::Repeat(status),
                Claim::Wait(mut first) => {
                    let answer = async { first.wait_for(Option::is_some).await.map(|status| *status) };
                    match tokio::time::timeout(wait_limit, answer).await {
                        Ok(Ok(status)) => return Settled::Repeat(status.unwrap_or(200)),
                        // The first copy ended without an answer: claim again.
                        Ok(Err(_)) => continue,
                        Err(_) => return Settled::TimedOut,
                    }
                }
            }
        }
    }

    /// Drops ids older than the window; returns how many are kept.
    pub fn sweep(&self) -> usize {
        let mut entries = self.lock();
        Self::forget_expired(&mut entries, self.spec.window, Instant::now());
        entries.shrink_to_fit();
        entries.len()
    }

    fn forget_expired(entries: &mut HashMap<i64, Entry>, window: Duration, now: Instant) {
        entries.retain(|_, entry| match entry {
            Entry::InFlight(_) => true,
            Entry::Answered { at, .. } => now.duration_since(*at) < window,
        });
    }
}

/// How a claim ended, waiting included.
pub enum Settled {
    /// Forward the update; report the answer through the ticket.
    Forward(Ticket),
    /// Answer this status (the first copy's) without forwarding.
    Repeat(u16),
    /// The first copy is still in flight after the wait limit.
    TimedOut,
}

/// The right to forward one update. Dropped without `answered`, it forgets
/// the id, so waiting redeliveries claim it again.
pub struct Ticket {
    /// `None` when the table was full and the id is not remembered.
    table: Option<Arc<Dedupe>>,
    id: i64,
}

impl Ticket {
    /// The backend answered `status`: a 2xx is remembered for the window.
    pub fn answered(mut self, status: u16) {
        let Some(table) = self.table.take() else { return };
        let mut entries = table.lock();
        let entry = if (200..300).contains(&status) {
            entries.insert(self.id, Entry::Answered { status, at: Instant::now() })
        } else {
            entries.remove(&self.id)
        };
        if let Some(Entry::InFlight(sender)) = entry {
            sender.send_replace(Some(status));
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(table) = self.table.take() {
            // Dropping the sender tells waiters to claim again.
            table.lock().remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(max_keys: usize) -> Arc<Dedupe> {
        Dedupe::new(DedupeSpec { window: Duration::from_secs(60), max_keys })
    }

    #[test]
    fn update_ids_are_read_from_the_top_level_only() {
        assert_eq!(update_id(br#"{"update_id":42,"message":{"update_id":7}}"#), Some(42));
        assert_eq!(update_id(br#"{"message":{"update_id":7}}"#), None);
        assert_eq!(update_id(br#"{"update_id":"42"}"#), None);
        assert_eq!(update_id(b"not json"), None);
    }

    #[test]
    fn a_2xx_answer_is_remembered_and_anything_else_forgotten() {
        let dedupe = table(10);
        let Claim::Forward(ticket) = dedupe.claim(1) else { panic!("first copy must be forwarded") };
        ticket.answered(200);
        assert!(matches!(dedupe.claim(1), Claim::Answered(200)));

        let Claim::Forward(ticket) = dedupe.claim(2) else { panic!() };
        ticket.answered(502);
        assert!(matches!(dedupe.claim(2), Claim::Forward(_)), "a failed answer must let the retry through");

        let Claim::Forward(ticket) = dedupe.claim(3) else { panic!() };
        drop(ticket);
        assert!(matches!(dedupe.claim(3), Claim::Forward(_)), "an unfinished exchange must let the retry through");
    }

    #[test]
    fn a_redelivery_in_flight_waits_for_the_first_answer() {
        let dedupe = table(10);
        let Claim::Forward(ticket) = dedupe.claim(5) else { panic!() };
        let Claim::Wait(mut waiting) = dedupe.claim(5) else { panic!("the second copy must wait") };
        ticket.answered(204);
        assert_eq!(*waiting.borrow_and_update(), Some(204));

        let Claim::Forward(ticket) = dedupe.claim(6) else { panic!() };
        let Claim::Wait(waiting) = dedupe.claim(6) else { panic!() };
        drop(ticket);
        assert!(waiting.has_changed().is_err(), "the waiter learns that the first copy ended without an answer");
    }

    #[test]
    fn a_full_table_passes_new_ids_through_unremembered() {
        let dedupe = table(2);
        for id in [1, 2] {
            let Claim::Forward(ticket) = dedupe.claim(id) else { panic!() };
            ticket.answered(200);
        }
        let Claim::Forward(ticket) = dedupe.claim(3) else { panic!() };
        ticket.answered(200);
        assert!(matches!(dedupe.claim(3), Claim::Forward(_)));
        assert_eq!(dedupe.sweep(), 2);
    }
}

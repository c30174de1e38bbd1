//! The delivery queues in memory: per route, one line per queue key (a
//! Telegram chat, or one line for the whole route), each in arrival order.
//! A slot is a request that is kept (or about to be, or being forwarded live
//! while it holds its place in an ordered line). Plain data: `depot` locks
//! it, `delivery` asks it what is ready.

use std::collections::{BTreeMap, HashMap};
#[cfg(test)]
use std::time::Duration;
use std::time::Instant;

/// Where a slot is in its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotKey {
    seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Being forwarded live; it holds its place in an ordered line.
    Live,
    /// Being written to the spool.
    Storing,
    /// Kept, waiting for its next attempt.
    Waiting,
    /// An attempt is in flight.
    Delivering,
}

#[derive(Debug)]
struct Slot {
    state: State,
    id: Option<i64>,
    upstream: String,
    received_ms: i64,
    expires_ms: i64,
    attempts: u32,
    next_at: Instant,
}

/// What a route's requests need from the config to be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// One at a time per line, in order.
    pub ordered: bool,
    /// Attempts in flight at once for the route.
    pub concurrency: usize,
}

#[derive(Default)]
struct RouteQueue {
    lines: HashMap<String, BTreeMap<u64, Slot>>,
    /// Where each slot's line is, by sequence number.
    line_of: HashMap<u64, String>,
    in_flight: usize,
}

/// A kept request that is due: the deliverer attempts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub route: String,
    pub key: SlotKey,
    pub id: i64,
    pub upstream: String,
    pub attempts: u32,
    pub expires_ms: i64,
}

/// What an arriving request on an ordered route must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Its line is empty: forward it live (it holds the line meanwhile).
    Live,
    /// Requests wait ahead of it: keep it, behind them.
    Behind,
}

/// A route's queue as the status page shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Depth {
    /// Kept and not yet delivered.
    pub waiting: usize,
    pub oldest_ms: Option<i64>,
    pub in_flight: usize,
}

#[derive(Default)]
pub struct Queues {
    routes: HashMap<String, RouteQueue>,
    next_seq: u64,
}

impl Queues {
    fn push(&mut self, route: &str, line: &str, slot: Slot) -> SlotKey {
        self.next_seq += 1;
        let seq = self.next_seq;
        let queue = self.routes.entry(route.to_string()).or_default();
        queue.lines.entry(line.to_string()).or_default().insert(seq, slot);
        queue.line_of.insert(seq, line.to_string());
        SlotKey { seq }
    }

    fn slot(&mut self, route: &str, key: SlotKey) -> Option<&mut Slot> {
        let queue = self.routes.get_mut(route)?;
        let line = queue.line_of.get(&key.seq)?;
        queue.lines.get_mut(line)?.get_mut(&key.seq)
    }

    /// A request arriving on an ordered route: it takes its place at the end
    /// of its line, live if `live_allowed` and the line was empty, to be
    /// stored otherwise.
    pub fn arrive(
        &mut self,
        route: &str,
        line: &str,
        upstream: &str,
        now: Instant,
        live_allowed: bool,
    ) -> (SlotKey, Arrival) {
        let empty = self.routes.get(route).and_then(|q| q.lines.get(line)).is_none_or(BTreeMap::is_empty);
        let live = live_allowed && empty;
        let state = if live { State::Live } else { State::Storing };
        let slot = Slot {
            state,
            id: None,
            upstream: upstream.to_string(),
            received_ms: 0,
            expires_ms: 0,
            attempts: 0,
            next_at: now,
        };
        (self.push(route, line, slot), if live { Arrival::Live } else { Arrival::Behind })
    }

    /// A slot taken by `arrive` is kept now: it waits for its first attempt at `next_at`.
    pub fn kept(&mut self, route: &str, key: SlotKey, kept: &super::Pending, next_at: Instant) {
        if let Some(slot) = self.slot(route, key) {
            slot.state = State::Waiting;
            slot.id = Some(kept.id);
            slot.received_ms = kept.received_ms;
            slot.expires_ms = kept.expires_ms;
            slot.attempts = kept.attempts;
            slot.next_at = next_at;
        }
    }

    /// A kept request joins the end of its line (at start-up, after a
    /// journal route's live attempt failed, when a dead letter is retried).
    pub fn add(&mut self, kept: &super::Pending, next_at: Instant) -> SlotKey {
        let slot = Slot {
            state: State::Waiting,
            id: Some(kept.id),
            upstream: kept.upstream.clone(),
            received_ms: kept.received_ms,
            expires_ms: kept.expires_ms,
            attempts: kept.attempts,
            next_at,
        };
        self.push(&kept.route, &kept.queue, slot)
    }

    /// A journal copy, kept, while it is forwarded live: it holds its place
    /// and is not due until its live attempt fails (`retry`).
    pub fn add_live(&mut self, kept: &super::Pending) -> SlotKey {
        let key = self.add(kept, Instant::now());
        if let Some(slot) = self.slot(&kept.route, key) {
            slot.state = State::Live;
        }
        key
    }

    /// Removes a slot: its request was delivered, dropped, buried, or not kept at all.
    pub fn remove(&mut self, route: &str, key: SlotKey) {
        let Some(queue) = self.routes.get_mut(route) else { return };
        let Some(line) = queue.line_of.remove(&key.seq) else { return };
        if let Some(slots) = queue.lines.get_mut(&line) {
            if slots.remove(&key.seq).is_some_and(|s| s.state == State::Delivering) {
                queue.in_flight -= 1;
            }
            if slots.is_empty() {
                queue.lines.remove(&line);
            }
        }
        if queue.lines.is_empty() && queue.in_flight == 0 {
            self.routes.remove(route);
        }
    }

    /// The slot of the kept request `id`, wherever it is.
    pub fn find(&self, id: i64) -> Option<(String, SlotKey, bool)> {
        self.routes.iter().find_map(|(route, queue)| {
            queue.lines.values().flat_map(|line| line.iter()).find_map(|(seq, slot)| {
                (slot.id == Some(id)).then(|| (route.clone(), SlotKey { seq: *seq }, slot.state == State::Delivering))
            })
        })
    }

    /// Makes the waiting request `id` due at `now`, skipping the rest of its
    /// back-off. False when it is not waiting (live, being kept or delivered).
    pub fn due_now(&mut self, id: i64, now: Instant) -> bool {
        let slots = self.routes.values_mut().flat_map(|q| q.lines.values_mut()).flat_map(|l| l.values_mut());
        match slots.into_iter().find(|slot| slot.id == Some(id)) {
            Some(slot) if slot.state == State::Waiting => {
                slot.next_at = now;
                true
            }
            _ => false,
        }
    }

    /// An attempt failed and will be retried at `next_at`.
    pub fn retry(&mut self, route: &str, key: SlotKey, attempts: u32, next_at: Instant) {
        let Some(queue) = self.routes.get_mut(route) else { return };
        let Some(slot) = queue.line_of.get(&key.seq).and_then(|l| queue.lines.get_mut(l)?.get_mut(&key.seq)) else {
            return;
        };
        if slot.state == State::Delivering {
            queue.in_flight -= 1;
        }
        slot.state = State::Waiting;
        slot.attempts = attempts;
        slot.next_at = next_at;
    }

    /// Marks what is due as being delivered and returns it, within each
    /// route's rules; also when the next slot not yet due will be.
    pub fn take_ready(&mut self, now: Instant, rules: impl Fn(&str) -> Rules) -> (Vec<Ready>, Option<Instant>) {
        let mut ready = Vec::new();
        let mut next: Option<Instant> = None;
        for (route, queue) in &mut self.routes {
            let rules = rules(route);
            for slots in queue.lines.values_mut() {
                for (seq, slot) in slots.iter_mut() {
                    if queue.in_flight >= rules.concurrency {
                        break;
                    }
                    let head_blocks = rules.ordered;
                    match slot.state {
                        State::Waiting if slot.next_at <= now => {
                            slot.state = State::Delivering;
                            queue.in_flight += 1;
                            ready.push(Ready {
                                route: route.clone(),
                                key: SlotKey { seq: *seq },
                                id: slot.id.unwrap_or_default(),
                                upstream: slot.upstream.clone(),
                                attempts: slot.attempts,
                                expires_ms: slot.expires_ms,
                            });
                        }
                        State::Waiting => next = Some(next.map_or(slot.next_at, |n| n.min(slot.next_at))),
                        _ => {}
                    }
                    if head_blocks {
                        break;
                    }
                }
            }
        }
        (ready, next)
    }

    /// Each route's depth, by name.
    pub fn depths(&self) -> HashMap<String, Depth> {
        let mut depths = HashMap::new();
        for (route, queue) in &self.routes {
            let kept = queue.lines.values().flat_map(|l| l.values()).filter(|s| s.id.is_some());
            let mut depth = Depth { in_flight: queue.in_flight, ..Depth::default() };
            for slot in kept {
                depth.waiting += 1;
                depth.oldest_ms = Some(depth.oldest_ms.map_or(slot.received_ms, |o| o.min(slot.received_ms)));
            }
            depths.insert(route.clone(), depth);
        }
        depths
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;

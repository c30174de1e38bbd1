//! Repeats answered once (`dedupe` on a route): a request whose key the
//! backend already answered is answered here, with that answer, instead of
//! being forwarded again.
//!
//! Senders repeat: Telegram sends an update again when the answer took over
//! 60 s or the connection dropped, payment gateways notify until they read
//! their acknowledgement (`success`) in the body. A route with `dedupe`
//! remembers, for `window`, each key (see `key`) whose first request the
//! backend answered with a 2xx and a body of at most `MAX_BODY` bytes: its
//! status, `Content-Type` and body. A repeat gets exactly that answer, so a
//! gateway reads its `success` and a Telegram redelivery carries the Bot API
//! call of the first answer. A repeat that arrives while the first request is
//! still in flight waits for its answer (`settle`). Anything else is
//! forgotten and the next repeat goes through: a non-2xx answer, a longer
//! body, one that failed or whose client left before it ended.
//!
//! Memory is bounded: at most `max_keys` keys, of at most `key::MAX_KEY`
//! bytes each, and `MAX_ANSWER_BYTES` of remembered answers per table.
//! Expiry is by time order, not by search: the window is the same for every
//! key of a table, so answer order is expiry order, and a queue of answered
//! keys beside the map gives every claim its expired keys from the front,
//! O(1) amortised whatever the table holds.
//!
//! **When the table is full**, a new key evicts the oldest answered one. The
//! alternative, passing new keys through unremembered until old ones expire
//! (what this table did before), protects no new key for up to a whole window
//! after a burst filled it. Real repeats come soon after their first request
//! (Telegram's within 60-120 s, gateways' within minutes), so the oldest
//! answer is the one least likely to be asked for again. A key in flight is
//! never evicted (its repeats are waiting for it); a table full of keys in
//! flight passes new ones through unremembered.
//!
//! `DedupeSpec` is the validated `dedupe` setting a table runs; `ticket` holds
//! the first request's claim and the capture of its answer; with `[cluster]`,
//! `shared` claims keys and stores answers in Redis too, so that a repeat is
//! answered once across hosts.

pub(crate) mod json;
mod key;
mod shared;
mod ticket;

use key::KeyHasher;
pub use key::{Key, KeySource, MAX_KEY};
pub use ticket::{Capture, Ticket};

use std::collections::VecDeque;
use std::collections::hash_map::{self, HashMap};
use std::hash::BuildHasherDefault;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;
use tokio::sync::watch;

use crate::cluster::Cluster;
use shared::Shared;

/// A validated `dedupe = { key, window, max_keys }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupeSpec {
    pub key: KeySource,
    pub window: Duration,
    pub max_keys: usize,
}

impl DedupeSpec {
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(600);
    pub const DEFAULT_MAX_KEYS: usize = 100_000;
}

/// The longest answer body remembered: a gateway's `success`, a Bot API call.
pub const MAX_BODY: usize = 4096;

/// The longest `Content-Type` remembered with an answer; an answer with a
/// longer one is not remembered.
const MAX_CONTENT_TYPE: usize = 256;

/// What one table's remembered answers (content types and bodies) may hold
/// in all; past it the oldest answered keys are forgotten first, as when the
/// table is full. 8,000 answers of `MAX_BODY`, or millions of `success`.
const MAX_ANSWER_BYTES: usize = 32 << 20;

/// A remembered answer, as a repeat gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
}

/// Answers whose content type and body together are this long (`success`
/// as `text/html; charset=UTF-8`, an empty 200) are held inline, in the
/// table's entry, without an allocation of their own.
const INLINE_ANSWER: usize = 46;

/// One answered key.
struct Remembered {
    status: u16,
    /// How much of `data` is the content type; the body follows it.
    type_len: u16,
    /// Its record in the table's answer order.
    generation: u64,
    data: Data,
}

/// An answer's content type and body, one after the other.
enum Data {
    Inline(u8, [u8; INLINE_ANSWER]),
    Shared(Bytes),
}

impl Data {
    fn len(&self) -> usize {
        match self {
            Data::Inline(len, _) => usize::from(*len),
            Data::Shared(bytes) => bytes.len(),
        }
    }
}

impl Remembered {
    fn answer(&self) -> Answer {
        let data = match &self.data {
            Data::Inline(len, inline) => Bytes::copy_from_slice(&inline[..usize::from(*len)]),
            Data::Shared(bytes) => bytes.clone(),
        };
        let type_len = usize::from(self.type_len);
        let content_type = match type_len {
            0 => None,
            n => HeaderValue::from_maybe_shared(data.slice(..n)).ok(),
        };
        Answer { status: self.status, content_type, body: data.slice(type_len..) }
    }
}

enum Entry {
    /// Forwarded and not answered yet. Repeats waiting for it hold a
    /// receiver of this sender (made for the first of them): it is dropped,
    /// and they wake, when the entry is answered or forgotten.
    InFlight(Option<watch::Sender<()>>),
    Answered(Remembered),
}

/// Keys a table makes room for at once, when it first needs room
/// (`max_keys`, if fewer). Grown by doubling, a table copies itself at each
/// step and the allocator keeps the old copies: a full table of 100,000 keys
/// added 53 MiB to the RSS that way, 33 MiB made room for at once (about
/// 335 bytes a key: the map keeps twice its keys' room once evictions have
/// churned it). Only the room keys fill is touched, and `sweep` gives the
/// room of a table that emptied back.
const ROOM_AT_ONCE: usize = 1 << 20;

#[derive(Default)]
struct Table {
    entries: HashMap<Key, Entry, BuildHasherDefault<KeyHasher>>,
    /// Answered keys in answer order (oldest first) with their answer time.
    /// A record whose generation is not its key's current one is stale (the
    /// key was forgotten or answered again since) and is skipped.
    order: VecDeque<(Instant, u64, Key)>,
    generation: u64,
    /// Bytes of remembered answers (`Remembered::data`).
    answer_bytes: usize,
}

impl Table {
    /// Forgets the answers older than `window`, which are at the front.
    fn expire(&mut self, window: Duration, now: Instant) {
        while let Some((at, ..)) = self.order.front()
            && now.duration_since(*at) >= window
        {
            self.forget_front();
        }
    }

    /// Forgets the oldest answered key; false when no key is answered.
    fn evict_oldest(&mut self) -> bool {
        while !self.order.is_empty() {
            if self.forget_front() {
                return true;
            }
        }
        false
    }

    /// Pops the oldest record: true if it was current and its key is forgotten.
    fn forget_front(&mut self) -> bool {
        let Some((_, generation, key)) = self.order.pop_front() else { return false };
        match self.entries.entry(key) {
            hash_map::Entry::Occupied(entry) if matches!(entry.get(), Entry::Answered(r) if r.generation == generation) =>
            {
                if let Entry::Answered(r) = entry.remove() {
                    self.answer_bytes -= r.data.len();
                }
                true
            }
            _ => false,
        }
    }

    /// Before an insert: a table out of room takes all the room it may need
    /// (see `ROOM_AT_ONCE`), for its map and its answer order both.
    fn make_room(&mut self, max_keys: usize) {
        let room = max_keys.min(ROOM_AT_ONCE);
        if self.entries.len() == self.entries.capacity() {
            self.entries.reserve(room.saturating_sub(self.entries.len()).max(1));
        }
        if self.order.len() == self.order.capacity() {
            self.order.reserve_exact(room.saturating_sub(self.order.len()).max(1));
        }
    }

    /// Remembers `key`'s answer; returns the entry it replaces (its waiters
    /// wake when it is dropped, best after the lock).
    fn answer(&mut self, key: Key, status: u16, type_len: u16, data: Data, now: Instant) -> Option<Entry> {
        self.generation += 1;
        let generation = self.generation;
        self.answer_bytes += data.len();
        let remembered = Remembered { status, type_len, generation, data };
        let replaced = self.entries.insert(key.clone(), Entry::Answered(remembered));
        if let Some(Entry::Answered(r)) = &replaced {
            self.answer_bytes -= r.data.len();
        }
        self.order.push_back((now, generation, key));
        while self.answer_bytes > MAX_ANSWER_BYTES && self.evict_oldest() {}
        replaced
    }

    /// Forgets `key` if it is in flight; returns the entry (see `answer`).
    fn forget_in_flight(&mut self, key: Key) -> Option<Entry> {
        match self.entries.entry(key) {
            hash_map::Entry::Occupied(entry) if matches!(entry.get(), Entry::InFlight(_)) => Some(entry.remove()),
            _ => None,
        }
    }
}

/// One route's table of answered keys, shared across reloads while the
/// route keeps its name and `dedupe` settings.
pub struct Dedupe {
    spec: DedupeSpec,
    table: Mutex<Table>,
    /// With `[cluster]`: claims and answers are shared through Redis too.
    shared: Option<Shared>,
}

/// What to do with a request that has a key.
pub enum Claim {
    /// Forward it; report the answer through the ticket.
    Forward(Ticket),
    /// Already answered: answer this, do not forward.
    Answered(Answer),
    /// The first request with this key is in flight: this changes (closes)
    /// when it is answered or forgotten; then claim again.
    Wait(watch::Receiver<()>),
}

impl Dedupe {
    pub fn new(spec: DedupeSpec) -> Arc<Self> {
        Dedupe::shared_through(spec, None)
    }

    /// A table whose claims and answers are shared through `cluster` (and
    /// this route's name) too, when given.
    pub fn shared_through(spec: DedupeSpec, cluster: Option<(Arc<Cluster>, Arc<str>)>) -> Arc<Self> {
        let shared = cluster.map(|(cluster, route)| Shared::new(cluster, route));
        Arc::new(Dedupe { spec, table: Mutex::default(), shared })
    }

    /// Whether claims go to Redis as well (`[cluster]`).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    pub fn spec(&self) -> &DedupeSpec {
        &self.spec
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Decides what to do with a request whose key is `key`.
    pub fn claim(self: &Arc<Self>, key: Key) -> Claim {
        self.claim_at(key, Instant::now())
    }

    fn claim_at(self: &Arc<Self>, key: Key, now: Instant) -> Claim {
        let mut table = self.lock();
        table.expire(self.spec.window, now);
        if table.entries.len() >= self.spec.max_keys && !table.entries.contains_key(&key) && !table.evict_oldest() {
            // Full of keys in flight: this one is forwarded unremembered.
            return Claim::Forward(Ticket { table: None, key, shared: None });
        }
        table.make_room(self.spec.max_keys);
        match table.entries.entry(key.clone()) {
            hash_map::Entry::Occupied(mut entry) => match entry.get_mut() {
                Entry::Answered(remembered) => Claim::Answered(remembered.answer()),
                Entry::InFlight(waiters) => {
                    Claim::Wait(waiters.get_or_insert_with(|| watch::Sender::new(())).subscribe())
                }
            },
            hash_map::Entry::Vacant(entry) => {
                entry.insert(Entry::InFlight(None));
                Claim::Forward(Ticket { table: Some(self.clone()), key, shared: None })
            }
        }
    }

    /// Claims `key` without waiting: `None` when the first request with it
    /// is in flight (then `settle` waits for it), or when the claim goes to
    /// Redis too (`[cluster]`, while it answers). Most claims end here.
    pub fn settle_now(self: &Arc<Self>, key: &Key) -> Option<Settled> {
        if self.shared.as_ref().is_some_and(Shared::is_up) {
            return None;
        }
        match self.claim(key.clone()) {
            Claim::Forward(ticket) => {
                if let Some(shared) = &self.shared {
                    // Degraded: this host's claim alone decides.
                    shared.fell_back();
                }
                Some(Settled::Forward(ticket))
            }
            Claim::Answered(answer) => Some(Settled::Repeat(answer)),
            Claim::Wait(_) => None,
        }
    }

    /// Claims `key`, waiting (at most `wait_limit` in all) for a first
    /// request in flight, on this host or (`[cluster]`) another.
    pub async fn settle(self: &Arc<Self>, key: Key, wait_limit: Duration) -> Settled {
        let deadline = tokio::time::Instant::now() + wait_limit;
        let settled = self.settle_here(key, deadline).await;
        match (&self.shared, settled) {
            // The table full of keys in flight passes this one unremembered.
            (Some(shared), Settled::Forward(ticket)) if ticket.table.is_some() => {
                shared.settle(ticket, self.spec.window, wait_limit, deadline).await
            }
            (_, settled) => settled,
        }
    }

    /// `settle` on this host's table alone.
    async fn settle_here(self: &Arc<Self>, key: Key, deadline: tokio::time::Instant) -> Settled {
        loop {
            match self.claim(key.clone()) {
                Claim::Forward(ticket) => return Settled::Forward(ticket),
                Claim::Answered(answer) => return Settled::Repeat(answer),
                Claim::Wait(mut first) => {
                    // Nothing is ever sent: the sender's drop is the news.
                    if tokio::time::timeout_at(deadline, first.changed()).await.is_err() {
                        return Settled::TimedOut;
                    }
                }
            }
        }
    }

    /// Forgets keys older than the window; returns how many are kept.
    pub fn sweep(&self) -> usize {
        let mut table = self.lock();
        table.expire(self.spec.window, Instant::now());
        // A table that (nearly) emptied gives its room back; one in use keeps it.
        if table.entries.len() < table.entries.capacity() / 16 {
            table.entries.shrink_to_fit();
            table.order.shrink_to_fit();
        }
        table.entries.len()
    }
}

/// How a claim ended, waiting included.
pub enum Settled {
    /// Forward the request; report the answer through the ticket.
    Forward(Ticket),
    /// Answer this (the first request's answer) without forwarding.
    Repeat(Answer),
    /// The first request is still in flight after the wait limit.
    TimedOut,
}

#[cfg(test)]
mod tests;

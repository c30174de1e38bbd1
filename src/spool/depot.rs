//! The spool at run time: the store, the delivery queues in memory and what
//! each route has done, shared by the request path (which keeps requests
//! through a [`Keeping`]), the deliverer (which asks what is due and reports
//! each attempt) and the operator's tools (list, retry, drop).
//!
//! A request is acknowledged (`ack`) only after its commit is on disk; one
//! that could not be kept is answered 503 (`ProxyError::NotKept`) and is
//! never in a queue. On an ordered route (`order = "telegram_chat"`) a
//! request takes its place in its chat's line when it arrives, even one
//! forwarded live, so nothing overtakes what waits ahead of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::StatusCode;
use tokio::sync::Notify;

use super::queue::{Depth, Queues, Ready, Rules, SlotKey};
use super::stats::{RouteReport, RouteStats};
use super::{Pending, Record, Spool, SpoolError, SpoolSettings, StoreOrder, StoreSpec, read};

mod keeping;

pub use keeping::{Admitted, Keeping};

/// How often the deletion of a delivered request is tried again after it failed.
const FORGET_AGAIN: Duration = Duration::from_secs(10);

pub struct Depot {
    spool: Spool,
    queues: Mutex<Queues>,
    stats: Mutex<HashMap<String, RouteStats>>,
    wake: Notify,
    /// Delivered requests the spool could not delete yet (a full disk): the
    /// deliverer tries again (`forget_delivered`), since a restart would
    /// deliver what is still in the file once more.
    unforgotten: Mutex<Vec<i64>>,
}

/// What `Depot::drop_request` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    Done,
    /// No such request is kept.
    NotKept,
    /// It is being delivered right now: not dropped.
    Delivering,
}

impl Depot {
    /// Opens the spool in `settings.dir` and queues what it holds.
    pub async fn open(settings: &SpoolSettings) -> Result<Arc<Depot>, SpoolError> {
        let spool = Spool::open(&settings.dir, settings.max_bytes)?;
        let pending = spool.read(read::pending).await?;
        let dead = spool.read(read::dead_counts).await?;
        let mut queues = Queues::default();
        let now = Instant::now();
        for kept in &pending {
            queues.add(kept, now);
        }
        let stats = dead.into_iter().map(|(route, dead)| (route, RouteStats { dead, ..Default::default() })).collect();
        if !pending.is_empty() {
            tracing::info!(waiting = pending.len(), "spool: requests kept before the restart will be delivered");
        }
        let (queues, stats, unforgotten) = (Mutex::new(queues), Mutex::new(stats), Mutex::default());
        Ok(Arc::new(Depot { spool, queues, stats, wake: Notify::new(), unforgotten }))
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    fn queues(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stats(&self, route: &str, change: impl FnOnce(&mut RouteStats)) {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        change(stats.entry(route.to_string()).or_default());
    }

    /// Resolves when something may have become due.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Marks what is due as being delivered; also when the next will be.
    pub fn take_ready(&self, rules: impl Fn(&str) -> Rules) -> (Vec<Ready>, Option<Instant>) {
        self.queues().take_ready(Instant::now(), rules)
    }

    /// The upstream took `ready` (2xx): it is forgotten.
    pub async fn delivered(&self, ready: &Ready) {
        if let Err(e) = self.spool.delete(ready.id).await {
            tracing::error!(
                id = ready.id,
                "spool: cannot forget a delivered request: {e}; trying again every {FORGET_AGAIN:?} (a restart before then delivers it again)"
            );
            self.unforgotten.lock().unwrap_or_else(|e| e.into_inner()).push(ready.id);
        }
        self.queues().remove(&ready.route, ready.key);
        self.stats(&ready.route, |s| s.delivered += 1);
        self.wake.notify_one();
    }

    /// Tries again to delete the delivered requests the spool could not
    /// (see `delivered`). Returns when to try next, if any are left.
    pub async fn forget_delivered(&self) -> Option<Instant> {
        let ids = std::mem::take(&mut *self.unforgotten.lock().unwrap_or_else(|e| e.into_inner()));
        let mut left = Vec::new();
        for id in ids {
            match self.spool.delete(id).await {
                Ok(_) => tracing::info!(id, "spool: forgot a delivered request at last"),
                Err(_) => left.push(id),
            }
        }
        let mut unforgotten = self.unforgotten.lock().unwrap_or_else(|e| e.into_inner());
        unforgotten.extend(left);
        (!unforgotten.is_empty()).then(|| Instant::now() + FORGET_AGAIN)
    }

    /// A journal copy whose live answer was final but not 2xx (the sender got
    /// it): forgotten, not delivered and not a dead letter.
    async fn refused_live(&self, ready: &Ready, status: u16) {
        tracing::info!(route = %ready.route, id = ready.id, "spool: journal copy forgotten: the upstream's final answer {status} went to the sender");
        if let Err(e) = self.spool.delete(ready.id).await {
            tracing::error!(id = ready.id, "spool: cannot forget a journal copy: {e}");
        }
        self.release(&ready.route, ready.key);
    }

    /// An attempt failed; the next is at `next_at`.
    pub async fn retry_later(&self, ready: &Ready, attempts: u32, error: String, next_at: Instant) {
        self.stats(&ready.route, |s| s.last_error = Some(error.clone()));
        if let Err(e) = self.spool.attempted(ready.id, attempts, error).await {
            tracing::warn!(id = ready.id, "spool: cannot record a failed attempt: {e}");
        }
        self.queues().retry(&ready.route, ready.key, attempts, next_at);
        self.wake.notify_one();
    }

    /// `ready` expired, or its answer was final and not 2xx: a dead letter,
    /// kept with that answer until an operator retries or drops it.
    /// One the operator dropped meanwhile is not counted: it is not kept.
    pub async fn bury(&self, ready: &Ready, attempts: u32, status: Option<u16>, error: String, answer: Vec<u8>) {
        tracing::warn!(route = %ready.route, id = ready.id, attempts, "spool: dead letter: {error}");
        let last_error = error.clone();
        let buried = self.spool.bury(ready.id, attempts, status, error, answer).await;
        if let Err(e) = &buried {
            tracing::error!(id = ready.id, "spool: cannot record a dead letter: {e}");
        }
        if !matches!(buried, Ok(false)) {
            self.stats(&ready.route, |s| {
                s.dead += 1;
                s.dead_total += 1;
                s.last_error = Some(last_error);
            });
        }
        self.queues().remove(&ready.route, ready.key);
        self.wake.notify_one();
    }

    /// `ready` was dropped by the operator while it was being attempted.
    pub fn forget(&self, ready: &Ready) {
        self.release(&ready.route, ready.key);
    }

    /// Takes a slot out of its line, and wakes the deliverer: on an ordered
    /// route the request behind it may be due now, and nothing else would
    /// tell the deliverer (it does not look past a line's head).
    fn release(&self, route: &str, key: SlotKey) {
        self.queues().remove(route, key);
        self.wake.notify_one();
    }

    /// Puts the dead letter `id` back in its queue. `Ok(false)`: it is not one.
    pub async fn retry_dead(&self, id: i64) -> Result<bool, SpoolError> {
        if !self.spool.revive(id).await? {
            return Ok(false);
        }
        let Some(stored) = self.spool.read(move |c| read::stored(c, id)).await? else { return Ok(false) };
        let kept = Pending::from(&stored.summary);
        self.stats(&kept.route, |s| s.dead = s.dead.saturating_sub(1));
        self.queues().add(&kept, Instant::now());
        self.wake.notify_one();
        Ok(true)
    }

    /// Makes the waiting request `id` due now (an operator's retry). False
    /// when it is not waiting (unknown, dead, or being forwarded or delivered).
    pub fn retry_now(&self, id: i64) -> bool {
        let due = self.queues().due_now(id, Instant::now());
        if due {
            self.wake.notify_one();
        }
        due
    }

    /// Forgets the request `id`, waiting or dead. One being delivered right
    /// now is not dropped (its upstream may be taking it): ask again once that attempt ended.
    pub async fn drop_request(&self, id: i64) -> Result<Dropped, SpoolError> {
        if self.queues().find(id).is_some_and(|(_, _, delivering)| delivering) {
            return Ok(Dropped::Delivering);
        }
        let Some(stored) = self.spool.read(move |c| read::stored(c, id)).await? else { return Ok(Dropped::NotKept) };
        if !self.spool.delete(id).await? {
            return Ok(Dropped::NotKept);
        }
        if stored.summary.dead {
            self.stats(&stored.summary.route, |s| s.dead = s.dead.saturating_sub(1));
        }
        let slot = self.queues().find(id);
        if let Some((route, key, _)) = slot {
            self.release(&route, key);
        }
        Ok(Dropped::Done)
    }

    /// Every route that has kept something, by name.
    pub fn report(&self) -> Vec<RouteReport> {
        let depths = self.queues().depths();
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut names: Vec<&String> = depths.keys().chain(stats.keys()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|route| {
                let depth = depths.get(route).cloned().unwrap_or_default();
                let Depth { waiting, oldest_ms, in_flight } = depth;
                let stats = stats.get(route).cloned().unwrap_or_default();
                RouteReport { route: route.clone(), waiting, in_flight, oldest_ms, stats }
            })
            .collect()
    }

    /// Keeps `record` and puts it in its queue (in `slot` if it holds one):
    /// the answer is `ack`, or 503 if it could not be kept.
    ///
    /// In a task of its own: a caller dropped while the record is written
    /// (an HTTP/2 client resetting its stream) would leave its slot half made,
    /// holding its line for good, and the record on disk but in no queue.
    /// The request is then kept and delivered like any other (its sender,
    /// unanswered, may send it again).
    async fn keep(self: &Arc<Self>, record: Record, slot: Option<SlotKey>, ack: StatusCode) -> Admitted {
        let depot = self.clone();
        let keeping = tokio::spawn(async move { depot.keep_now(record, slot, ack).await });
        keeping.await.unwrap_or(Admitted::NotKept(SpoolError::Closed))
    }

    async fn keep_now(&self, record: Record, slot: Option<SlotKey>, ack: StatusCode) -> Admitted {
        let route = record.route.clone();
        let kept = Pending::of(&record);
        match self.spool.store(record).await {
            Ok(id) => {
                let kept = Pending { id, ..kept };
                match slot {
                    Some(key) => self.queues().kept(&route, key, &kept, Instant::now()),
                    None => drop(self.queues().add(&kept, Instant::now())),
                }
                self.stats(&route, |s| s.stored += 1);
                self.wake.notify_one();
                Admitted::Kept(ack)
            }
            Err(error) => {
                if let Some(key) = slot {
                    self.release(&route, key);
                }
                self.stats(&route, |s| s.not_kept += 1);
                tracing::error!(route = %route, "spool: request not kept: {error}");
                Admitted::NotKept(error)
            }
        }
    }
}

impl Pending {
    /// A record about to be kept, as its queue will hold it (its id comes with the commit).
    fn of(record: &Record) -> Pending {
        Pending {
            id: 0,
            route: record.route.clone(),
            upstream: record.upstream.clone(),
            queue: record.queue.clone(),
            received_ms: record.received_ms,
            expires_ms: record.expires_ms,
            attempts: 0,
        }
    }
}

/// The delivery rules of `spec` (a route without `store` any more, or gone,
/// has its kept requests delivered in order, `concurrency` at its default).
pub fn rules(spec: Option<&StoreSpec>) -> Rules {
    match spec {
        Some(spec) => Rules { ordered: spec.order == StoreOrder::TelegramChat, concurrency: spec.concurrency },
        None => Rules { ordered: true, concurrency: StoreSpec::DEFAULT_CONCURRENCY },
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or(Duration::ZERO);
    since.as_millis().min(i64::MAX as u128) as i64
}

#[cfg(test)]
#[path = "depot_tests.rs"]
mod tests;

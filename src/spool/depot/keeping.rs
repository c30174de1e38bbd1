//! The request path's side of the depot: a request on a `store` route kept
//! (or held in its line's place) from the moment its body is read to its
//! live answer, and what that answer does to it.

use std::sync::Arc;
use std::time::Instant;

use http::StatusCode;

use super::super::queue::{Arrival, Ready, SlotKey};
use super::super::{Pending, Record, SpoolError, StoreMode, StoreOrder, StoreSpec, chat};
use super::{Depot, unix_ms};

/// What to do with a request on a `store` route before it is forwarded.
pub enum Admitted {
    /// Forward it live; report the outcome through the `Keeping`.
    Live(Keeping),
    /// Kept: answer `ack`.
    Kept(StatusCode),
    /// Could not be kept: answer 503. The depot has logged why; the request
    /// path does not read it (yet), so it is allowed to go unread.
    NotKept(#[allow(dead_code, reason = "logged by `Depot::keep`; proxy::keep answers 503 without it")] SpoolError),
}

/// One request on a `store` route, from the moment its body is read to its
/// live answer. Dropped unsettled (the client left, shutdown cut it), a
/// journal copy goes to the deliverer and a fallback request is forgotten:
/// its sender got no acknowledgement.
pub struct Keeping {
    depot: Arc<Depot>,
    spec: StoreSpec,
    route: String,
    record: Option<Record>,
    /// Its place in an ordered line.
    slot: Option<SlotKey>,
    /// `journal`: the id of the copy kept before forwarding.
    journal_id: Option<i64>,
}

impl Keeping {
    /// `head` is the request head as it goes upstream, `body` all of its body.
    pub fn new(depot: Arc<Depot>, spec: &StoreSpec, route: &str, upstream: &str, head: Vec<u8>, body: Vec<u8>) -> Self {
        let queue = match spec.order {
            StoreOrder::TelegramChat => chat::queue_of(&body),
            StoreOrder::None => String::new(),
        };
        let received_ms = unix_ms();
        let expires_ms = received_ms.saturating_add(spec.expire.as_millis().min(i64::MAX as u128) as i64);
        let record = Record {
            route: route.to_string(),
            upstream: upstream.to_string(),
            queue,
            received_ms,
            expires_ms,
            head,
            body,
        };
        Keeping {
            depot,
            spec: spec.clone(),
            route: route.to_string(),
            record: Some(record),
            slot: None,
            journal_id: None,
        }
    }

    /// Decides before forwarding: `always` keeps it now; `fallback` forwards
    /// it live unless its line has requests waiting (then it is kept behind
    /// them); `journal` keeps a copy, then forwards it live.
    pub async fn admit(mut self) -> Admitted {
        let depot = self.depot.clone();
        let ordered = self.spec.order == StoreOrder::TelegramChat;
        if ordered && self.spec.mode != StoreMode::Journal {
            let record = self.record.as_ref().expect("a new Keeping holds its record");
            let live_allowed = self.spec.mode == StoreMode::Fallback;
            let (key, arrival) =
                depot.queues().arrive(&record.route, &record.queue, &record.upstream, Instant::now(), live_allowed);
            self.slot = Some(key);
            if arrival == Arrival::Live {
                return Admitted::Live(self);
            }
        }
        match self.spec.mode {
            StoreMode::Fallback if self.slot.is_none() => Admitted::Live(self),
            StoreMode::Journal => {
                // In a task of its own, as `Depot::keep` is: a caller dropped meanwhile drops the
                // keeping the task returns, which makes the copy due.
                let copied = tokio::spawn(self.keep_copy());
                copied.await.map_or(Admitted::NotKept(SpoolError::Closed), Admitted::Live)
            }
            _ => {
                let record = self.record.take().expect("a new Keeping holds its record");
                let slot = self.slot.take();
                depot.keep(record, slot, self.spec.ack).await
            }
        }
    }

    /// `journal`: keeps the copy that waits while the request is forwarded live.
    async fn keep_copy(mut self) -> Keeping {
        let depot = self.depot.clone();
        let record = self.record.take().expect("a new Keeping holds its record");
        let kept = Pending::of(&record);
        match depot.spool.store(record).await {
            Ok(id) => {
                let kept = Pending { id, ..kept };
                self.slot = Some(depot.queues().add_live(&kept));
                self.journal_id = Some(id);
                depot.stats(&kept.route, |s| s.stored += 1);
            }
            Err(error) => {
                // The sender's own retries still stand behind it: hookgate gave no 2xx.
                depot.stats(&kept.route, |s| s.not_kept += 1);
                tracing::error!(route = %kept.route, "spool: journal copy not kept, forwarding anyway: {error}");
            }
        }
        self
    }

    /// Whether the upstream's answer `status` is one `fallback` keeps the
    /// request for instead of passing it on (502, 503, 504).
    pub fn takes_over(&self, status: u16) -> bool {
        self.takeover()(status)
    }

    /// `takes_over` on its own, for a task that does not hold the keeping.
    pub fn takeover(&self) -> impl Fn(u16) -> bool + Send + 'static {
        let fallback = self.spec.mode == StoreMode::Fallback;
        move |status| fallback && matches!(status, 502..=504)
    }

    /// The live attempt failed (`why`). `fallback`: the request is kept
    /// and the client gets `ack` (or 503) instead of the error, returned
    /// here. `journal`: the copy waits for redelivery and the error is
    /// answered as usual (`None`).
    pub async fn live_failed(mut self, why: &str) -> Option<Admitted> {
        let depot = self.depot.clone();
        match self.record.take() {
            Some(record) if self.spec.mode == StoreMode::Fallback => {
                tracing::info!(route = %record.route, upstream = %record.upstream, "spool: keeping the request: {why}");
                let slot = self.slot.take();
                Some(depot.keep(record, slot, self.spec.ack).await)
            }
            _ => {
                self.depot.stats(&self.route, |s| s.last_error = Some(why.to_string()));
                None // Dropped here: a journal copy goes to the deliverer.
            }
        }
    }

    /// The upstream answered `status`, and that answer goes to the client.
    pub fn answered(mut self, status: u16) {
        let depot = self.depot.clone();
        let route = std::mem::take(&mut self.route);
        let Some(key) = self.slot.take() else { return };
        if let Some(id) = self.journal_id.take() {
            let ready = Ready { route, key, id, upstream: String::new(), attempts: 1, expires_ms: 0 };
            let error = format!("answered {status}");
            tokio::spawn(async move {
                match status {
                    200..=299 => depot.delivered(&ready).await,
                    408 | 429 | 500..=599 => depot.retry_later(&ready, 1, error, Instant::now()).await,
                    // Final, and the sender has it: redelivery would get the same. Kept as a dead
                    // letter, anyone's junk to the route would fill the spool (a probe did, in 4 requests).
                    _ => depot.refused_live(&ready, status).await,
                }
            });
        } else {
            depot.release(&route, key);
        }
    }
}

impl Drop for Keeping {
    /// Unsettled: a journal copy waits for the deliverer; a request that
    /// held its line's place while live gives it up (it was not kept).
    fn drop(&mut self) {
        let Some(key) = self.slot.take() else { return };
        if self.journal_id.take().is_some() {
            self.depot.queues().retry(&self.route, key, 1, Instant::now());
            self.depot.wake.notify_one();
        } else {
            self.depot.release(&self.route, key);
        }
    }
}

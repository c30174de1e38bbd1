//! Per-connection timing: the head, idle and send timeouts.
//!
//! hyper's own header timer starts as soon as it waits for the next request, so
//! it would also cut idle keep-alive connections at `header_timeout`. hookgate
//! keeps the two apart: a connection is *idle* from the moment the last byte of
//! one response has been written to the socket until the first byte of the
//! next request, then *reading a head* until hyper hands the request to the
//! service, then *active* until its response has been written. Over HTTP/2
//! the clock sees bytes, not frames (a PING is no head), so a head is timed
//! only before the connection's first request; after it, only idle. The end of the
//! upstream's body is not the end of the response: hyper may still hold much of
//! it for a slow reader, so the active span ends only when the access log's
//! `Delivery` (which holds the `ActiveRequest`) sees the last body byte written.
//!
//! While any write to the client is blocked, or a response chunk waits for its
//! stream's flow-control window (`held`), the *send* timer runs: no progress
//! for `send_timeout` (of the socket, or of the chunk that waited longest,
//! whatever other streams do) means the client stopped reading, and the
//! connection is cut with `AbortReason::ClientTimeout` recorded for the access log.
//! `server::ClockedIo` notices the first byte of a head and every write's
//! progress; `ActiveRequest` marks the active span. This serves HTTP/2 connections
//! (hyper's); the HTTP/1 engine keeps its own timers and uses the clock only
//! for the `ActiveRequest` mark and the abort reason.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::held::{HeldChunk, HeldChunks};
use crate::config::Limits;
use crate::poll_clock;

/// Sentinel for "no head being read" and "no write blocked".
const NOT_SET: u64 = u64::MAX;

/// Sentinel for "the connection has served a request": over HTTP/2 the head
/// timer then stays off (`saw_bytes`), and only `idle_timeout` bounds the
/// time between requests.
const HEAD_TIMER_OFF: u64 = u64::MAX - 1;

/// Where every connection's milliseconds count from: one `Instant` for the
/// process, so that a clock does not carry its own.
static EPOCH: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

#[derive(Debug)]
pub struct ConnClock {
    /// Requests handed to the service whose response has not ended.
    active: AtomicU32,
    /// Milliseconds since `EPOCH` when the current head's first byte arrived.
    head_started: AtomicU64,
    /// Milliseconds since `EPOCH` when the connection last became idle.
    idle_since: AtomicU64,
    /// HTTP/2 response chunks queued for the client and not yet done with,
    /// each with the milliseconds since `EPOCH` of its last progress: the
    /// send timer watches the one that waited longest.
    held: HeldChunks,
    /// Milliseconds since `EPOCH` when a write to the client last found the
    /// socket full after making progress (`NOT_SET` while writes go through).
    write_blocked: AtomicU64,
    /// Why the connection was cut, for responses still being written then.
    abort: AtomicU8,
    /// HTTP/2 streams the client reset while hookgate was answering them,
    /// as a debt: milliseconds since `EPOCH` when it is paid off, each reset
    /// adding `RESET_COST_MS` (`RESETS_EXCEEDED` once past the limit).
    reset_debt: AtomicU64,
}

/// How many HTTP/2 streams a client may reset after hookgate began to answer
/// them (sent them upstream), at once; past that, `SERVED_RESETS_PER_SECOND`
/// more are forgiven each second. A long-lived connection (a CDN's, carrying
/// many visitors) may reset any number over its life at that pace.
pub const SERVED_RESET_BURST: u64 = 100;
/// The pace at which served-stream resets are forgiven.
pub const SERVED_RESETS_PER_SECOND: u64 = 10;
const RESET_COST_MS: u64 = 1000 / SERVED_RESETS_PER_SECOND;
/// `reset_debt` once the client went past the limit: it stays there.
const RESETS_EXCEEDED: u64 = u64::MAX;

/// Why a response did not reach the client whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortReason {
    /// The client read nothing for `send_timeout`.
    ClientTimeout,
    /// The client closed or reset the connection.
    ClientClosed,
    /// `shutdown_grace` ran out while the response was being written.
    Shutdown,
}

impl AbortReason {
    pub fn as_str(self) -> &'static str {
        match self {
            AbortReason::ClientTimeout => "client_timeout",
            AbortReason::ClientClosed => "client_closed",
            AbortReason::Shutdown => "shutdown",
        }
    }

    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(AbortReason::ClientTimeout),
            2 => Some(AbortReason::ClientClosed),
            3 => Some(AbortReason::Shutdown),
            _ => None,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            AbortReason::ClientTimeout => 1,
            AbortReason::ClientClosed => 2,
            AbortReason::Shutdown => 3,
        }
    }
}

/// Which timer ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    Head,
    Idle,
    /// Writes to the client made no progress for `send_timeout`.
    Send,
}

impl ConnClock {
    pub fn new() -> Self {
        ConnClock {
            active: AtomicU32::new(0),
            head_started: AtomicU64::new(NOT_SET),
            idle_since: AtomicU64::new(now_ms()),
            held: HeldChunks::default(),
            write_blocked: AtomicU64::new(NOT_SET),
            abort: AtomicU8::new(0),
            reset_debt: AtomicU64::new(0),
        }
    }

    /// The client reset an HTTP/2 stream before its answer: a leaky bucket
    /// (`SERVED_RESET_BURST`, drained at `SERVED_RESETS_PER_SECOND`).
    pub fn note_client_reset(&self) {
        let now = now_ms();
        let _ = self.reset_debt.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |debt| {
            let debt = debt.max(now).checked_add(RESET_COST_MS)?;
            Some(match debt - now > SERVED_RESET_BURST * RESET_COST_MS {
                true => RESETS_EXCEEDED,
                false => debt,
            })
        });
    }

    /// Whether the client reset streams before their answers faster than
    /// the limit (`note_client_reset`).
    pub fn resets_exceeded(&self) -> bool {
        self.reset_debt.load(Ordering::Relaxed) == RESETS_EXCEEDED
    }

    /// Records why the connection is being cut; the first reason sticks.
    pub fn set_abort(&self, reason: AbortReason) {
        let _ = self.abort.compare_exchange(0, reason.to_u8(), Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Why the connection was cut, if it was.
    pub fn abort_reason(&self) -> Option<AbortReason> {
        AbortReason::from_u8(self.abort.load(Ordering::Relaxed))
    }

    /// A write to the client went (partly) through, or found the socket full.
    pub(crate) fn wrote(&self, progressed: bool) {
        if progressed {
            self.write_blocked.store(NOT_SET, Ordering::Relaxed);
        } else if self.write_blocked.load(Ordering::Relaxed) == NOT_SET {
            self.write_blocked.store(now_ms(), Ordering::Relaxed);
        }
    }

    fn at(&self, ms: u64) -> Instant {
        *EPOCH + Duration::from_millis(ms)
    }

    /// An HTTP/2 response chunk was queued for the client (see `held`).
    pub fn chunk_queued(&self) -> HeldChunk {
        self.held.queued(now_ms())
    }

    /// The client took bytes of a queued chunk.
    pub fn chunk_taken(&self, chunk: HeldChunk) {
        self.held.progressed(chunk, now_ms());
    }

    /// A queued chunk is done with: written whole, or dropped with its stream.
    pub fn chunk_done(&self, chunk: HeldChunk) {
        self.held.done(chunk);
    }

    /// Bytes arrived from the client; if the connection was idle, a head begins.
    pub(crate) fn saw_bytes(&self) {
        if self.active.load(Ordering::Relaxed) == 0 && self.head_started.load(Ordering::Relaxed) == NOT_SET {
            self.head_started.store(now_ms(), Ordering::Relaxed);
        }
    }

    /// hyper parsed a head and called the service.
    pub fn request_started(self: &Arc<Self>) -> ActiveRequest {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(HEAD_TIMER_OFF, Ordering::Relaxed);
        ActiveRequest(Arc::clone(self))
    }

    /// When to look again. It wakes at least every `header_timeout` (and
    /// `send_timeout`), so a head or a blocked write that starts meanwhile is
    /// timed exactly.
    pub fn next_check(&self, limits: &Limits) -> Instant {
        let soon = poll_clock::now() + limits.header_timeout.min(limits.send_timeout);
        if let Some(stalled) = self.stalled_since() {
            return soon.min(self.at(stalled) + limits.send_timeout);
        }
        if self.active.load(Ordering::Relaxed) > 0 {
            return soon;
        }
        match self.head_started.load(Ordering::Relaxed) {
            NOT_SET | HEAD_TIMER_OFF => {
                soon.min(self.at(self.idle_since.load(Ordering::Relaxed)) + limits.idle_timeout)
            }
            started => self.at(started) + limits.header_timeout,
        }
    }

    /// Which timer, if any, has run out now. A connection whose last response
    /// is still being written is never idle, however long that takes, as long
    /// as the client keeps reading.
    pub fn expired(&self, limits: &Limits) -> Option<Expired> {
        let now = poll_clock::now();
        if let Some(stalled) = self.stalled_since() {
            return (now >= self.at(stalled) + limits.send_timeout).then_some(Expired::Send);
        }
        if self.active.load(Ordering::Relaxed) > 0 {
            return None;
        }
        match self.head_started.load(Ordering::Relaxed) {
            NOT_SET | HEAD_TIMER_OFF
                if now >= self.at(self.idle_since.load(Ordering::Relaxed)) + limits.idle_timeout =>
            {
                Some(Expired::Idle)
            }
            NOT_SET | HEAD_TIMER_OFF => None,
            started if now >= self.at(started) + limits.header_timeout => Some(Expired::Head),
            _ => None,
        }
    }

    /// Since when writes to the client made no progress: a socket write
    /// blocked, or the queued HTTP/2 chunk that waited longest (the earlier).
    fn stalled_since(&self) -> Option<u64> {
        let blocked = self.write_blocked.load(Ordering::Relaxed);
        let blocked = (blocked != NOT_SET).then_some(blocked);
        match (blocked, self.held.oldest()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (one, other) => one.or(other),
        }
    }
}

/// Marks one request as in progress until dropped (when its response has
/// been written).
#[derive(Debug)]
pub struct ActiveRequest(Arc<ConnClock>);

impl ActiveRequest {
    /// The connection's clock, for the abort reason.
    pub fn clock(&self) -> &ConnClock {
        &self.0
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.idle_since.store(now_ms(), Ordering::Relaxed);
        }
    }
}

/// Milliseconds since `EPOCH`, from this poll's reading.
fn now_ms() -> u64 {
    poll_clock::now().saturating_duration_since(*EPOCH).as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn served_resets_past_the_burst_exceed_the_limit() {
        let clock = ConnClock::new();
        for _ in 0..SERVED_RESET_BURST {
            clock.note_client_reset();
        }
        assert!(!clock.resets_exceeded(), "the burst itself is allowed");
        clock.note_client_reset();
        assert!(clock.resets_exceeded());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(clock.resets_exceeded(), "once exceeded, the connection stays marked");
    }

    #[tokio::test(start_paused = true)]
    async fn served_resets_are_forgiven_at_their_pace() {
        let clock = ConnClock::new();
        for _ in 0..SERVED_RESET_BURST {
            clock.note_client_reset();
        }
        // A second later, SERVED_RESETS_PER_SECOND more fit; one beyond them does not.
        tokio::time::advance(Duration::from_secs(1)).await;
        for _ in 0..SERVED_RESETS_PER_SECOND {
            clock.note_client_reset();
        }
        assert!(!clock.resets_exceeded());
        clock.note_client_reset();
        assert!(clock.resets_exceeded());
    }
}

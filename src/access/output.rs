//! Where access lines go: stderr, in as few writes as the load allows.
//!
//! A write per line cost about 7% of the proxy's CPU per request (GET under wrk
//! -c64, user + sys 23.7 → 22.0 µs, medians of 10 interleaved rounds; system
//! calls per 10,000 requests 10,000 → about 100 writes). So a busy runtime
//! thread keeps its lines and writes them together: before it sleeps (its
//! runtime's park hook, `before_park`), so an idle or lightly loaded daemon
//! writes each line at once; when 16 KiB are waiting; when the oldest waiting
//! line is 100 ms older than a new one; every second (`tick`); at the
//! thread's exit. Lines wait only on threads that have both the park hook and
//! the once-a-second flush, and, once shutdown begins (`write_through`), not
//! at all. Writes go through std's stderr lock, like `tracing`'s, so lines
//! from different threads never interleave.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Waiting lines are written once they reach this size.
const FLUSH_AT: usize = 16 * 1024;
/// ... or once the oldest is this much older than the newest.
const MAX_AGE: Duration = Duration::from_millis(100);
/// ... and at least this often (by `tick`).
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Set when shutdown begins: from then on, no line waits.
static WRITE_THROUGH: AtomicBool = AtomicBool::new(false);

/// One thread's waiting lines.
struct Pending {
    lines: RefCell<Vec<u8>>,
    /// When the oldest waiting line was made.
    oldest: Cell<SystemTime>,
    /// The thread's runtime writes waiting lines before it sleeps.
    flushed_on_park: Cell<bool>,
    /// The thread's once-a-second flush runs.
    ticking: Cell<bool>,
}

impl Pending {
    /// Lines may wait only where both flushes are in place.
    fn may_hold(&self) -> bool {
        self.flushed_on_park.get() && self.ticking.get() && !WRITE_THROUGH.load(Ordering::Relaxed)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        write_out(self.lines.get_mut());
    }
}

thread_local! {
    static PENDING: Pending = const {
        Pending {
            lines: RefCell::new(Vec::new()),
            oldest: Cell::new(UNIX_EPOCH),
            flushed_on_park: Cell::new(false),
            ticking: Cell::new(false),
        }
    };
}

/// Appends the line `format` writes (made at `at`) and writes what is
/// waiting unless this thread may keep it a little longer.
pub fn append(at: SystemTime, format: impl FnOnce(&mut Vec<u8>)) {
    PENDING.with(|pending| {
        let mut lines = pending.lines.borrow_mut();
        if lines.is_empty() {
            pending.oldest.set(at);
        }
        format(&mut lines);
        let young = at.duration_since(pending.oldest.get()).is_ok_and(|age| age < MAX_AGE);
        if !(young && lines.len() < FLUSH_AT && pending.may_hold()) {
            write_out(&mut lines);
        }
    });
}

/// A runtime's park hook (`on_thread_park`): writes this thread's waiting
/// lines, and from now on lets them wait while the thread is busy. Threads of
/// runtimes built without it write every line at once.
pub fn before_park() {
    let _ = PENDING.try_with(|pending| {
        pending.flushed_on_park.set(true);
        flush(pending);
    });
}

/// The once-a-second flush (the server's per-thread upkeep calls it at
/// least every `FLUSH_EVERY`): writes this thread's waiting lines, and from
/// now on lets them wait, as `before_park` does.
pub fn tick() {
    let _ = PENDING.try_with(|pending| {
        pending.ticking.set(true);
        flush(pending);
    });
}

fn flush(pending: &Pending) {
    if let Ok(mut lines) = pending.lines.try_borrow_mut() {
        write_out(&mut lines);
    }
}

/// Shutdown has begun: every line from now on is written at once (with
/// whatever its thread had waiting).
pub fn write_through() {
    WRITE_THROUGH.store(true, Ordering::Relaxed);
}

fn write_out(lines: &mut Vec<u8>) {
    if !lines.is_empty() {
        let _ = std::io::stderr().lock().write_all(lines);
        lines.clear();
    }
}

//! Each runtime thread's housekeeping, one task per thread, started by the
//! thread's first accept loop: every second the access lines the thread kept
//! are written (`access::output::tick`) and the pooled upstream connections
//! whose idle time is up are closed (`upstream::pool::close_expired`), and
//! every five seconds the buffer free lists give back what the last period did
//! not use (`http1::trim_buffers`). All are per-thread state, so the task must
//! run on the thread it serves, which a runtime of one thread guarantees.

use std::cell::Cell;

use crate::access::output::{self, FLUSH_EVERY};
use crate::http1::{BUFFER_TRIM_EVERY, trim_buffers};
use crate::upstream::pool;

thread_local! {
    static STARTED: Cell<bool> = const { Cell::new(false) };
}

/// Starts this thread's upkeep task, once per thread.
pub(super) fn start_on_this_thread() {
    if STARTED.with(|started| started.replace(true)) {
        return;
    }
    let ticks_per_trim = (BUFFER_TRIM_EVERY.as_secs() / FLUSH_EVERY.as_secs()).max(1) as u32;
    tokio::spawn(async move {
        let mut every = tokio::time::interval(FLUSH_EVERY);
        for tick in (1..=ticks_per_trim).cycle() {
            every.tick().await;
            output::tick();
            pool::close_expired();
            if tick == ticks_per_trim {
                trim_buffers();
            }
        }
    });
}

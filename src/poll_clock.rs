//! One clock read per poll of a connection's task.
//!
//! A proxied request read the monotonic clock about ten times: its start, the
//! deadline of each wait, the upstream pool's idle stamps, its end. Inside a
//! future wrapped in [`Fresh`] (every client connection's task, and hyper's
//! HTTP/2 stream tasks), [`now`] reads the clock at the first call of a poll
//! and returns that reading for the rest of the poll; outside one it reads the
//! clock every time. A poll runs for microseconds, far below any timeout
//! hookgate sets, so a deadline taken from the poll's reading is as exact as
//! one taken from a fresh read. Where the end of a poll's work matters (an
//! access line's duration), [`read`] reads the clock again. The wall-clock
//! time of a reading ([`wall_clock`]) needs no read of its own.

use std::cell::Cell;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// How long a thread's pair of readings in `WALL` is used before it is taken again.
const WALL_REFRESH: Duration = Duration::from_secs(1);

thread_local! {
    static NOW: Cell<Reading> = const { Cell::new(Reading::Outside) };
    /// A monotonic reading and the wall-clock time at it.
    static WALL: Cell<Option<(Instant, SystemTime)>> = const { Cell::new(None) };
}

#[derive(Debug, Clone, Copy)]
enum Reading {
    /// No `Fresh` future is being polled on this thread: every call reads the clock.
    Outside,
    /// A `Fresh` future is being polled and has not asked for the time yet.
    Unread,
    At(Instant),
}

/// The time, read once per poll of a [`Fresh`] future.
pub fn now() -> Instant {
    // `try_with`: a value dropped while its thread ends (an access line's) still gets the time.
    let kept = NOW.try_with(|cell| match cell.get() {
        Reading::At(at) => at,
        Reading::Unread => read_into(cell),
        Reading::Outside => Instant::now(),
    });
    kept.unwrap_or_else(|_| Instant::now())
}

/// The time read now; inside a [`Fresh`] poll it is kept for the rest of the poll.
pub fn read() -> Instant {
    let kept = NOW.try_with(|cell| match cell.get() {
        Reading::Outside => Instant::now(),
        Reading::Unread | Reading::At(_) => read_into(cell),
    });
    kept.unwrap_or_else(|_| Instant::now())
}

/// The wall-clock time at `at`, a reading of this module's (at most a poll
/// old): from this thread's pair of readings, taken again when it is older
/// than `WALL_REFRESH`. So a request's access line and metrics cost no second
/// clock read, and a step of the system clock shows within a second.
pub fn wall_clock(at: Instant) -> SystemTime {
    let kept = WALL.try_with(|cell| {
        if let Some((mono, wall)) = cell.get()
            && let Some(since) = at.checked_duration_since(mono).filter(|since| *since < WALL_REFRESH)
        {
            return wall + since;
        }
        let (mono, wall) = (Instant::now(), SystemTime::now());
        cell.set(Some((mono, wall)));
        wall + at.saturating_duration_since(mono)
    });
    kept.unwrap_or_else(|_| SystemTime::now() - Instant::now().saturating_duration_since(at))
}

fn read_into(cell: &Cell<Reading>) -> Instant {
    let at = Instant::now();
    cell.set(Reading::At(at));
    at
}

pin_project_lite::pin_project! {
    /// `inner`, whose every poll shares one clock read (see [`now`]).
    pub struct Fresh<F> {
        #[pin]
        inner: F,
    }
}

impl<F> Fresh<F> {
    pub fn new(inner: F) -> Self {
        Fresh { inner }
    }
}

impl<F: Future> Future for Fresh<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // Restored even if the poll panics: a reading must never outlive its poll.
        let _restore = NOW.try_with(|cell| Restore(cell.replace(Reading::Unread)));
        self.project().inner.poll(cx)
    }
}

/// Puts back what the thread's reading was before a `Fresh` poll (a
/// `Fresh` future polled inside another one keeps the outer one's scope).
struct Restore(Reading);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = NOW.try_with(|cell| cell.set(self.0));
    }
}

/// hyper's executor for HTTP/2 streams: `tokio::spawn`, each task [`Fresh`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FreshExecutor;

impl<F> hyper::rt::Executor<F> for FreshExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(Fresh::new(fut));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn within_a_poll_now_keeps_its_reading_and_read_takes_a_new_one() {
        Fresh::new(async {
            let first = now();
            std::thread::sleep(Duration::from_millis(2));
            assert_eq!(now(), first);
            let later = read();
            assert!(later - first >= Duration::from_millis(2));
            assert_eq!(now(), later);
        })
        .await;
        let outside = now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(now() - outside >= Duration::from_millis(2), "outside a Fresh poll every call reads");
    }

    #[test]
    fn the_wall_clock_of_a_reading_is_the_system_time_then() {
        let _ = wall_clock(read()); // this thread's pair of readings, taken before the one measured
        let before = SystemTime::now();
        let reading = read();
        let after = SystemTime::now();
        let wall = wall_clock(reading);
        // The two clocks are read apart, so the bounds allow for rounding between them.
        let slack = Duration::from_micros(100);
        assert!(before - slack <= wall && wall <= after + slack, "{before:?} <= {wall:?} <= {after:?}");
        std::thread::sleep(Duration::from_millis(3));
        let later = wall_clock(read());
        assert!(later.duration_since(wall).unwrap() >= Duration::from_millis(3));
    }

    #[tokio::test(start_paused = true)]
    async fn each_poll_reads_again_and_no_reading_outlives_its_poll() {
        let (first, second) = Fresh::new(async {
            let first = now();
            tokio::time::advance(Duration::from_millis(5)).await;
            (first, now())
        })
        .await;
        assert_eq!(second - first, Duration::from_millis(5));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(now() - second, Duration::from_secs(2));
    }
}

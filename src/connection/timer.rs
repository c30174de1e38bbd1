//! The one timer kind every timed wait uses: a single boxed `Sleep`,
//! re-armed lazily (`Watchdog`), and on top of it the silence limit of a
//! streamed body (`IdleTimer`).
//!
//! Setting up and cancelling a tokio timer twice per request cost more than
//! parsing the request head, so the timer is moved only when a wait needs an
//! earlier deadline than the one it is set to; when it fires for a deadline
//! that has since moved later, it is set again.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::poll_clock;

/// When a wait times out.
#[derive(Debug, Clone, Copy)]
pub enum Deadline {
    At(Instant),
    /// Counted from the moment the wait has to wait (the clock is read only then).
    In(Duration),
}

/// One timer for every timed wait of a connection (the next request, its
/// head, the write upstream, the response head), re-armed lazily. Setting up
/// and cancelling a tokio timer twice per request cost more than parsing the
/// request head; this timer is moved only when a wait needs an earlier
/// deadline than the one it is set to. When it fires for a deadline a later
/// wait has pushed back, it is set again, so a busy keep-alive connection
/// touches the timer wheel about once per timeout period instead of twice per
/// request. Created at the first wait that waits.
#[derive(Default)]
pub struct Watchdog {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Watchdog {
    /// Runs `fut` until `deadline`; `None` if it passes first. Most reads and
    /// writes finish on their first poll, and those never touch the timer.
    /// A future of its own rather than an async fn, which would keep `fut`
    /// twice (as its argument and pinned), in every idle connection's task.
    pub fn run<F: Future>(&mut self, deadline: Deadline, fut: F) -> Timed<'_, F> {
        Timed { watchdog: self, deadline, fut }
    }

    /// Ready once `deadline` has passed.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() > deadline {
            sleep.as_mut().reset(deadline);
        }
        loop {
            let armed = sleep.deadline();
            ready!(sleep.as_mut().poll(cx));
            if armed >= deadline {
                return Poll::Ready(());
            }
            // It fired for an earlier wait's deadline: on to this one.
            sleep.as_mut().reset(deadline);
        }
    }
}

pin_project_lite::pin_project! {
    /// [`Watchdog::run`]'s future: `fut`'s output, or `None` once `deadline` passes.
    pub struct Timed<'a, F> {
        watchdog: &'a mut Watchdog,
        // `In` becomes `At` at the first poll that has to wait.
        deadline: Deadline,
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for Timed<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.fut.poll(cx) {
            return Poll::Ready(Some(out));
        }
        let at = match *this.deadline {
            Deadline::At(at) => at,
            Deadline::In(limit) => {
                let at = poll_clock::now() + limit;
                *this.deadline = Deadline::At(at);
                at
            }
        };
        this.watchdog.poll_expired(cx, at).map(|()| None)
    }
}

/// Fires when a body has been silent for `limit`: the deadline is `limit`
/// after the last frame, on the connection's kind of lazily re-armed timer.
pub struct IdleTimer {
    pub limit: Duration,
    timer: Watchdog,
    /// `None` once a frame arrived: the next wait sets it `limit` from then.
    deadline: Option<Instant>,
}

impl IdleTimer {
    pub fn new(limit: Duration) -> Self {
        IdleTimer { limit, timer: Watchdog::default(), deadline: None }
    }

    pub fn saw_frame(&mut self) {
        self.deadline = None;
    }

    /// Called when the body is pending: `Ready` means the limit passed.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let limit = self.limit;
        let deadline = *self.deadline.get_or_insert_with(|| poll_clock::now() + limit);
        self.timer.poll_expired(cx, deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// A wait that never finishes, timed by `watchdog`: how long until it gave up.
    async fn times_out_after(watchdog: &mut Watchdog, deadline: Deadline) -> Duration {
        let start = Instant::now();
        assert!(watchdog.run(deadline, std::future::pending::<()>()).await.is_none());
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn each_wait_times_out_at_its_own_deadline_whatever_the_timer_was_set_to() {
        let mut watchdog = Watchdog::default();
        // Armed for 60 s by a wait that finished at once.
        let quick = watchdog.run(Deadline::In(60 * SECOND), async {
            tokio::time::sleep(SECOND).await;
        });
        assert!(quick.await.is_some());
        // A shorter deadline moves the timer earlier.
        assert_eq!(times_out_after(&mut watchdog, Deadline::In(10 * SECOND)).await, 10 * SECOND);
        // A longer one is not cut short when the timer fires for an older deadline.
        let longer = Deadline::At(Instant::now() + 30 * SECOND);
        let pushed_back = watchdog.run(Deadline::In(5 * SECOND), async {
            tokio::time::sleep(2 * SECOND).await;
        });
        assert!(pushed_back.await.is_some());
        assert_eq!(times_out_after(&mut watchdog, longer).await, 28 * SECOND);
        // A deadline already past times out at once.
        assert_eq!(times_out_after(&mut watchdog, Deadline::At(Instant::now())).await, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_that_finishes_in_time_gets_its_output() {
        let mut watchdog = Watchdog::default();
        let late = watchdog.run(Deadline::In(3 * SECOND), async {
            tokio::time::sleep(2 * SECOND).await;
            7
        });
        assert_eq!(late.await, Some(7));
        assert_eq!(times_out_after(&mut watchdog, Deadline::In(SECOND)).await, SECOND);
    }

    /// The body timer's deadline is `limit` after the last frame, however
    /// long the body has been streaming.
    #[tokio::test(start_paused = true)]
    async fn an_idle_timer_fires_its_limit_after_the_last_frame() {
        let mut timer = IdleTimer::new(10 * SECOND);
        let start = Instant::now();
        let waited = std::future::poll_fn(|cx| timer.poll_expired(cx));
        tokio::select! {
            () = waited => panic!("fired before its limit"),
            () = tokio::time::sleep(6 * SECOND) => {}
        }
        timer.saw_frame();
        std::future::poll_fn(|cx| timer.poll_expired(cx)).await;
        assert_eq!(start.elapsed(), 16 * SECOND);
    }
}

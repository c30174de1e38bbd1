//! A wait for one of shutdown's tokens that is cheap to poll again.
//!
//! A connection's task polls its shutdown waits each time it wakes up, often
//! several times per request. A `CancellationToken`'s wait takes the token's
//! lock twice per poll (`is_cancelled`, then the registration of the waker),
//! about 150 instructions. A [`Watch`] registers once, and while the task's
//! waker stays the same it asks only `is_cancelled`: the registration it made
//! still wakes the task when the token fires. Measured with callgrind, the
//! waits had cost 1,400 instructions per HTTP/2 stream (its own wait and its
//! connection's). The HTTP/1 engine does not use it (see `http1::serve`).

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio_util::sync::CancellationToken;

/// `wait` (a wait on `token`), polled only when it can have changed.
pub struct Watch<'a, W> {
    token: &'a CancellationToken,
    wait: W,
    /// The waker `wait` was last polled with.
    registered: Option<Waker>,
}

impl<'a, W: Future<Output = ()> + Unpin> Watch<'a, W> {
    /// Watches `token` through `wait`, one of its `cancelled` futures.
    pub fn new(token: &'a CancellationToken, wait: W) -> Self {
        Watch { token, wait, registered: None }
    }
}

impl<W: Future<Output = ()> + Unpin> Future for Watch<'_, W> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let current = this.registered.as_ref().is_some_and(|waker| waker.will_wake(cx.waker()));
        if current && !this.token.is_cancelled() {
            return Poll::Pending;
        }
        if Pin::new(&mut this.wait).poll(cx).is_ready() {
            return Poll::Ready(());
        }
        this.registered = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_watch_ends_when_its_token_fires_after_it_registered() {
        let token = CancellationToken::new();
        let mut watch = Watch::new(&token, Box::pin(token.cancelled()));
        for _ in 0..3 {
            assert!(futures_poll_once(&mut watch).await.is_pending());
        }
        let fire = async {
            tokio::task::yield_now().await;
            token.cancel();
        };
        let ((), ()) =
            tokio::time::timeout(std::time::Duration::from_secs(5), async { tokio::join!(&mut watch, fire) })
                .await
                .expect("the watch saw the token fire");
    }

    #[tokio::test]
    async fn a_watch_of_a_fired_token_is_ready_at_once() {
        let token = CancellationToken::new();
        token.cancel();
        let mut watch = Watch::new(&token, Box::pin(token.cancelled()));
        assert!(futures_poll_once(&mut watch).await.is_ready());
    }

    async fn futures_poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
    }
}

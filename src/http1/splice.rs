//! Long response bodies moved inside the kernel: when the client and the
//! upstream are both plain TCP and the body passes through unchanged, its
//! bytes go upstream socket → pipe → client socket with splice(2), so
//! hookgate neither copies them nor holds a buffer for them. The timeouts and
//! the delivery record are the copy loop's: `response_timeout` between reads
//! from the upstream, `send_timeout` on every write to the client.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::pipe::{PipeFlags, SpliceFlags, fcntl_setpipe_size, pipe_with, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::io::{SendError, timed};
use crate::access::Delivery;

/// Bodies with at least this much still to come are spliced. Below it a
/// pipe's set-up (four system calls) costs more than the copy it saves.
pub const MIN_BODY: u64 = 256 * 1024;

/// How much the pipe holds, and so the most one pair of splices moves: four
/// times the default, which measured about 5% less CPU and 10% more
/// throughput per body. Kernel memory, filled only while the client's socket
/// is full (the copy loop's buffer is 64 KiB of the daemon's).
const PIPE_SIZE: usize = 256 * 1024;

/// How a spliced body ended.
pub enum Relay {
    /// No pipe of `PIPE_SIZE` could be made (out of file descriptors, or over
    /// the user's pipe allowance); nothing moved, the copy loop carries on.
    Unavailable,
    /// The body ended where its framing said (or, close-delimited, at the upstream's close).
    Ended,
    /// The upstream failed (told to the delivery record already).
    UpstreamFailed,
    /// The client's socket failed.
    Client(SendError),
}

/// The timeouts a spliced body keeps.
pub struct Timeouts {
    /// Longest pause between reads from the upstream.
    pub read: Duration,
    /// Longest a write to the client may take no byte.
    pub send: Duration,
}

/// Moves the rest of a response body from `upstream` to `client`: `left`
/// bytes, or everything until the upstream closes when `None`. `written`
/// is how much of the body the client already has.
pub async fn relay(
    upstream: &TcpStream,
    client: &TcpStream,
    mut left: Option<u64>,
    timeouts: Timeouts,
    delivery: &Delivery,
    mut written: u64,
) -> Relay {
    let Ok((pipe_out, pipe_in)) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK) else {
        return Relay::Unavailable;
    };
    // Over the user's pipe allowance the kernel makes pipes of two pages,
    // and refuses to grow them: copying is faster than splicing through those.
    let Ok(room) = fcntl_setpipe_size(&pipe_in, PIPE_SIZE) else {
        return Relay::Unavailable;
    };
    loop {
        let want = left.map_or(room, |left| left.min(room as u64) as usize);
        if want == 0 {
            return Relay::Ended;
        }
        let filled = timed(timeouts.read, fill(upstream, &pipe_in, want)).await;
        let moved = match filled {
            Some(Ok(0)) if left.is_none() => return Relay::Ended,
            Some(Ok(0)) => {
                delivery.fail(&"the upstream closed before its body ended");
                return Relay::UpstreamFailed;
            }
            Some(Ok(moved)) => moved,
            Some(Err(e)) => {
                delivery.fail(&e);
                return Relay::UpstreamFailed;
            }
            None => {
                delivery.fail(&format_args!("no response body bytes for {:?}", timeouts.read));
                return Relay::UpstreamFailed;
            }
        };
        delivery.produced(moved);
        if let Some(left) = left.as_mut() {
            *left -= moved as u64;
        }
        let mut in_pipe = moved;
        while in_pipe > 0 {
            match timed(timeouts.send, drain(&pipe_out, client, in_pipe)).await {
                None => return Relay::Client(SendError::Timeout),
                Some(Ok(0) | Err(_)) => return Relay::Client(SendError::Closed),
                Some(Ok(sent)) => {
                    in_pipe -= sent;
                    written += sent as u64;
                    delivery.set_written(written);
                }
            }
        }
    }
}

/// Up to `want` bytes from the upstream's socket into the (empty) pipe; 0 at its end.
async fn fill(upstream: &TcpStream, pipe_in: &OwnedFd, want: usize) -> io::Result<usize> {
    upstream
        .async_io(Interest::READABLE, || {
            Ok(splice(upstream, None, pipe_in, None, want, SpliceFlags::NONBLOCK | SpliceFlags::MOVE)?)
        })
        .await
}

/// Up to `in_pipe` bytes from the pipe into the client's socket.
async fn drain(pipe_out: &OwnedFd, client: &TcpStream, in_pipe: usize) -> io::Result<usize> {
    client
        .async_io(Interest::WRITABLE, || {
            Ok(splice(pipe_out, None, client, None, in_pipe, SpliceFlags::NONBLOCK | SpliceFlags::MOVE)?)
        })
        .await
}

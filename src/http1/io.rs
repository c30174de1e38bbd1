//! The client socket as the engine uses it: waiting for readability without a
//! buffer, and writes timed by progress rather than by total duration.

use std::io;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// A client connection: plain TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {
    /// Waits until a read would return something, holding no buffer meanwhile.
    fn ready_to_read(&self) -> impl Future<Output = io::Result<()>> + Send;
}

impl Io for TcpStream {
    async fn ready_to_read(&self) -> io::Result<()> {
        self.readable().await
    }
}

impl Io for TlsStream<TcpStream> {
    /// rustls may already hold decrypted bytes, so there is nothing to wait for
    /// here: the caller reads into a buffer at once.
    async fn ready_to_read(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a write to the client failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No byte was taken for `send_timeout`: the client stopped reading.
    Timeout,
    /// The client closed or reset the connection.
    Closed,
}

/// Writes all of `bytes`; every single write must make progress within
/// `limit`, so a slow reader is never cut while it keeps reading. `progress`
/// is told the offset reached after each write.
pub async fn send_all<W: AsyncWrite + Unpin>(
    out: &mut W,
    bytes: &[u8],
    limit: std::time::Duration,
    mut progress: impl FnMut(usize),
) -> Result<(), SendError> {
    let mut at = 0;
    while at < bytes.len() {
        match tokio::time::timeout(limit, out.write(&bytes[at..])).await {
            Err(_) => return Err(SendError::Timeout),
            Ok(Ok(0) | Err(_)) => return Err(SendError::Closed),
            Ok(Ok(n)) => {
                at += n;
                progress(at);
            }
        }
    }
    Ok(())
}

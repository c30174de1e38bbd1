//! The PROXY protocol header (v1 text or v2 binary) that a load balancer in
//! front of hookgate sends first on each connection, naming the real client.
//!
//! Only read from trusted peers when `[listen] proxy_protocol = true`, and only
//! for `PROXY_HEADER_TIMEOUT`. The header is read exactly, never past its end,
//! so the HTTP bytes that follow are left for hyper. Parsing is `ppp`'s.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use ppp::{HeaderResult, v1, v2};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;

/// How long a trusted peer has to send its PROXY header.
pub const PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest v1 header (spec: 107 bytes).
const V1_MAX: usize = 107;
/// Largest v2 payload accepted (addresses plus TLVs).
const V2_MAX_PAYLOAD: usize = 4096;
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// Reads the header and returns the client's address, or `None` when the
/// sender says it has none to give (v1 `UNKNOWN`, v2 `LOCAL`).
pub async fn read_source(stream: &mut TcpStream) -> io::Result<Option<SocketAddr>> {
    tokio::time::timeout(PROXY_HEADER_TIMEOUT, read(stream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no PROXY header in time"))?
}

/// Reads exactly one header from `stream` (never a byte past its end).
pub async fn read<R: AsyncRead + Unpin>(stream: &mut R) -> io::Result<Option<SocketAddr>> {
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let mut header = vec![0u8; 12];
    stream.read_exact(&mut header[..6]).await?;
    if header[..6] == V2_SIGNATURE[..6] {
        header.resize(16, 0);
        stream.read_exact(&mut header[6..16]).await?;
        let len = usize::from(u16::from_be_bytes([header[14], header[15]]));
        if len > V2_MAX_PAYLOAD {
            return Err(invalid(format!("PROXY v2 payload of {len} bytes")));
        }
        header.resize(16 + len, 0);
        stream.read_exact(&mut header[16..]).await?;
    } else if &header[..6] == b"PROXY " {
        header.truncate(6);
        let mut byte = [0u8; 1];
        while !header.ends_with(b"\r\n") {
            if header.len() >= V1_MAX {
                return Err(invalid("PROXY v1 line too long".to_string()));
            }
            stream.read_exact(&mut byte).await?;
            header.push(byte[0]);
        }
    } else {
        return Err(invalid("expected a PROXY protocol header".to_string()));
    }
    match HeaderResult::parse(&header) {
        HeaderResult::V1(Ok(h)) => Ok(match h.addresses {
            v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
            v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
            v1::Addresses::Unknown => None,
        }),
        HeaderResult::V2(Ok(h)) => Ok(match (h.command, h.addresses) {
            (v2::Command::Local, _) => None,
            (_, v2::Addresses::IPv4(a)) => Some(SocketAddr::from((a.source_address, a.source_port))),
            (_, v2::Addresses::IPv6(a)) => Some(SocketAddr::from((a.source_address, a.source_port))),
            (_, _) => None,
        }),
        HeaderResult::V1(Err(e)) => Err(invalid(format!("bad PROXY v1 header: {e}"))),
        HeaderResult::V2(Err(e)) => Err(invalid(format!("bad PROXY v2 header: {e}"))),
    }
}

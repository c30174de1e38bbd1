//! Upgrade tunnels (WebSocket) from the engine: once the upstream answers
//! 101 to a request that properly asked to upgrade, the 101 goes to the
//! client and bytes are copied both ways until either side closes. The
//! tunnel runs in the connection's own task, which keeps its
//! `max_connections` slot; shutdown's cut ends it with the connection.

use bytes::{Buf, BytesMut};
use http::StatusCode;
use tokio::io::AsyncWriteExt;

use super::client::Client;
use super::exchange::{Answering, Exchange, answer_local};
use super::head::ResponseHead;
use super::io::{Io, send_all};
use super::wire::{write_end_to_end_headers, write_status};
use crate::error::ProxyError;
use crate::metrics::OpenGauge;
use crate::proxy;
use crate::proxy::headers::write_field;
use crate::upstream::pool::UpstreamConn;

/// Answers the client's upgrade with the upstream's 101 and tunnels. The
/// connection never carries another request, so this returns `false`.
pub async fn run<S: Io>(
    client: &mut Client<S>,
    mut conn: UpstreamConn,
    mut ubuf: BytesMut,
    head: ResponseHead,
    mut ex: Box<Exchange>,
    answering: Answering,
) -> bool {
    let answered = head.headers.iter().find(|(name, _)| ubuf[name.clone()].eq_ignore_ascii_case(b"upgrade"));
    let Some(protocol) = proxy::tunnel::switch_to(ex.plan.upgrade.as_ref(), answered.map(|(_, v)| &ubuf[v.clone()]))
    else {
        // A 101 nobody asked for, or to a protocol the client did not list: the upstream is out of step.
        proxy::tunnel::log_refused_switch(&ex.ctx, ex.plan.upgrade.as_ref(), answered.map(|(_, v)| &ubuf[v.clone()]));
        let local = proxy::error_response(&ProxyError::UpstreamBroken, &mut ex.ctx);
        answer_local(client, &local, ex.ctx, answering).await;
        return false;
    };
    let mut out = Vec::with_capacity(256);
    write_status(&mut out, 101, "Switching Protocols");
    // A 101 may go without a Date (RFC 9110 §6.6.1 asks it of 2xx-4xx), so none is added.
    write_end_to_end_headers(&mut out, &ubuf, &head, false);
    write_field(&mut out, b"connection", b"upgrade");
    write_field(&mut out, b"upgrade", protocol.as_bytes());
    out.extend_from_slice(b"\r\n");
    ubuf.advance(head.len);
    // Bytes the upstream sent right after its 101 belong to the tunnel.
    out.extend_from_slice(&ubuf);
    drop(answering.deliver(ex.ctx, StatusCode::SWITCHING_PROTOCOLS));
    if let Err(e) = send_all(&mut client.io, &out, client.limits.send_timeout, |_| {}).await {
        client.note_send_error(e);
        return false;
    }
    // And bytes the client sent after its request head belong to the upstream.
    if !client.rbuf.is_empty() && conn.stream.write_all(&client.rbuf).await.is_err() {
        return false;
    }
    client.rbuf.clear();
    let _open = OpenGauge::new(&client.conn.metrics.tunnels);
    if let Err(e) = tokio::io::copy_bidirectional(&mut client.io, &mut conn.stream).await {
        tracing::debug!(client = %client.conn.peer, "tunnel ended: {e}");
    }
    false
}

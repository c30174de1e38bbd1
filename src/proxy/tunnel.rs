//! WebSocket and other `Upgrade` tunnels.
//!
//! When a client asks to upgrade and the upstream answers 101, both sides are
//! taken over from hyper and bytes are copied both ways until either closes.
//! The tunnel keeps its connection slot (the `max_connections` permit) and is
//! tracked, so shutdown waits for it within the grace period.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::headers;

use crate::access::RequestLine;
use crate::connection::ConnContext;
use crate::metrics::OpenGauge;

/// The protocol a client asks to upgrade to, if it properly asks for one.
///
/// `h2c` is never tunnelled: an upstream that accepted it would then take
/// HTTP/2 requests straight from the client, past every route and rule here
/// ("h2c smuggling"). Such a request is forwarded as a plain request instead.
pub fn requested(version: Version, headers: &HeaderMap) -> Option<HeaderValue> {
    if version != Version::HTTP_11 {
        return None;
    }
    let protocol = headers.get(header::UPGRADE)?;
    let h2c = protocol.to_str().map_or(true, |p| p.split(',').any(|t| t.trim().eq_ignore_ascii_case("h2c")));
    (!h2c && headers::connection_has(headers, "upgrade")).then(|| protocol.clone())
}

/// Spawns the byte copy between the client and the upstream once both upgrade.
pub fn start(conn: &ConnContext, client: OnUpgrade, response: &mut Response<Incoming>, line: RequestLine) {
    let upstream = hyper::upgrade::on(response);
    let slot = conn.slot.clone();
    let metrics = conn.metrics.clone();
    let cut = conn.cut.clone();
    conn.tasks.spawn(async move {
        let _slot = slot;
        let _open = OpenGauge::new(&metrics.tunnels);
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(route = %line.route_name(), upstream = %line.upstream_name(), "upgrade failed: {e}");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        let copied = tokio::select! {
            copied = tokio::io::copy_bidirectional(&mut client, &mut upstream) => copied,
            _ = cut.cancelled() => {
                tracing::warn!(route = %line.route_name(), upstream = %line.upstream_name(), "tunnel cut: shutdown grace expired");
                return;
            }
        };
        match copied {
            Ok((up, down)) => tracing::debug!(
                route = %line.route_name(), upstream = %line.upstream_name(), bytes_up = up, bytes_down = down, "tunnel closed"
            ),
            Err(e) => tracing::debug!(route = %line.route_name(), upstream = %line.upstream_name(), "tunnel ended: {e}"),
        }
    });
}

/// Rewrites the upstream's 101 for the client: hop-by-hop headers go, and the
/// `Connection`/`Upgrade` pair that makes it a 101 is put back.
pub fn prepare_response(response: &mut Response<Incoming>, requested: HeaderValue) {
    let protocol = response.headers().get(header::UPGRADE).cloned().unwrap_or(requested);
    let headers = response.headers_mut();
    headers::strip_hop_by_hop(headers);
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, protocol);
}

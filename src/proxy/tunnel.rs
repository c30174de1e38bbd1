//! What counts as a proper `Upgrade` request, and the 101 a client gets for
//! one. The HTTP/1 engine runs the tunnels themselves (`http1::tunnel`), in the
//! connection's own task, which keeps its `max_connections` slot.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, Version};
use hyper::body::Incoming;

use super::headers;

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

/// Rewrites the upstream's 101 for the client: hop-by-hop headers go, and the
/// `Connection`/`Upgrade` pair that makes it a 101 is put back.
pub fn prepare_response(response: &mut Response<Incoming>, requested: HeaderValue) {
    let protocol = response.headers().get(header::UPGRADE).cloned().unwrap_or(requested);
    let headers = response.headers_mut();
    headers::strip_hop_by_hop(headers);
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, protocol);
}

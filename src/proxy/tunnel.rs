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

/// The protocol an upstream's 101 switches to, as the client is told it:
/// the upstream's `Upgrade` (`answered`), or without one the one `requested`.
/// `None` when the client did not ask to upgrade, or the upstream switches
/// to a protocol the client did not list (RFC 9110 §7.8): it is out of step,
/// and the client gets 502, not a tunnel it did not ask for.
pub fn switch_to(requested: Option<&HeaderValue>, answered: Option<&[u8]>) -> Option<HeaderValue> {
    let requested = requested?;
    let Some(answered) = answered else { return Some(requested.clone()) };
    let offered = |token: &[u8]| {
        let listed = requested.as_bytes().split(|&b| b == b',');
        listed.map(<[u8]>::trim_ascii).any(|listed| listed.eq_ignore_ascii_case(token))
    };
    let mut chosen = answered.split(|&b| b == b',').map(<[u8]>::trim_ascii);
    chosen.all(|token| !token.is_empty() && offered(token)).then(|| HeaderValue::from_bytes(answered).ok())?
}

/// Says why an upstream's 101 is answered 502 (`switch_to` refused it): the
/// access line only says the upstream's answer was invalid.
pub fn log_refused_switch(
    ctx: &crate::access::RequestContext,
    requested: Option<&HeaderValue>,
    answered: Option<&[u8]>,
) {
    let answered = String::from_utf8_lossy(answered.unwrap_or(b"-"));
    match requested {
        None => {
            tracing::warn!(route = %ctx.route_name(), upstream = %ctx.upstream_name(), "upstream answered 101 (upgrade to {answered}) to a request that asked for none; answered 502")
        }
        Some(asked) => {
            tracing::warn!(route = %ctx.route_name(), upstream = %ctx.upstream_name(), "upstream switched to {answered}, which the client did not ask for ({asked:?}); answered 502")
        }
    }
}

/// Rewrites the upstream's 101 for the client: hop-by-hop headers go, and the
/// `Connection`/`Upgrade` pair that makes it a 101 is put back, naming `protocol` (see `switch_to`).
pub fn prepare_response(response: &mut Response<Incoming>, protocol: HeaderValue) {
    let headers = response.headers_mut();
    headers::strip_hop_by_hop(headers);
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, protocol);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_may_switch_only_to_a_protocol_the_client_listed() {
        let asked = HeaderValue::from_static("websocket, foo/2");
        let switch = |answered: Option<&str>| switch_to(Some(&asked), answered.map(str::as_bytes));
        assert_eq!(switch(Some("WebSocket")).unwrap(), "WebSocket");
        assert_eq!(switch(Some("foo/2")).unwrap(), "foo/2");
        assert_eq!(switch(None).unwrap(), "websocket, foo/2", "no Upgrade in the 101: the one asked for");
        assert_eq!(switch(Some("h2c")), None);
        assert_eq!(switch(Some("websocket, h2c")), None);
        assert_eq!(switch(Some("")), None);
        assert_eq!(switch_to(None, Some(b"websocket")), None, "nobody asked");
    }
}

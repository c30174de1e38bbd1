//! What `fuzz/`, `benches/` and `tests/` drive directly, below the public
//! surface in `lib.rs`: the parsers the daemon runs on client and upstream
//! bytes and the signature schemes (for `cargo fuzz`), the request-path steps
//! the routing bench times, and the TLS helpers the tests build their clients
//! and upstreams with.
//!
//! Not an API: it changes whenever what it re-exports does.

pub use crate::canonical::canonicalize;
pub use crate::http1::chunked::ChunkedDecoder;
pub use crate::http1::head::{
    Framing, HeadError, HeadLimits, RESPONSE_FIELDS, RequestHead, ResponseHead, parse_request, parse_response,
};
pub use crate::http1::wire::{client_framing, write_request_head, write_response_head};
pub use crate::proxy::HeadFacts;
pub use crate::proxy::headers::{forwarded, strip_hop_by_hop};
pub use crate::routes::RequestFacts;
pub use crate::server::proxy_protocol::read as read_proxy_header;
pub use crate::tls::{UpstreamTrust, client_config, load_certificate, server_config};
// The dedupe key sources and the JSON walk behind them, for the `dedupe_key` fuzz target.
pub use crate::guards::dedupe::json::{Found, find as find_json, unescape as unescape_json};
pub use crate::guards::dedupe::{KeySource, MAX_KEY};
// The signature schemes, for the `verify` fuzz target (headers, query and body from the fuzzer).
pub use crate::verify::{Encoding, Keys, Refused, Scheme, Signed, Verifier, VerifyMode};

/// The head the engine sends upstream for `head`: hop-by-hop headers and
/// those `Connection` names removed, `X-Forwarded-*` and `Via` added, and the
/// framing written, as the forward phase does it; `None` for a target the
/// proxy refuses (400) rather than forwards. For the fuzz targets that hold
/// the framing the upstream reads to the one the client sent.
pub fn upstream_request_head(head: &RequestHead) -> Option<Vec<u8>> {
    // The proxy refuses these targets (400); an absolute-form one is rewritten
    // by `plan` (its scheme checked, an empty path made `/`), which this skips.
    canonicalize(head.parts.uri.path()).ok()?;
    if head.parts.uri.scheme().is_some() {
        return None;
    }
    let mut headers = head.parts.headers.clone();
    strip_hop_by_hop(&mut headers);
    let peer = http::HeaderValue::from_static("127.0.0.1");
    let host = head.parts.headers.get(http::header::HOST);
    let added = forwarded(&mut headers, &peer, false, "http", host, head.parts.version);
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = head.parts.method.clone();
    parts.uri = head.parts.uri.clone();
    parts.headers = headers;
    let mut out = Vec::new();
    write_request_head(&mut out, &parts, &added, head.framing);
    Some(out)
}

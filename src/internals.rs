//! What `fuzz/`, `benches/` and `tests/` drive directly, below the public
//! surface in `lib.rs`: the parsers the daemon runs on client and upstream
//! bytes (for `cargo fuzz`), the request-path steps the routing bench times,
//! and the TLS helpers the tests build their clients and upstreams with.
//!
//! Not an API: it changes whenever what it re-exports does.

pub use crate::canonical::canonicalize;
pub use crate::http1::chunked::ChunkedDecoder;
pub use crate::http1::head::{
    Framing, HeadError, HeadLimits, RequestHead, ResponseHead, parse_request, parse_response,
};
pub use crate::proxy::headers::{forwarded, strip_hop_by_hop};
pub use crate::routes::RequestFacts;
pub use crate::server::proxy_protocol::read as read_proxy_header;
pub use crate::tls::{UpstreamTrust, client_config, load_certificate, server_config};

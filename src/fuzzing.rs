//! The parsers, reachable from the fuzz targets in `fuzz/` (`cargo fuzz`).
//!
//! Not an API: only `fuzz/` uses this, and it may change with the parsers.
//! Each item is the function the daemon itself runs on client or upstream bytes.

pub use crate::http1::chunked::ChunkedDecoder;
pub use crate::http1::head::{
    Framing, HeadError, HeadLimits, RequestHead, ResponseHead, parse_request, parse_response,
};
pub use crate::server::proxy_protocol::read as read_proxy_header;

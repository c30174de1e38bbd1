//! The admit phase: what the head itself must get right before routing
//! (Host, framing headers, the declared body length).

use http::Version;
use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;

use crate::error::{BadRequest, ProxyError};

/// The request's host: the absolute-form authority if there is one (RFC 9112
/// §3.2.2), else the single `Host` header. HTTP/1.1 without one is refused.
pub(super) fn request_host(req: &Parts) -> Result<Option<HeaderValue>, ProxyError> {
    let missing = ProxyError::BadRequest(BadRequest::MissingHost);
    if let Some(authority) = req.uri.authority() {
        if !matches!(req.uri.scheme_str(), Some("http" | "https")) {
            return Err(ProxyError::BadRequest(BadRequest::InvalidHost));
        }
        let value = HeaderValue::from_str(authority.as_str()).map_err(|_| missing)?;
        return Ok(Some(value));
    }
    let mut values = req.headers.get_all(header::HOST).iter();
    match (values.next(), values.next()) {
        (Some(host), None) => Ok(Some(host.clone())),
        (None, _) if req.version == Version::HTTP_10 => Ok(None),
        _ => Err(missing),
    }
}

/// Refuses any `Transfer-Encoding` other than a single `chunked`: codings
/// hookgate does not decode would make the body's end ambiguous.
pub(super) fn check_framing(headers: &HeaderMap) -> Result<(), ProxyError> {
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter();
    match (codings.next(), codings.next()) {
        (None, _) => Ok(()),
        (Some(value), None) if value.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked") => Ok(()),
        _ => Err(ProxyError::BadRequest(BadRequest::TransferEncoding)),
    }
}

pub(super) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

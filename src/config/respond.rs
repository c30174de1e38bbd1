//! A `respond = { status, body, headers }` table: the answer hookgate gives
//! itself, checked so that what goes out is what the file says.

use http::{HeaderName, HeaderValue, StatusCode};

use super::Step;
use super::raw::RawRespond;
use super::validate::{Checker, child};
use crate::routes::LocalResponse;

/// Headers a `respond` table may not set: hookgate frames the answer itself
/// (`Content-Length` from the body) and the rest belong to one connection.
const FRAMING_AND_HOP_BY_HOP: [&str; 8] =
    ["content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"];

impl Checker<'_> {
    pub(super) fn respond(&mut self, at: &[Step], raw: RawRespond) -> Option<LocalResponse> {
        let sub = |k: &str| child(at, k);
        let status = match StatusCode::from_u16(raw.status) {
            Ok(s) if s.as_u16() >= 200 => s,
            _ => {
                self.problem(&sub("status"), format!("status must be 200-599, got {}", raw.status));
                return None;
            }
        };
        // RFC 9110 §15.3.5, §15.4.5: neither has content.
        if matches!(status.as_u16(), 204 | 304) && !raw.body.is_empty() {
            self.problem(&sub("body"), format!("a {} has no body: remove it, or use 200", status.as_u16()));
        }
        let mut headers = http::HeaderMap::new();
        for (name, value) in raw.headers {
            let here = child(&sub("headers"), &name);
            match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
                (Ok(n), _) if FRAMING_AND_HOP_BY_HOP.contains(&n.as_str()) => self.problem(
                    &here,
                    format!(
                        "{name:?} is not set by hand: hookgate frames the answer itself (Content-Length from body)"
                    ),
                ),
                (Ok(n), Ok(v)) => {
                    headers.append(n, v);
                }
                _ => self.problem(&here, format!("invalid header {name:?}: {value:?}")),
            }
        }
        Some(LocalResponse::new(status, raw.body, headers))
    }
}

//! The errors hookgate answers itself, and their one mapping to status codes.
//!
//! Every failure on the request path becomes one `ProxyError`, classified by
//! who is at fault (the client, the upstream, or us). `status()` is the only
//! place a kind turns into a status code, and a test pins the whole table.

use http::StatusCode;

use crate::canonical::TargetError;
use crate::recent::Refusal;

/// Its message is its body's line, but for the two kinds that say more in a log
/// line than they tell the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// Client: the request target or head is ambiguous or malformed.
    #[error("bad request: {0}")]
    BadRequest(BadRequest),
    /// Client: the body paused longer than `body_timeout`.
    #[error("{}", self.body().trim_end())]
    BodyTimeout,
    /// Client: the upload broke off before it was complete.
    #[error("{}", self.body().trim_end())]
    ClientAborted,
    /// Client: the body is larger than `max_body`.
    #[error("{}", self.body().trim_end())]
    BodyTooLarge,
    /// Client: the target is longer than `max_uri_bytes`.
    #[error("{}", self.body().trim_end())]
    UriTooLong,
    /// Client: the head is larger than `max_header_bytes`.
    #[error("{}", self.body().trim_end())]
    HeadTooLarge,
    /// Client: the head has more than `max_headers` fields.
    #[error("{}", self.body().trim_end())]
    TooManyFields,
    /// Client: the route's secret header is missing.
    #[error("{}", self.body().trim_end())]
    MissingSecret,
    /// Client: the route's `verify` refused the request's signature (missing,
    /// not matching, malformed or stale: the log line says which).
    #[error("{}", self.body().trim_end())]
    BadSignature,
    /// Client: not allowed from this address (`allow_from`).
    #[error("{}", self.body().trim_end())]
    Forbidden,
    /// Client: the route's secret header is wrong (or repeated).
    #[error("forbidden: wrong secret header")]
    WrongSecret,
    /// Client: over the route's rate limit; retry after this many seconds.
    #[error("{}", self.body().trim_end())]
    RateLimited(u64),
    /// Us: the route has `max_in_flight` requests running already.
    #[error("{}", self.body().trim_end())]
    RouteBusy,
    /// Us: `shutdown_grace` ran out before the upstream answered.
    #[error("{}", self.body().trim_end())]
    ShuttingDown,
    /// Us: a `store` route could not keep the request (the spool is full, or
    /// its disk); nothing is acknowledged that was not kept.
    #[error("{}", self.body().trim_end())]
    NotKept,
    /// Upstream: could not connect, or the connection broke.
    #[error("{}", self.body().trim_end())]
    UpstreamUnreachable,
    /// Upstream: sent something that is not a valid HTTP response.
    #[error("{}", self.body().trim_end())]
    UpstreamBroken,
    /// Upstream: no response head within `response_timeout`.
    #[error("{}", self.body().trim_end())]
    UpstreamTimeout,
}

/// Why a request was refused with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    #[error("{0}")]
    Target(TargetError),
    #[error("missing Host header")]
    MissingHost,
    #[error("repeated Host header")]
    RepeatedHost,
    #[error("invalid Host")]
    InvalidHost,
    /// An HTTP/2 request whose `host` names another host than its `:authority` (RFC 9113 §8.3.1).
    #[error("Host differs from :authority")]
    HostNotAuthority,
    /// An authority-form target (`CONNECT host:port`) or an absolute one
    /// whose scheme is not http(s).
    #[error("CONNECT or a non-HTTP absolute target (hookgate is no forward proxy)")]
    ForeignTarget,
    #[error("Transfer-Encoding other than chunked")]
    TransferEncoding,
    /// A method with a lower-case letter (`post`): refused, as nginx does,
    /// because PHP frameworks upper-case it and would take `post` for the
    /// `POST` a route's `methods` and guards are written for.
    #[error("method not in upper case")]
    MethodCase,
    #[error("both Content-Length and Transfer-Encoding")]
    ContentLengthWithTransferEncoding,
    /// HTTP/2's preface on a plain listener (prior knowledge): HTTP/2 needs TLS.
    #[error(
        "HTTP/2 without TLS (prior knowledge) is not served: this listener speaks HTTP/1.1, HTTP/2 is offered over TLS"
    )]
    CleartextHttp2,
    /// The head breaks HTTP/1.1's syntax (bare LF or CR, obs-fold, bad bytes or framing).
    #[error("malformed request head")]
    Malformed,
    /// A chunked request body breaks its framing (a bad chunk size or line end).
    /// The head may have gone upstream already: its connection is then cut.
    #[error("malformed chunked request body")]
    MalformedBody,
    /// A TRACE or OPTIONS request's `Max-Forwards` is not one decimal number.
    #[error("Max-Forwards is not one number")]
    MaxForwards,
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_) | ProxyError::ClientAborted => StatusCode::BAD_REQUEST,
            ProxyError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::UriTooLong => StatusCode::URI_TOO_LONG,
            ProxyError::HeadTooLarge | ProxyError::TooManyFields => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProxyError::MissingSecret | ProxyError::BadSignature => StatusCode::UNAUTHORIZED,
            ProxyError::Forbidden | ProxyError::WrongSecret => StatusCode::FORBIDDEN,
            ProxyError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::RouteBusy | ProxyError::ShuttingDown | ProxyError::NotKept => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::UpstreamUnreachable | ProxyError::UpstreamBroken => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The one-line body sent to the client. It never echoes client input.
    pub fn body(&self) -> &'static str {
        match self {
            ProxyError::BadRequest(_) => "bad request\n",
            ProxyError::BodyTimeout => "request body timed out\n",
            ProxyError::ClientAborted => "request body incomplete\n",
            ProxyError::BodyTooLarge => "request body too large\n",
            ProxyError::UriTooLong => "request target too long\n",
            ProxyError::HeadTooLarge => "request head too large\n",
            ProxyError::TooManyFields => "too many header fields\n",
            ProxyError::MissingSecret => "unauthorized\n",
            ProxyError::BadSignature => "signature check failed\n",
            ProxyError::Forbidden | ProxyError::WrongSecret => "forbidden\n",
            ProxyError::RateLimited(_) => "too many requests\n",
            ProxyError::RouteBusy => "route busy, retry later\n",
            ProxyError::ShuttingDown => "shutting down, retry later\n",
            ProxyError::NotKept => "cannot keep the request now, retry later\n",
            ProxyError::UpstreamUnreachable => "upstream unreachable\n",
            ProxyError::UpstreamBroken => "upstream sent an invalid response\n",
            ProxyError::UpstreamTimeout => "upstream timed out\n",
        }
    }

    /// The guard that refused the request, if one did.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            ProxyError::Forbidden => Some(Refusal::AllowFrom),
            ProxyError::MissingSecret | ProxyError::WrongSecret => Some(Refusal::Secret),
            ProxyError::BadSignature => Some(Refusal::Signature),
            ProxyError::RateLimited(_) => Some(Refusal::Rate),
            ProxyError::BodyTooLarge => Some(Refusal::Size),
            ProxyError::RouteBusy => Some(Refusal::InFlight),
            _ => None,
        }
    }

    /// Whether the upstream caused it: unreachable, broken or too slow. What a
    /// `store` route in `fallback` keeps the request for.
    pub fn is_upstream_fault(&self) -> bool {
        matches!(self, ProxyError::UpstreamUnreachable | ProxyError::UpstreamBroken | ProxyError::UpstreamTimeout)
    }

    /// Whether the client, rather than an upstream or hookgate, caused it.
    pub fn is_client_fault(&self) -> bool {
        matches!(
            self,
            ProxyError::BadRequest(_)
                | ProxyError::BodyTimeout
                | ProxyError::ClientAborted
                | ProxyError::BodyTooLarge
                | ProxyError::UriTooLong
                | ProxyError::HeadTooLarge
                | ProxyError::TooManyFields
                | ProxyError::MissingSecret
                | ProxyError::BadSignature
                | ProxyError::Forbidden
                | ProxyError::WrongSecret
                | ProxyError::RateLimited(_)
        )
    }
}

/// An error and its causes on one line, for log lines and messages.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_fixed_status() {
        let table = [
            (ProxyError::BadRequest(BadRequest::MissingHost), 400),
            (ProxyError::BadRequest(BadRequest::Target(TargetError::DotSegment)), 400),
            (ProxyError::BadRequest(BadRequest::MaxForwards), 400),
            (ProxyError::BadRequest(BadRequest::ForeignTarget), 400),
            (ProxyError::BadRequest(BadRequest::MethodCase), 400),
            (ProxyError::BodyTimeout, 408),
            (ProxyError::BodyTooLarge, 413),
            (ProxyError::UriTooLong, 414),
            (ProxyError::HeadTooLarge, 431),
            (ProxyError::TooManyFields, 431),
            (ProxyError::MissingSecret, 401),
            (ProxyError::BadSignature, 401),
            (ProxyError::Forbidden, 403),
            (ProxyError::WrongSecret, 403),
            (ProxyError::RateLimited(3), 429),
            (ProxyError::RouteBusy, 503),
            (ProxyError::ShuttingDown, 503),
            (ProxyError::NotKept, 503),
            (ProxyError::UpstreamUnreachable, 502),
            (ProxyError::UpstreamBroken, 502),
            (ProxyError::ClientAborted, 400),
            (ProxyError::UpstreamTimeout, 504),
        ];
        for (error, status) in table {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert!(error.body().ends_with('\n') && error.body().lines().count() == 1);
        }
    }
}

//! The request path's side of a route's `store` key, for both front ends:
//! what is kept of a request (its head as it goes upstream, with
//! `X-Forwarded-*`, and its whole body) and the answer when hookgate keeps it
//! instead of forwarding (the route's `ack`, or 503 when it could not).

use http::header;
use http::request::Parts;

use super::{State, error_response, headers};
use crate::access::{RequestContext, RouteRef};
use crate::error::ProxyError;
use crate::routes::LocalResponse;
use crate::spool::depot::{Admitted, Keeping};

/// The `Keeping` of a request on a `store` route whose body is `body`;
/// `None` when the route keeps nothing (or the spool is not open). `added`
/// is hookgate's own headers, which both front ends keep beside the head.
pub fn keeping(
    state: &State,
    ctx: &RequestContext,
    upstream: usize,
    parts: &Parts,
    added: &headers::Added,
    body: Vec<u8>,
) -> Option<Keeping> {
    let RouteRef::Route(index) = ctx.route_ref else { return None };
    let route = &state.config.routes.routes()[index];
    let (spec, depot) = (route.store.as_ref()?, state.depot.clone()?);
    let upstream = &state.upstreams[upstream].config.name;
    Some(Keeping::new(depot, spec, &route.name, upstream, kept_head(parts, added, body.len()), body))
}

/// The request head as it goes upstream, in HTTP/1.1's form, with the
/// framing of a body of `length` bytes.
fn kept_head(parts: &Parts, added: &headers::Added, length: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    headers::write_request_line(&mut out, parts);
    let framing = [header::EXPECT, header::CONTENT_LENGTH, header::TRANSFER_ENCODING];
    for (name, value) in parts.headers.iter().filter(|(name, _)| !framing.contains(name)) {
        headers::write_field(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    for (name, value) in added.pairs() {
        headers::write_field(&mut out, name.as_bytes(), value);
    }
    headers::write_field(&mut out, b"content-length", itoa::Buffer::new().format(length).as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

/// The answer when hookgate kept the request (`ack`, empty body) or could
/// not (503 with `Retry-After`). `None`: forward it live.
pub fn kept_answer(admitted: &Admitted, ctx: &mut RequestContext) -> Option<LocalResponse> {
    match admitted {
        Admitted::Live(_) => None,
        Admitted::Kept(ack) => {
            ctx.upstream = None;
            Some(LocalResponse::new(*ack, String::new(), http::HeaderMap::new()))
        }
        Admitted::NotKept(_) => Some(error_response(&ProxyError::NotKept, ctx)),
    }
}

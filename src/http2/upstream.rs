//! Where an HTTP/2 client's request goes: a plain upstream in HTTP/1.1 over
//! the engine's per-worker pools (`pooled`), an https one through its hyper
//! client (`upstream::UpstreamClient`, which may speak HTTP/2 to it). Either
//! answer's body is an `UpstreamBody`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::pooled::{self, PooledBody};
use crate::error::ProxyError;
use crate::hyper_glue::{BodyError, RequestBody};
use crate::proxy::State;
use crate::proxy::headers::{self, Added};

/// An upstream's response body, from either path (a pooled one boxed: it
/// holds the connection, its buffer and where the body stands).
pub enum UpstreamBody {
    Pooled(Box<PooledBody>),
    Hyper(Incoming),
}

/// Sends the request to upstream `index` with hookgate's own headers
/// (`added`) and waits for its response head, whose headers are then those
/// that go on to the client, with `Via`.
pub async fn send(
    state: &Arc<State>,
    index: usize,
    mut parts: Parts,
    body: RequestBody,
    added: Added,
) -> Result<Response<UpstreamBody>, ProxyError> {
    let upstream = &state.upstreams[index];
    if upstream.config.tls.is_none() {
        let response = pooled::send(state.clone(), index, parts, body, &added).await?;
        return Ok(response.map(|body| UpstreamBody::Pooled(Box::new(body))));
    }
    added.insert_into(&mut parts.headers);
    headers::frame_for_hyper(&mut parts, &body);
    // Boxed: hyper's client future is most of this one's size, which every
    // stream's future (boxed whole, see `server::conn`) would otherwise carry.
    let mut response = Box::pin(upstream.send(Request::from_parts(parts, body))).await?;
    // The pooled path's head passed the engine's parser and lost its
    // hop-by-hop headers as it was read; hyper's client did neither.
    headers::check_forwardable(&upstream.config.name, response.status(), response.headers())?;
    headers::strip_hop_by_hop(response.headers_mut());
    headers::add_via(response.headers_mut());
    Ok(response.map(UpstreamBody::Hyper))
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            UpstreamBody::Pooled(body) => Pin::new(&mut **body).poll_frame(cx),
            UpstreamBody::Hyper(body) => Pin::new(body).poll_frame(cx).map_err(BodyError::Read),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Pooled(body) => body.is_end_stream(),
            UpstreamBody::Hyper(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Pooled(body) => body.size_hint(),
            UpstreamBody::Hyper(body) => body.size_hint(),
        }
    }
}

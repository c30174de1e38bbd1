//! Requests from engine connections to https upstreams, which go through
//! hyper's client (its TLS connector, HTTP/2 when the upstream offers it).
//!
//! The request body is read from the client by this task and handed to the
//! client through a small channel, so it still streams with backpressure;
//! the response is written to the client by this task as its frames arrive.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode, Version};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::client::Client;
use super::exchange::{Answering, Exchange, answer_local, client_left, fail, note_failed_write};
use super::gate;
use super::head::Framing;
use super::io::{Io, send_all};
use super::request_body::{self, ChannelSink, PumpError};
use super::response_body::{Tee, written_of};
use super::wire::{self, Connection, write_map_head, write_status};
use crate::access::Delivery;
use crate::error::ProxyError;
use crate::guards::dedupe::Capture;
use crate::hyper_glue::{BodyError, RequestBody};
use crate::metrics::OpenGauge;
use crate::proxy::{self, headers};
use crate::upstream::UpstreamClient;

/// Forwards `ex` to an https upstream through hyper's client and answers the client.
pub async fn forward<S: Io>(client: &mut Client<S>, ex: Box<Exchange>, answering: Answering) -> bool {
    let state = answering.state.clone();
    let upstream = &state.upstreams[ex.plan.upstream];
    let Exchange { parts, framing, expects_continue, version, plan, mut ctx, ticket, keep } = *ex;
    let (request, chunks) = upstream_request(parts, framing, plan.added);
    if expects_continue && framing != Framing::Empty && !client.send_continue().await {
        client_left(ctx, answering);
        return false;
    }
    let mut sink = ChannelSink(chunks);
    let clock = client.conn.clock.clone();
    let pump = async {
        let pumped = request_body::pump(client, &mut sink, framing, plan.max_body).await;
        drop(sink);
        pumped
    };
    let (response, pumped) = tokio::select! {
        exchanged = async { tokio::join!(upstream.send(request), pump) } => exchanged,
        () = super::io::cut(&clock) => {
            return fail(client, ctx, answering, ProxyError::ShuttingDown, Framing::UntilClose).await;
        }
    };
    // The upstream answered before taking the whole body: what is left of it
    // is still on the client connection, which must close after the answer.
    let request_complete = !matches!(pumped, Err(PumpError::Upstream(_)));
    let mut response = match (checked(response, pumped, upstream), keep) {
        (Ok(response), Some(keep)) if keep.takes_over(response.status().as_u16()) => {
            let why = format!("{} answered {}", upstream.config.name, response.status().as_u16());
            let error = ProxyError::UpstreamBroken;
            return Box::pin(gate::live_failed(client, ctx, answering, keep, ticket, error, why)).await;
        }
        (Err(error), Some(keep)) if error.is_upstream_fault() => {
            let why = error.to_string();
            return Box::pin(gate::live_failed(client, ctx, answering, keep, ticket, error, why)).await;
        }
        (Ok(response), keep) => {
            if let Some(keep) = keep {
                keep.answered(response.status().as_u16());
            }
            response
        }
        (Err(error), _) => return fail(client, ctx, answering, error, Framing::UntilClose).await,
    };
    ctx.upstream = Some(upstream.config.name.clone());
    let capture = ticket.and_then(|ticket| {
        let content_type = response.headers().get(header::CONTENT_TYPE).map(HeaderValue::as_bytes);
        ticket.head(response.status().as_u16(), content_type, response.body().size_hint().exact())
    });
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        return tunnel(client, response, plan.upgrade, ctx, answering).await;
    }
    let (out, to, keep_alive) =
        client_head(&mut response, version, answering.head, answering.keep_alive && request_complete);
    let delivery = answering.deliver(ctx, response.status());
    let read_timeout = upstream.config.response_timeout;
    let whole = relay_body(client, response.into_body(), (to, out), &delivery, read_timeout, capture).await;
    whole && keep_alive
}

/// The response head for the client (hop-by-hop headers out, `Via` in,
/// framing of hookgate's own), how its body is framed, and whether the
/// connection stays open after it (`keep_alive` if nothing else closes it).
fn client_head(
    response: &mut Response<Incoming>,
    version: Version,
    head: bool,
    keep_alive: bool,
) -> (Vec<u8>, Framing, bool) {
    headers::strip_hop_by_hop(response.headers_mut());
    headers::add_via(response.headers_mut());
    let http10 = version == Version::HTTP_10;
    let to = response_framing(response, head, http10);
    let keep_alive = keep_alive && to != Framing::UntilClose;
    let mut out = Vec::with_capacity(512);
    write_map_head(&mut out, response.status(), response.headers(), to, Connection { keep_alive, http10 });
    (out, to, keep_alive)
}

/// The request for hyper's client (hookgate answers `Expect` itself), and
/// the channel its body is fed through as the engine reads it.
fn upstream_request(
    mut parts: Parts,
    framing: Framing,
    added: headers::Added,
) -> (Request<RequestBody>, mpsc::Sender<Result<Frame<Bytes>, BodyError>>) {
    parts.headers.remove(header::EXPECT);
    added.insert_into(&mut parts.headers);
    let length = match framing {
        Framing::Length(n) => Some(n),
        Framing::Empty => Some(0),
        Framing::Chunked | Framing::UntilClose => None,
    };
    let (chunks, receiver) = mpsc::channel(2);
    let body = RequestBody::from_engine(receiver, length);
    headers::frame_for_hyper(&mut parts, &body);
    (Request::from_parts(parts, body), chunks)
}

/// The upstream's response, or the error to answer instead: the client's
/// fault in sending the body comes first, then the upstream's failure or a
/// response head that must not be forwarded.
fn checked(
    response: Result<Response<Incoming>, ProxyError>,
    pumped: Result<(), PumpError>,
    upstream: &UpstreamClient,
) -> Result<Response<Incoming>, ProxyError> {
    if let Err(PumpError::Client(error)) = pumped {
        return Err(error);
    }
    let response = response?;
    headers::check_forwardable(&upstream.config.name, response.status(), response.headers())?;
    Ok(response)
}

/// How the response body is framed for the client: its exact length when
/// hyper knows it, chunked otherwise (until the close for HTTP/1.0 clients).
fn response_framing(response: &Response<Incoming>, head: bool, http10: bool) -> Framing {
    let status = response.status();
    let bodiless = head || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    match response.body().size_hint().exact() {
        _ if bodiless => Framing::Empty,
        Some(n) => Framing::Length(n),
        None if http10 => Framing::UntilClose,
        None => Framing::Chunked,
    }
}

/// Writes an upstream's response body to the client after its head (already
/// in `out`), framed as `to`, its trailers with the last chunk, copying it
/// into `capture` (a `dedupe` route's 2xx answer) as it passes. Returns
/// whether all of it reached the client.
async fn relay_body<S: Io>(
    client: &mut Client<S>,
    mut body: hyper::body::Incoming,
    (to, mut out): (Framing, Vec<u8>),
    delivery: &Delivery,
    read_timeout: std::time::Duration,
    mut capture: Option<Box<Capture>>,
) -> bool {
    let mut written = 0u64;
    let mut trailers = Vec::new();
    loop {
        let mut done = to == Framing::Empty;
        let mut data = Bytes::new();
        if !done {
            match tokio::time::timeout(read_timeout, body.frame()).await {
                Err(_) => {
                    delivery.fail(&format_args!("no response body bytes for {read_timeout:?}"));
                    return false;
                }
                Ok(None) => done = true,
                Ok(Some(Err(e))) => {
                    delivery.fail(&e);
                    return false;
                }
                Ok(Some(Ok(frame))) => match frame.into_data() {
                    Ok(bytes) => data = bytes,
                    // Trailers end the body; they go out with the last chunk
                    // (and an answer with trailers is not remembered).
                    Err(frame) => {
                        if let Some(fields) = frame.trailers_ref() {
                            wire::write_trailers(&mut trailers, fields);
                        }
                        capture = None;
                        continue;
                    }
                },
            }
        }
        delivery.produced(data.len());
        capture.push(&data);
        let range = wire::frame(&mut out, &data, to, done, &trailers);
        let before = written;
        let sent = send_all(&mut client.io, &out, client.limits.send_timeout, |reached| {
            delivery.set_written(before + written_of(&range, reached));
        })
        .await;
        written += data.len() as u64;
        if let Err(e) = sent {
            note_failed_write(client, e, delivery);
            return false;
        }
        out.clear();
        if done {
            delivery.ended();
            capture.finish();
            return client.io.flush().await.is_ok();
        }
    }
}

/// The upstream accepted an upgrade over hyper: tunnel to its upgraded stream.
async fn tunnel<S: Io>(
    client: &mut Client<S>,
    mut response: http::Response<hyper::body::Incoming>,
    requested: Option<HeaderValue>,
    mut ctx: crate::access::RequestContext,
    answering: Answering,
) -> bool {
    let answered = response.headers().get(http::header::UPGRADE).map(HeaderValue::as_bytes);
    let Some(protocol) = proxy::tunnel::switch_to(requested.as_ref(), answered) else {
        proxy::tunnel::log_refused_switch(&ctx, requested.as_ref(), answered);
        let local = proxy::error_response(&ProxyError::UpstreamBroken, &mut ctx);
        answer_local(client, &local, ctx, answering).await;
        return false;
    };
    let upgraded = hyper::upgrade::on(&mut response);
    proxy::tunnel::prepare_response(&mut response, protocol);
    headers::add_via(response.headers_mut());
    let mut out = Vec::with_capacity(256);
    write_status(&mut out, 101, "Switching Protocols");
    for (name, value) in response.headers() {
        headers::write_field(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    drop(answering.deliver(ctx, StatusCode::SWITCHING_PROTOCOLS));
    if let Err(e) = send_all(&mut client.io, &out, client.limits.send_timeout, |_| {}).await {
        client.note_send_error(e);
        return false;
    }
    let Ok(upgraded) = upgraded.await else { return false };
    let mut upstream = TokioIo::new(upgraded);
    if !client.rbuf.is_empty() && upstream.write_all(&client.rbuf).await.is_err() {
        return false;
    }
    client.rbuf.clear();
    let _open = OpenGauge::new(&client.conn.metrics.tunnels);
    let _ = tokio::io::copy_bidirectional(&mut client.io, &mut upstream).await;
    false
}

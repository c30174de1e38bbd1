//! `dedupe` routes on the engine. The request body is read whole (within the
//! route's `max_body`; Telegram's updates are a few KiB), its `update_id`
//! claimed, and then either the body is put back in front of the read buffer
//! and forwarded unchanged like any body that arrived with its head, or the
//! redelivery is answered here (see `guards::dedupe`).

use std::sync::Arc;

use bytes::BytesMut;
use http::header::{self, HeaderValue};

use super::client::Client;
use super::exchange::{Answering, Exchange, answer_local, fail};
use super::head::Framing;
use super::io::Io;
use super::request_body::{self, BodySink, PumpError, SinkClosed};
use crate::error::ProxyError;
use crate::guards::dedupe::{self, Dedupe, Settled};
use crate::proxy;

/// Collects a request body in memory.
struct Collect(Vec<u8>);

impl BodySink for Collect {
    async fn data(&mut self, bytes: &[u8]) -> Result<(), SinkClosed> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    async fn end_chunked(&mut self, _trailers: &[u8]) -> Result<(), SinkClosed> {
        Ok(())
    }
}

/// Either the exchange goes on (with the claim's ticket in it), or the
/// client has been answered here and this says whether to keep the connection.
pub enum Gate {
    Forward(Box<Exchange>, Answering),
    Answered(bool),
}

/// Reads the body, claims its update id and answers redeliveries.
pub async fn gate<S: Io>(
    client: &mut Client<S>,
    mut ex: Box<Exchange>,
    answering: Answering,
    table: &Arc<Dedupe>,
) -> Gate {
    if ex.framing == Framing::Empty {
        // No body, no update: forwarded as it came.
        return Gate::Forward(ex, answering);
    }
    if ex.expects_continue {
        if !client.send_continue().await {
            return Gate::Answered(false);
        }
        ex.expects_continue = false;
    }
    let mut collected = Collect(Vec::new());
    match request_body::pump(client, &mut collected, ex.framing, ex.plan.max_body).await {
        Ok(()) => {}
        Err(failure) => {
            // `Collect` never refuses data, so this is the client's fault.
            let error = match failure {
                PumpError::Client(error) => error,
                PumpError::Upstream(_) => ProxyError::UpstreamBroken,
            };
            return Gate::Answered(fail(client, ex.ctx, answering, error, Framing::UntilClose).await);
        }
    }
    let body = collected.0;
    let Some(id) = dedupe::update_id(&body) else { return forward_with(client, ex, answering, &body) };
    let wait_limit = answering.state.upstreams[ex.plan.upstream].config.response_timeout;
    match table.settle(id, wait_limit).await {
        Settled::Forward(ticket) => {
            ex.ticket = Some(ticket);
            forward_with(client, ex, answering, &body)
        }
        // The body has been read: the connection can carry the next request.
        Settled::Repeat(status) => Gate::Answered(suppress(client, ex, answering, id, status).await),
        Settled::TimedOut => {
            Gate::Answered(fail(client, ex.ctx, answering, ProxyError::UpstreamTimeout, Framing::Empty).await)
        }
    }
}

/// Puts `body` back in front of whatever the client pipelined after it, so it
/// is forwarded like a body that arrived with its head, with a Content-Length.
fn forward_with<S: Io>(client: &mut Client<S>, mut ex: Box<Exchange>, answering: Answering, body: &[u8]) -> Gate {
    let mut rbuf = BytesMut::with_capacity(body.len() + client.rbuf.len());
    rbuf.extend_from_slice(body);
    rbuf.extend_from_slice(&client.rbuf);
    client.rbuf = rbuf;
    ex.framing = if body.is_empty() { Framing::Empty } else { Framing::Length(body.len() as u64) };
    ex.parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    Gate::Forward(ex, answering)
}

/// Answers a redelivery with the first copy's status and an empty body.
async fn suppress<S: Io>(
    client: &mut Client<S>,
    mut ex: Box<Exchange>,
    answering: Answering,
    id: i64,
    status: u16,
) -> bool {
    let local = proxy::repeated_answer(&mut ex.ctx, &answering.state, id, status);
    answer_local(client, &local, ex.ctx, answering).await
}

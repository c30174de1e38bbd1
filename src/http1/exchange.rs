//! One exchange on an engine connection: the planned request on its way out
//! (`Exchange`), what every answer needs (`Answering`), and the one path
//! every answer leaves by. `Answering::deliver` is where the engine starts a
//! response's `Delivery` (and so its access-log line); hookgate's own answers
//! (`answer_local`, `fail`) are written by `send_local`, and a request whose
//! client left before its answer began is logged by `client_left`.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use http::header;
use http::request::Parts;
use http::{StatusCode, Version};
use tokio::io::AsyncWriteExt;

use super::client::Client;
use super::head::Framing;
use super::io::{Io, send_all};
use super::wire::{Connection, write_map_head};
use crate::access::{Delivery, RequestContext};
use crate::connection::ActiveRequest;
use crate::error::ProxyError;
use crate::guards::dedupe::Ticket;
use crate::proxy::{self, Forward, State};
use crate::routes::LocalResponse;
use crate::spool::depot::Keeping;

/// One planned request on its way out.
pub struct Exchange {
    /// The head as rewritten for the upstream.
    pub parts: Parts,
    /// How the client frames the request body.
    pub framing: Framing,
    pub expects_continue: bool,
    /// The client's HTTP version.
    pub version: Version,
    pub plan: Forward,
    pub ctx: RequestContext,
    /// On a `dedupe` route: where the backend's status is reported.
    pub ticket: Option<Ticket>,
    /// On a `store` route forwarded live: keeps the request if the upstream fails.
    pub keep: Option<Box<Keeping>>,
}

/// What every answer needs besides the response itself.
pub struct Answering {
    pub start: Instant,
    pub active: ActiveRequest,
    pub state: Arc<State>,
    /// The request was HEAD: headers only.
    pub head: bool,
    pub keep_alive: bool,
    /// The client speaks HTTP/1.0: a kept connection is announced (`Connection: keep-alive`).
    pub http10: bool,
}

impl Answering {
    /// Starts the response to `line`'s request with `status`: the one place
    /// the engine makes a `Delivery`, whose drop writes the access-log line
    /// and records the route's metrics.
    #[inline(always)]
    pub fn deliver(self, ctx: RequestContext, status: StatusCode) -> Arc<Delivery> {
        let Answering { start, active, state, .. } = self;
        let metrics = state.route_metrics(ctx.route_ref).clone();
        Delivery::new(ctx, status, start, active, metrics)
    }
}

/// The answer to one request, whose output says whether the connection may
/// carry another request.
pub type Exchanging<'a> = Pin<Box<dyn Future<Output = bool> + Send + 'a>>;

/// Writes a response hookgate makes itself. Returns whether to keep the connection.
pub async fn answer_local<S: Io>(
    client: &mut Client<S>,
    local: &LocalResponse,
    ctx: RequestContext,
    answering: Answering,
) -> bool {
    let keep_alive = answering.keep_alive && local.headers.get(header::CONNECTION).is_none_or(|v| v != "close");
    let (head, http10) = (answering.head, answering.http10);
    let delivery = answering.deliver(ctx, local.status);
    send_local(client, local, &delivery, head, Connection { keep_alive, http10 }).await
        && keep_alive
        && client.io.flush().await.is_ok()
}

/// Answers `error` to the client. `unread` is how the request body still on
/// the connection is framed (`Empty` when none is left); with any left, or a
/// client fault, the connection closes after the answer.
/// Boxed: an error path should not make every exchange's future larger.
pub fn fail<'a, S: Io>(
    client: &'a mut Client<S>,
    mut ctx: RequestContext,
    mut answering: Answering,
    error: ProxyError,
    unread: Framing,
) -> Exchanging<'a> {
    Box::pin(async move {
        let local = proxy::error_response(&error, &mut ctx);
        answering.keep_alive &= unread == Framing::Empty && !error.is_client_fault();
        client.linger |= unread != Framing::Empty;
        answer_local(client, &local, ctx, answering).await
    })
}

/// Writes `local` (its body unless the request was HEAD) for `delivery`.
/// Returns whether all of it reached the client's socket.
pub async fn send_local<S: Io>(
    client: &mut Client<S>,
    local: &LocalResponse,
    delivery: &Delivery,
    head: bool,
    conn: Connection,
) -> bool {
    let mut out = Vec::with_capacity(256 + local.body.len());
    // 1xx, 204 and 304 have no body and no Content-Length (RFC 9110 §8.6).
    let status = local.status;
    let bodiless = status.is_informational() || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let framing = if bodiless { Framing::Empty } else { Framing::Length(local.body.len() as u64) };
    write_map_head(&mut out, status, &local.headers, framing, conn);
    let body_at = out.len();
    if !head && !bodiless {
        out.extend_from_slice(&local.body);
        delivery.produced(local.body.len());
    }
    let sent = send_all(&mut client.io, &out, client.limits.send_timeout, |at| {
        delivery.set_written(at.saturating_sub(body_at) as u64);
    })
    .await;
    match sent {
        Ok(()) => {
            delivery.ended();
            true
        }
        Err(e) => {
            note_failed_write(client, e, delivery);
            false
        }
    }
}

/// Records why writing `delivery`'s response failed: its line says so, even
/// for a response with no body bytes to fall short of.
pub fn note_failed_write<S: Io>(client: &Client<S>, error: super::io::SendError, delivery: &Delivery) {
    client.note_send_error(error);
    delivery.write_failed();
}

/// Logs a request whose client left before its answer began: 499, as nginx
/// does, with the reason the connection's clock holds.
pub fn client_left(ctx: RequestContext, answering: Answering) {
    answering.deliver(ctx, crate::access::client_closed_status()).client_left();
}

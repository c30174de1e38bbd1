//! One client connection: optional PROXY header, optional TLS handshake, then
//! HTTP/1.1 (hookgate's engine, `http1`) or HTTP/2 by ALPN (hyper, driven here
//! with the connection clock's head, idle and send timers and graceful drain).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::rt::{Read, Write};
use hyper::server::conn::http2;
use hyper::service::{HttpService, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::shared_alpn::SharedAlpn;
use super::{Shared, proxy_protocol};
use crate::client_ip::canonical_peer;
use crate::config::Limits;
use crate::connection::{
    AbortReason, ConnClock, ConnContext, Expired, LAST_ANSWER, ListenerKind, SERVED_RESET_BURST,
    SERVED_RESETS_PER_SECOND, Shutdown, Watch,
};
use crate::http1 as engine;
use crate::http2::ResponseBody;
use crate::hyper_glue::ClockedIo;
use crate::metrics::OpenGauge;
use crate::poll_clock::FreshExecutor;

/// Serves one accepted connection to its end.
///
/// Not an async fn: one would keep each argument twice (as given and as
/// moved in) in every connection's task, for the connection's whole life.
pub(super) fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    kind: ListenerKind,
    shared: Arc<Shared>,
    slot: Arc<OwnedSemaphorePermit>,
    stop: CancellationToken,
) -> impl Future<Output = ()> + Send {
    let open = OpenGauge::new(&shared.metrics.connections);
    // An IPv4 client on a dual-stack `[::]` listener is `::ffff:a.b.c.d`: from
    // here on (logs, `X-Forwarded-For`, allowlists, trust) it is `a.b.c.d`.
    let peer = canonical_peer(peer);
    let stop = Shutdown { drain: stop, cut: shared.cut.clone() };
    async move {
        let _ = stream.set_nodelay(true);
        let Setup { context, limits, tls } = match setup(&mut stream, peer, kind, &shared, slot).await {
            Ok(setup) => setup,
            Err(e) => {
                tracing::warn!(client = %peer, "closing connection from a trusted proxy: {e}");
                return;
            }
        };
        match tls {
            None => {
                engine::serve(stream, context, &shared.state, limits, &stop).await;
            }
            // Boxed so that plain connections, the common case, do not carry the size
            // of the TLS and HTTP/2 states in their task.
            Some(tls) => Box::pin(serve_tls(stream, *tls, context, &shared, limits, &stop)).await,
        }
        // Named here so the block owns it: the open-connections gauge counts until the end.
        drop(open);
    }
}

/// What a connection is served with, fixed when it is accepted: its
/// context, the limits and (on a TLS listener) the TLS settings. Routes are
/// read per request.
struct Setup {
    context: Arc<ConnContext>,
    limits: Arc<Limits>,
    tls: Option<Box<Tls>>,
}

/// Reads a trusted proxy's PROXY header (which names the client, made
/// canonical like the peer) and makes the connection's context; an error when
/// the header is missing or invalid.
async fn setup(
    stream: &mut TcpStream,
    peer: SocketAddr,
    kind: ListenerKind,
    shared: &Shared,
    slot: Arc<OwnedSemaphorePermit>,
) -> io::Result<Setup> {
    let state = shared.state.load_full();
    let listen = &state.config.listen;
    let peer = if listen.proxy_protocol && listen.trusted_proxies.contains(peer.ip()) {
        Box::pin(proxy_protocol::read_source(stream)).await?.map_or(peer, canonical_peer)
    } else {
        peer
    };
    let context = Arc::new(ConnContext {
        peer,
        peer_value: ConnContext::peer_value(peer),
        kind,
        clock: Arc::new(ConnClock::new()),
        _slot: slot,
        metrics: shared.metrics.clone(),
    });
    let tls = listen.tls.as_ref().filter(|_| kind == ListenerKind::Tls).map(|tls| {
        Box::new(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(tls.server_config.clone()),
            shared_alpn: SharedAlpn::of(state.cluster.as_ref(), tls.acme.as_ref(), &tls.server_config),
            handshake_timeout: tls.handshake_timeout,
            max_streams: tls.max_concurrent_streams,
        })
    });
    Ok(Setup { context, limits: state.config.limits.clone(), tls })
}

/// What a TLS listener's connection needs from the config it was accepted under.
struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    /// With `[cluster]` and tls-alpn-01: handshakes that read the ClientHello first.
    shared_alpn: Option<SharedAlpn>,
    handshake_timeout: std::time::Duration,
    max_streams: u32,
}

impl Tls {
    async fn accept(&self, stream: TcpStream) -> io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
        match &self.shared_alpn {
            Some(shared) => shared.accept(stream).await,
            None => self.acceptor.accept(stream).await,
        }
    }
}

/// The TLS handshake, then HTTP/2 (hyper) or HTTP/1.1 (the engine) by ALPN.
async fn serve_tls(
    stream: TcpStream,
    tls: Tls,
    context: Arc<ConnContext>,
    shared: &Arc<Shared>,
    limits: Arc<Limits>,
    stop: &Shutdown,
) {
    let peer = context.peer;
    // Boxed, like HTTP/2 below: the handshake's state (rustls' and, with a
    // cluster, the ClientHello read first) is gone once it ends, so an idle
    // connection's task should not keep room for it.
    let handshake = tokio::time::timeout(tls.handshake_timeout, Box::pin(tls.accept(stream)));
    // A connection still in its handshake has no request in flight: drain does not wait for it.
    let handshaken = tokio::select! {
        handshaken = handshake => handshaken,
        () = stop.drain.cancelled() => {
            tracing::debug!(client = %peer, "draining: closed a connection still in its TLS handshake");
            return;
        }
    };
    let stream = match handshaken {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(client = %peer, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(client = %peer, "TLS handshake not done within {:?}", tls.handshake_timeout);
            return;
        }
    };
    let alpn = stream.get_ref().1.alpn_protocol();
    if alpn == Some(crate::tls::ACME_TLS_ALPN) {
        // A tls-alpn-01 validation: the handshake was the answer (RFC 8737 §3).
        tracing::debug!(client = %peer, "answered a tls-alpn-01 challenge handshake");
        return;
    }
    if alpn != Some(b"h2") {
        engine::serve(stream, context, &shared.state, limits, stop).await;
        return;
    }
    let clock = context.clock.clone();
    let io = TokioIo::new(ClockedIo::new(stream, clock.clone()));
    let requests = shared.clone();
    // Each stream's future boxed once here: hyper wraps it, moves it, and the
    // executor moves it into its task; unboxed, all ~5 KB of it was copied
    // about seven times per stream (callgrind: 3,500 of 61,000 instructions).
    // Streams wait on the server's one token, shared through an `Arc` (cloning the token
    // takes its lock); a child token per connection would cost every idle connection its node.
    let cut = Arc::new(stop.cut.clone());
    let service = service_fn(move |req| {
        Box::pin(crate::http2::handle(requests.state.load_full(), context.clone(), req, cut.clone()))
    });
    let builder = http2_server(tls.max_streams, &limits);
    // Boxed: hyper's HTTP/2 connection is most of this future's size (5.8 of
    // 8.6 KB), which every TLS connection's task would otherwise carry, its
    // HTTP/1.1 ones included, for their whole life.
    Box::pin(drive(builder.serve_connection(io, service), &clock, &limits, stop, peer)).await;
}

/// hyper's HTTP/2 server as hookgate sets it up: `max_streams` streams at
/// once, header lists up to `max_header_bytes`, and the rapid-reset limits
/// (CVE-2023-44487) on streams reset before being served (those reset after,
/// the connection's clock counts: `connection::SERVED_RESET_BURST`).
fn http2_server(max_streams: u32, limits: &Limits) -> http2::Builder<FreshExecutor> {
    let mut builder = http2::Builder::new(FreshExecutor);
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(max_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(Some(256));
    builder
}

/// Ready once the client has reset streams hookgate had begun to answer
/// faster than the clock's limit. hyper caps resets of streams not yet served
/// (20); a stream reset while its upstream works costs an upstream request
/// and the upstream connection, so without a cap of its own one connection
/// could make thousands a second (rapid reset, CVE-2023-44487). A browser
/// resets a few streams when a page is left mid-load; a closed connection
/// costs it one reconnect.
fn over_reset_limit(clock: &ConnClock) -> std::task::Poll<()> {
    match clock.resets_exceeded() {
        true => std::task::Poll::Ready(()),
        false => std::task::Poll::Pending,
    }
}

/// How long a connection closed for its resets, or idle, has to write its GOAWAY.
const GOAWAY_FLUSH: std::time::Duration = std::time::Duration::from_millis(50);

/// Closes a connection whose client reset too many streams: closed, not
/// drained, since hyper's graceful GOAWAY takes effect only once the client
/// answers its PING, and until then every new stream is served (a probe's
/// client that never did sent 394 of 400 streams upstream).
async fn close_for_resets<C: Graceful>(mut conn: Pin<&mut C>, clock: &ConnClock, peer: SocketAddr) {
    tracing::warn!(
        client = %peer,
        "client reset HTTP/2 streams before their answers too fast (more than {SERVED_RESET_BURST} at once, \
         or {SERVED_RESETS_PER_SECOND} a second after that); closing the connection (GOAWAY)"
    );
    clock.set_abort(AbortReason::ClientClosed);
    conn.as_mut().start_shutdown();
    let _ = tokio::time::timeout(GOAWAY_FLUSH, conn).await;
}

/// A hyper connection that can be asked to finish gracefully.
trait Graceful: Future<Output = Result<(), hyper::Error>> {
    fn start_shutdown(self: Pin<&mut Self>);
}

impl<I, S> Graceful for http2::Connection<I, S, FreshExecutor>
where
    S: HttpService<Incoming, ResBody = ResponseBody>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
    I: Read + Write + Unpin,
{
    fn start_shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Polls `conn` to the end while enforcing the head, idle and send timers and
/// the drain. Before it gives up on a connection it records why on the clock,
/// so responses still being written are logged as cut, not as delivered.
async fn drive<C: Graceful>(conn: C, clock: &ConnClock, limits: &Limits, stop: &Shutdown, peer: SocketAddr) {
    tokio::pin!(conn);
    let mut draining = false;
    // One timer and one wait for each signal for the connection's life: made
    // per wake-up, each cost a registration (and the timer a move when a
    // check falls due sooner).
    let check = tokio::time::sleep_until(clock.next_check(limits));
    let (drain, cut) = (pin!(stop.drain.cancelled()), pin!(stop.cut.cancelled()));
    let (mut drain, mut cut) = (Watch::new(&stop.drain, drain), Watch::new(&stop.cut, cut));
    tokio::pin!(check);
    loop {
        let check_at = clock.next_check(limits);
        if check_at < check.deadline() {
            check.as_mut().reset(check_at);
        }
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    clock.set_abort(AbortReason::ClientClosed);
                    tracing::debug!(client = %peer, "connection ended: {e}");
                }
                return;
            }
            () = &mut drain, if !draining => {
                draining = true;
                conn.as_mut().start_shutdown();
            }
            // Looked at on every wake-up (the resets arrive as frames, which wake this task).
            () = std::future::poll_fn(|_| over_reset_limit(clock)) => return close_for_resets(conn, clock, peer).await,
            () = &mut cut => {
                clock.set_abort(AbortReason::Shutdown);
                // Streams still waiting for their upstream answer 503 (`http2::handle`): a moment to send them.
                let _ = tokio::time::timeout(LAST_ANSWER, conn.as_mut()).await;
                return;
            }
            () = check.as_mut() => {
                check.as_mut().reset(clock.next_check(limits));
                match clock.expired(limits) {
                    Some(Expired::Head) => {
                        tracing::warn!(client = %peer, status = 408, "request head not complete within header_timeout; closing");
                        return;
                    }
                    Some(Expired::Send) => {
                        clock.set_abort(AbortReason::ClientTimeout);
                        tracing::warn!(client = %peer, "client read nothing for send_timeout ({:?}); closing", limits.send_timeout);
                        return;
                    }
                    Some(Expired::Idle) => {
                        // A GOAWAY first (RFC 9113 §6.8): a client about to send
                        // a request learns that it would not have been taken.
                        conn.as_mut().start_shutdown();
                        let _ = tokio::time::timeout(GOAWAY_FLUSH, conn).await;
                        return;
                    }
                    None => {}
                }
            }
        }
    }
}

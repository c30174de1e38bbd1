//! The engine's body framing tested in process, both directions, over
//! scripted I/O: a request body from the client to the upstream
//! (`request_body`: `request_body::pump`) and a response body from the
//! upstream to the client (`response_body` for the framing rules,
//! `response_faults` for what goes wrong, both through `relay`:
//! `response_body::copy_response` with the head `wire` writes for it), one
//! case for each rule README's "Forwarding" section and its status-code table
//! state for bodies.
//!
//! The client is scripted: `tokio_test`'s mock where it matters where each
//! read ends (a size line split between two reads), an in-memory duplex where
//! the test reads back every byte hookgate wrote. `copy_response` reads a
//! `TcpStream`, so its upstream is a loopback socket pair made inside the
//! test. Timeouts run on a paused clock: nothing here sleeps. Not here: head
//! parsing (`head/tests.rs`) and the chunked decoder on its own
//! (`chunked.rs`); these test what the engine does around them.

mod relay;
mod request_body;
mod response_body;
mod response_faults;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use http::{HeaderMap, Method, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_test::io::Mock;

use super::client::Client;
use super::io::Io;
use crate::access::{Delivery, LineText, RequestContext};
use crate::config::Limits;
use crate::connection::{ConnClock, ConnContext, ListenerKind};
use crate::metrics::{Metrics, RouteMetrics};

/// The scripted client of the request tests.
impl Io for Mock {
    async fn wait_for_request(&mut self, rbuf: &mut BytesMut) -> io::Result<()> {
        read_some(self, rbuf).await
    }

    async fn gone(&mut self, rbuf: &mut BytesMut) {
        if read_some(self, rbuf).await.is_ok() {
            std::future::pending().await
        }
    }
}

/// The client of the response tests, whose other end the test reads.
impl Io for DuplexStream {
    async fn wait_for_request(&mut self, rbuf: &mut BytesMut) -> io::Result<()> {
        read_some(self, rbuf).await
    }

    async fn gone(&mut self, rbuf: &mut BytesMut) {
        if read_some(self, rbuf).await.is_ok() {
            std::future::pending().await
        }
    }
}

/// As for TLS, which cannot be peeked either: reads, keeping what arrives.
async fn read_some<S: AsyncRead + Unpin>(io: &mut S, rbuf: &mut BytesMut) -> io::Result<()> {
    match io.read_buf(rbuf).await? {
        0 => Err(io::ErrorKind::UnexpectedEof.into()),
        _ => Ok(()),
    }
}

/// A client connection over `io`, held to `limits`.
fn client<S: Io>(io: S, limits: Limits) -> Client<S> {
    let peer: SocketAddr = ([192, 0, 2, 7], 40_000).into();
    let conn = ConnContext {
        peer,
        peer_value: ConnContext::peer_value(peer),
        kind: ListenerKind::Plain,
        clock: Arc::new(ConnClock::new()),
        _slot: Arc::new(Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap()),
        metrics: Arc::new(Metrics::disabled()),
    };
    Client::new(io, Arc::new(conn), Arc::new(limits))
}

/// The response to a GET on `client`'s connection, answered `status`, as
/// `exchange::Answering::deliver` starts it.
fn delivery<S: Io>(client: &Client<S>, status: StatusCode) -> Arc<Delivery> {
    delivery_counted_in(client, status, Arc::new(Metrics::disabled().route("hook", "app")))
}

/// The same, counted in the route metrics `metrics` (the status page's problems are read there).
fn delivery_counted_in<S: Io>(client: &Client<S>, status: StatusCode, metrics: Arc<RouteMetrics>) -> Arc<Delivery> {
    let ctx = RequestContext::new(
        &Default::default(),
        &client.conn,
        &Method::GET,
        &HeaderMap::new(),
        LineText::Static("/hook"),
    );
    Delivery::new(ctx, status, std::time::Instant::now(), client.conn.clock.request_started(), metrics)
}

/// Both ends of a loopback connection: hookgate's, and the peer's.
async fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (ours, theirs) = tokio::join!(TcpStream::connect(listener.local_addr().unwrap()), listener.accept());
    (ours.unwrap(), theirs.unwrap().0)
}

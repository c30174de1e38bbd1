//! A whole client connection: the real server (engine, proxy, routes,
//! upstream pool) on loopback in this process, in front of a fake upstream.
//! The input is what one client sends; it then half-closes. Invariants: no
//! panic anywhere (a panic in any task aborts the process), the connection
//! ends within the timeouts, and every byte hookgate sends back is a
//! sequence of well-formed responses.
#![no_main]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hookgate::Config;
use hookgate::internals::parse_response;
use hookgate::Metrics;
use hookgate::State;
use hookgate::{ListenerKind, Server};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The fake upstream: answers each request head with a small response and
/// closes after a few (so both pooled and fresh connections are exercised).
async fn upstream(listener: tokio::net::TcpListener) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            for _ in 0..3 {
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                buf.clear();
                let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                if stream.write_all(answer).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn daemon() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        std::panic::set_hook(Box::new(|info| {
            eprintln!("{info}");
            std::process::abort();
        }));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let up_addr = up.local_addr().unwrap();
                tokio::spawn(upstream(up));
                let text = format!(
                    "[listen]\naddrs = []\n[limits]\nheader_timeout = \"500ms\"\nbody_timeout = \"500ms\"\n\
                     [runtime]\nworkers = 1\n[upstreams.app]\nurl = \"http://{up_addr}\"\nresponse_timeout = \"1s\"\n\
                     [[routes]]\nname = \"hook\"\npath = \"/hook\"\nmethods = [\"POST\"]\nupstream = \"app\"\nmax_body = \"1KiB\"\n\
                     [[routes]]\nname = \"deny\"\npath_prefix = \"/admin\"\nrespond = {{ status = 403, body = \"no\\n\" }}\n\
                     [default]\nupstream = \"app\"\n"
                );
                let config = Config::from_toml_str(&text, "fuzz.toml").unwrap();
                let metrics = Arc::new(Metrics::disabled());
                let mut server = Server::new(State::new(config, &metrics, None, None), metrics).unwrap();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                server.serve(ListenerKind::Plain, listener, addr, false);
                tx.send(addr).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv().unwrap()
    })
}

/// Every response in `out`, in order; panics on bytes that are not one.
fn check_responses(out: &[u8]) {
    let mut rest = out;
    while !rest.is_empty() {
        let head = match parse_response(rest, false, 65536) {
            Ok(Some(head)) => head,
            other => panic!("not a response ({other:?}): {:?}", String::from_utf8_lossy(rest)),
        };
        assert!((100..600).contains(&head.status));
        let body = &rest[head.len..];
        let length = match head.framing {
            hookgate::internals::Framing::Length(n) => usize::try_from(n).unwrap(),
            hookgate::internals::Framing::Empty => 0,
            // Chunked or close-delimited: the fake upstream sends neither, and
            // hookgate's own answers have a length, so this is the last one.
            _ => return,
        };
        assert!(body.len() >= length, "a response cut short: {:?}", String::from_utf8_lossy(rest));
        rest = &body[length..];
    }
}

fuzz_target!(|data: &[u8]| {
    let addr = daemon();
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = client.write_all(data);
    let _ = client.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    match client.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the connection did not end within the timeouts: {e}"),
    }
    check_responses(&out);
});

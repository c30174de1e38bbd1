//! See routing work in one command: `cargo run --example demo`.
//!
//! Starts two toy upstreams ("frontend" and "backend") and hookgate with the
//! XBoard-style rules, all on 127.0.0.1 with ports the OS picks, sends a few
//! requests through hookgate, prints who answered each one, and shuts down.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use hookgate::Config;
use hookgate::Metrics;
use hookgate::{State, serve};

/// A toy upstream that answers every request with its own name.
async fn toy_upstream(name: &'static str) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| async move {
                let text = format!("{name} got {} {}", req.method(), req.uri());
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    Ok(addr)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let frontend = toy_upstream("frontend").await?;
    let backend = toy_upstream("backend").await?;
    let config = Config::from_toml_str(
        &format!(
            r#"
[upstreams.frontend]
url = "http://{frontend}"
[upstreams.backend]
url = "http://{backend}"

[[routes]]
name = "telegram-webhook"
path = "/api/v1/guest/telegram/webhook"
methods = ["POST"]
upstream = "backend"

[[routes]]
name = "payment-notify"
path_prefix = "/api/v1/guest/payment/notify"
upstream = "backend"

[[routes]]
name = "block-admin"
path_prefix = "/admin"
respond = {{ status = 403, body = "forbidden by hookgate" }}

[default]
upstream = "frontend"
"#
        ),
        "demo.toml",
    )?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let hookgate = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = State::new(config, &Metrics::disabled(), None, None);
    let daemon = tokio::spawn(serve(vec![listener], state, async {
        let _ = stopped.await;
    }));
    println!("hookgate on {hookgate}, frontend on {frontend}, backend on {backend}\n");

    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    for (method, path) in [
        ("POST", "/api/v1/guest/telegram/webhook?access_token=abc"),
        ("GET", "/api/v1/guest/telegram/webhook"),
        ("GET", "/api/v1/guest/payment/notify/epay/42"),
        ("GET", "/admin/settings"),
        ("GET", "/%61dmin"),
        ("GET", "/a/../admin"),
        ("GET", "/user/dashboard"),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(format!("http://{hookgate}{path}"))
            .header("host", "www.example.com")
            .body(Empty::new())?;
        let response = client.request(req).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        println!("{method:<4} {path:<50} -> {status} {}", String::from_utf8_lossy(&body).trim());
    }
    let _ = stop.send(());
    daemon.await??;
    Ok(())
}

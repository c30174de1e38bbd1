//! Replays answered once (issue 31): `dedupe` keys read from the body, the
//! query and the headers, the first answer given whole to every repeat, over
//! HTTP/1.1 and HTTP/2, and what a full table gives up. The backend is
//! `common::Upstream`'s `/reply`, which answers what each request's
//! `x-reply-*` headers ask for: every repeat here asks for another answer, so
//! one that reached the backend would show it (and be counted in `seen`).

use crate::common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

use common::tls_client::{Pki, client, connect};
use common::{Daemon, RawResponse, Upstream};

/// A config with `backend` and `routes`; anything else is 404.
fn config(backend: &Upstream, routes: &str) -> String {
    format!("[upstreams.backend]\nurl = \"{}\"\n{routes}[default]\nrespond = {{ status = 404 }}\n", backend.url())
}

/// A route named `name` on `path_prefix` with `dedupe = { key, ... }`.
fn route(name: &str, prefix: &str, dedupe: &str) -> String {
    format!(
        "[[routes]]\nname = \"{name}\"\npath_prefix = \"{prefix}\"\nupstream = \"backend\"\ndedupe = {{ {dedupe} }}\n"
    )
}

/// A request with `headers` (lines without their CRLF) and `body`.
fn request(method: &str, target: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: h\r\n");
    for header in headers {
        out.push_str(header);
        out.push_str("\r\n");
    }
    if !body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// Sends `request` on a keep-alive `stream` and reads the answer.
fn send(stream: &mut TcpStream, request: &[u8]) -> RawResponse {
    stream.write_all(request).unwrap();
    common::read_response(stream).unwrap()
}

fn open(daemon: &Daemon) -> TcpStream {
    let stream = TcpStream::connect(daemon.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
}

const EPAY: &str = "key = \"form:out_trade_no\", window = \"10m\"";
const HTML: &str = "X-Reply-Type: text/html; charset=UTF-8";
const FORM: &str = "Content-Type: application/x-www-form-urlencoded";

/// An EPay notify's parameters for trade `trade` (what its gateway posts, or puts in the query).
fn epay(trade: &str) -> String {
    format!(
        "money=1.00&name=VIP&out_trade_no={trade}&pid=1001&trade_no=T{trade}&trade_status=TRADE_SUCCESS&type=alipay&sign=0f3c&sign_type=MD5"
    )
}

/// The suppressed-repeat counter of `route`, from the admin endpoint.
fn suppressed(daemon: &Daemon, route: &str) -> u64 {
    let metrics = common::get(daemon.admin.unwrap(), "localhost", "/metrics").body_text();
    let name = format!("hookgate_dedupe_suppressed_total{{route=\"{route}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(&name)).map_or(0, |n| n.parse().unwrap())
}

/// The key is the trade the backend reads (a hostile probe made a notify
/// for B take A's key, and A's real notify was answered `success` here and
/// lost): `out.trade.no` is `out_trade_no` to PHP, so a body naming both is
/// a field given twice, with no key; a JSON body wins over the query, as in
/// Laravel's `input()`.
#[tokio::test(flavor = "multi_thread")]
async fn a_notify_cannot_take_another_trades_key_by_spelling_its_own() {
    let backend = Upstream::start("backend").await;
    let daemon = Daemon::start(&config(&backend, &route("payment-notify", "/reply/notify", EPAY)));
    let mut stream = open(&daemon);
    let notify =
        |target: &str, headers: &[&str], body: &str| send(&mut open(&daemon), &request("POST", target, headers, body));
    let crafted = format!("out_trade_no=A-1&{}", epay("B-1").replace("out_trade_no=", "out.trade.no="));
    assert_eq!(notify("/reply/notify/EPay/u", &[FORM, "X-Reply-Body: ok B"], &crafted).body_text(), "ok B");
    assert_eq!(notify("/reply/notify/EPay/u", &[FORM, "X-Reply-Body: ok A"], &epay("A-1")).body_text(), "ok A");

    let json = ["Content-Type: application/json", "X-Reply-Body: ok B2"];
    let crafted = notify("/reply/notify/EPay/u?out_trade_no=A-2", &json, r#"{"out_trade_no":"B-2"}"#);
    assert_eq!(crafted.body_text(), "ok B2");
    let real_a = request("POST", "/reply/notify/EPay/u", &[FORM, "X-Reply-Body: ok A2"], &epay("A-2"));
    assert_eq!(send(&mut stream, &real_a).body_text(), "ok A2", "A's notify reached the backend");
    let real_b = request("POST", "/reply/notify/EPay/u", &[FORM, "X-Reply-Body: not this"], &epay("B-2"));
    assert_eq!(send(&mut stream, &real_b).body_text(), "ok B2", "B's repeat is answered here");
    assert_eq!(backend.seen().len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_epay_notify_gets_the_first_success_by_post_and_by_get_and_never_reaches_the_backend() {
    let backend = Upstream::start("backend").await;
    let routes = route("payment-notify", "/reply/notify", EPAY);
    let daemon = Daemon::start(&format!("[admin]\naddr = \"127.0.0.1:0\"\n{}", config(&backend, &routes)));
    let mut stream = open(&daemon);
    let notify = |reply: &str| request("POST", "/reply/notify/EPay/u-1", &[FORM, HTML, reply], &epay("202612061"));

    let first = send(&mut stream, &notify("X-Reply-Body: success"));
    assert_eq!((first.status, first.body_text().as_str()), (200, "success"));
    let again = send(&mut stream, &notify("X-Reply-Body: not this"));
    assert_eq!((again.status, again.body_text().as_str()), (200, "success"), "the gateway reads its success again");
    assert_eq!(again.header("content-type").as_deref(), Some("text/html; charset=UTF-8"));
    assert_eq!(backend.seen().len(), 1, "the repeat never reaches the backend");
    let line = daemon.wait_for_log("repeat answered with the first answer", Duration::from_secs(2));
    assert!(line.contains("key=202612061") && line.contains("route=payment-notify"), "{line}");

    // EPay-style gateways often notify by GET: the key is in the query.
    let get = |trade: &str, reply: &str| {
        let target = format!("/reply/notify/EPay/u-1?{}", epay(trade));
        request("GET", &target, &[HTML, reply], "")
    };
    assert_eq!(send(&mut stream, &get("202612062", "X-Reply-Body: success")).body_text(), "success");
    let again = send(&mut stream, &get("202612062", "X-Reply-Body: not this"));
    assert_eq!((again.status, again.body_text().as_str()), (200, "success"));
    assert_eq!(backend.seen().len(), 2);
    // The same trade by GET after a POST is the same notify.
    assert_eq!(send(&mut stream, &get("202612061", "X-Reply-Body: not this")).body_text(), "success");
    assert_eq!(backend.seen().len(), 2);

    // A failed answer is not remembered: the gateway's retry goes through, and its success is.
    let failed = send(&mut stream, &get("202612063", "X-Reply-Status: 500\r\nX-Reply-Body: fail"));
    assert_eq!(failed.status, 500);
    let retried = send(&mut stream, &get("202612063", "X-Reply-Body: success"));
    assert_eq!((retried.status, retried.body_text().as_str()), (200, "success"));
    assert_eq!(send(&mut stream, &get("202612063", "X-Reply-Body: not this")).body_text(), "success");
    assert_eq!(backend.seen().len(), 4);

    // A repeat answered here, pipelined with the next request: its body is not read as a request.
    let mut both = notify("X-Reply-Body: not this");
    both.extend(get("202612064", "X-Reply-Body: pipelined"));
    stream.write_all(&both).unwrap();
    assert_eq!(common::read_response(&mut stream).unwrap().body_text(), "success");
    assert_eq!(common::read_response(&mut stream).unwrap().body_text(), "pipelined");
    assert_eq!(backend.seen().len(), 5);

    // Without the key (another gateway's JSON), every notify is forwarded.
    for _ in 0..2 {
        let json =
            request("POST", "/reply/notify/BTCPay/u-2", &["Content-Type: application/json"], r#"{"invoiceId":"i"}"#);
        assert_eq!(send(&mut stream, &json).status, 200);
    }
    assert_eq!(backend.seen().len(), 7);
    assert_eq!(suppressed(&daemon, "payment-notify"), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_stripe_event_is_answered_by_its_json_id() {
    let backend = Upstream::start("backend").await;
    let daemon = Daemon::start(&config(&backend, &route("stripe", "/reply/stripe", "key = \"json:/id\"")));
    let mut stream = open(&daemon);
    let event = |id: &str| {
        format!(
            r#"{{"id":"{id}","object":"event","type":"checkout.session.completed","data":{{"object":{{"id":"cs_1","amount_total":1200}}}}}}"#
        )
    };
    let json = "Content-Type: application/json";
    let post = |id: &str, reply: &str| {
        request("POST", "/reply/stripe", &[json, "X-Reply-Type: application/json", reply], &event(id))
    };
    let first = send(&mut stream, &post("evt_1NqG", r#"X-Reply-Body: {"received":true}"#));
    assert_eq!((first.status, first.body_text().as_str()), (200, r#"{"received":true}"#));
    let again = send(&mut stream, &post("evt_1NqG", r#"X-Reply-Body: {"received":"again"}"#));
    assert_eq!((again.status, again.body_text().as_str()), (200, r#"{"received":true}"#));
    assert_eq!(again.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(backend.seen().len(), 1);
    assert_eq!(backend.seen()[0].body, event("evt_1NqG").as_bytes(), "the body reaches the backend unchanged");

    let other = send(&mut stream, &post("evt_2", r#"X-Reply-Body: {"received":2}"#));
    assert_eq!(other.body_text(), r#"{"received":2}"#, "another event is another key");
    for body in [r#"{"object":"event"}"#, r#"{"id":{"nested":1}}"#, "not json"] {
        send(&mut stream, &request("POST", "/reply/stripe", &[json], body));
        send(&mut stream, &request("POST", "/reply/stripe", &[json], body));
    }
    assert_eq!(backend.seen().len(), 8, "bodies without a string or number at /id always pass");
}

#[tokio::test(flavor = "multi_thread")]
async fn query_and_header_keys_and_requests_without_one() {
    let backend = Upstream::start("backend").await;
    let routes = format!(
        "{}{}",
        route("by-query", "/reply/q", "key = \"query:id\""),
        route("by-header", "/reply/h", "key = \"header:Idempotency-Key\"")
    );
    let daemon = Daemon::start(&config(&backend, &routes));
    let mut stream = open(&daemon);
    let body = |r: RawResponse| r.body_text();

    assert_eq!(body(send(&mut stream, &request("GET", "/reply/q?id=7", &["X-Reply-Body: one"], ""))), "one");
    assert_eq!(body(send(&mut stream, &request("GET", "/reply/q?id=7", &["X-Reply-Body: two"], ""))), "one");
    assert_eq!(body(send(&mut stream, &request("POST", "/reply/q?x=1&id=7", &["X-Reply-Body: two"], "id=8"))), "one");
    assert_eq!(backend.seen().len(), 1);
    for _ in 0..2 {
        send(&mut stream, &request("GET", "/reply/q?id=7&id=7", &[], ""));
        send(&mut stream, &request("GET", "/reply/q?other=7", &[], ""));
        // HEAD is never deduplicated: its answer has no body to remember.
        let head = request("HEAD", "/reply/q?id=9", &[], "");
        stream.write_all(&head).unwrap();
        assert_eq!(common::read_head(&mut stream).unwrap().status, 200);
    }
    assert_eq!(backend.seen().len(), 7, "a repeated field, no field and HEAD are forwarded every time");

    let keyed = |reply: &str| request("POST", "/reply/h", &["Idempotency-Key: k-1", reply], "{}");
    assert_eq!(body(send(&mut stream, &keyed("X-Reply-Body: first"))), "first");
    assert_eq!(body(send(&mut stream, &keyed("X-Reply-Body: second"))), "first");
    assert_eq!(backend.seen().len(), 8);
    let twice = request("POST", "/reply/h", &["Idempotency-Key: k-2", "Idempotency-Key: k-2"], "{}");
    send(&mut stream, &twice);
    send(&mut stream, &twice);
    send(&mut stream, &request("POST", "/reply/h", &[], "{}"));
    assert_eq!(backend.seen().len(), 11, "a repeated header, or none, is no key");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_answers_of_at_most_4_kib_are_remembered() {
    let backend = Upstream::start("backend").await;
    let daemon = Daemon::start(&config(&backend, &route("q", "/reply/q", "key = \"query:id\"")));
    let mut stream = open(&daemon);
    for (id, reply, remembered) in [
        ("1", "X-Reply-Bytes: 4096", true),
        ("2", "X-Reply-Bytes: 4097", false),
        ("3", "X-Reply-Bytes: 4096\r\nX-Reply-Chunked: 1", true),
        ("4", "X-Reply-Bytes: 5000\r\nX-Reply-Chunked: 1", false),
        ("5", "X-Reply-Bytes: 300000", false),
        ("6", "X-Reply-Status: 204", true),
    ] {
        let get = request("GET", &format!("/reply/q?id={id}"), &[reply], "");
        let first = send(&mut stream, &get);
        let before = backend.seen().len();
        let again = send(&mut stream, &get);
        assert_eq!((again.status, again.body.len()), (first.status, first.body.len()), "id {id}");
        assert_eq!(backend.seen().len() == before, remembered, "id {id}: {reply}");
    }
}

/// A redelivered update gets the first answer's Bot API call, which Telegram
/// performs from a webhook's answer (and never got, when the first answer was lost).
#[tokio::test(flavor = "multi_thread")]
async fn a_telegram_redelivery_carries_the_bot_api_call_of_the_first_answer() {
    let backend = Upstream::start("backend").await;
    let routes = "[[routes]]\nname = \"telegram-webhook\"\npath = \"/reply/telegram\"\nmethods = [\"POST\"]\n\
                  upstream = \"backend\"\ndedupe = { key = \"telegram_update_id\" }\n";
    let daemon = Daemon::start(&config(&backend, routes));
    let mut stream = open(&daemon);
    let call = r#"{"method":"sendMessage","chat_id":42,"text":"paid"}"#;
    let update = r#"{"update_id":815,"message":{"message_id":3,"chat":{"id":42},"text":"/status"}}"#;
    let json = ["Content-Type: application/json", "X-Reply-Type: application/json"];
    let first = send(
        &mut stream,
        &request("POST", "/reply/telegram", &[json[0], json[1], &format!("X-Reply-Body: {call}")], update),
    );
    assert_eq!(first.body_text(), call);
    let redelivery = send(&mut stream, &request("POST", "/reply/telegram", &json, update));
    assert_eq!((redelivery.status, redelivery.body_text().as_str()), (200, call));
    assert_eq!(redelivery.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(backend.seen().len(), 1);
    let line = daemon.wait_for_log("redelivered update answered without forwarding it again", Duration::from_secs(2));
    assert!(line.contains("update_id=815"), "{line}");
}

/// A repeat that arrives while the first request is with the backend waits
/// for its whole answer and gets it; the backend sees one request.
#[tokio::test(flavor = "multi_thread")]
async fn a_repeat_in_flight_waits_for_the_first_answer() {
    let backend = Upstream::start("backend").await;
    let daemon = Daemon::start(&config(&backend, &route("payment-notify", "/reply/notify", EPAY)));
    let addr = daemon.addr;
    let notify = move |reply: &'static str| {
        std::thread::spawn(move || {
            let body = epay("777");
            common::raw(addr, &request("POST", "/reply/notify/EPay/u", &[FORM, reply], &body))
        })
    };
    let first = notify("X-Reply-Delay-Ms: 600\r\nX-Reply-Body: success");
    std::thread::sleep(Duration::from_millis(200));
    let repeat = notify("X-Reply-Body: too early");
    let (first, repeat) = (first.join().unwrap(), repeat.join().unwrap());
    assert_eq!(first.body_text(), "success");
    assert_eq!((repeat.status, repeat.body_text().as_str()), (200, "success"));
    assert_eq!(backend.seen().len(), 1);
}

/// The table holds `max_keys` keys: a new key evicts the oldest answer, so
/// the newest are still recognised.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_table_forgets_its_oldest_answer_first() {
    let backend = Upstream::start("backend").await;
    let daemon = Daemon::start(&config(&backend, &route("q", "/reply/q", "key = \"query:id\", max_keys = 2")));
    let mut stream = open(&daemon);
    let get = |id: u32| request("GET", &format!("/reply/q?id={id}"), &[&format!("X-Reply-Body: answer {id}")], "");
    for id in 1..=3 {
        send(&mut stream, &get(id));
    }
    assert_eq!(send(&mut stream, &get(3)).body_text(), "answer 3");
    assert_eq!(backend.seen().len(), 3, "the newest key is remembered");
    send(&mut stream, &get(1));
    assert_eq!(backend.seen().len(), 4, "the oldest was forgotten to make room");
}

/// HTTP/2 clients (hyper's service, which reads a short answer ahead of its
/// head) get the same: the first answer, whole, for every repeat, whichever
/// protocol the repeat comes over; a long answer is not remembered.
#[tokio::test(flavor = "multi_thread")]
async fn http2_clients_get_the_first_answer_too() {
    let pki = Pki::two_sites();
    let backend = Upstream::start("backend").await;
    let notify_route = route("payment-notify", "/reply/notify", EPAY).replace("\"backend\"", "\"app\"");
    let file = common::tls_client::tls_config(&pki, &backend, &notify_route)
        .replace("[listen]\naddrs = []", "[listen]\naddrs = [\"127.0.0.1:0\"]");
    let daemon = Daemon::start(&file);
    let (tls_addr, plain_addr) = (listener(&daemon, "Tls"), listener(&daemon, "Plain"));
    let tls = connect(&client(&pki, &[b"h2"]), tls_addr, "a.test").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut h2, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let mut notify = async |trade: &str, reply: &[(&str, &str)]| {
        let mut request = Request::post("https://a.test/reply/notify/EPay/u")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-reply-type", "text/plain");
        for (name, value) in reply {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(epay(trade)))).unwrap();
        let response = h2.send_request(request).await.unwrap();
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
        let status = response.status().as_u16();
        (status, content_type, response.into_body().collect().await.unwrap().to_bytes())
    };
    let first = notify("h2-1", &[("x-reply-body", "success")]).await;
    assert_eq!(first, (200, Some("text/plain".into()), Bytes::from_static(b"success")));
    assert_eq!(notify("h2-1", &[("x-reply-body", "not this")]).await, first);
    assert_eq!(backend.seen().len(), 1);

    let long = [("x-reply-bytes", "5000")];
    assert_eq!(notify("h2-2", &long).await.2, vec![b'x'; 5000]);
    assert_eq!(notify("h2-2", &long).await.2, vec![b'x'; 5000]);
    assert_eq!(backend.seen().len(), 3, "a 5,000-byte answer is not remembered");
    // Without a length, the part read ahead (past 4 KiB) goes out first, then the rest.
    let chunked = [("x-reply-bytes", "9000"), ("x-reply-chunked", "1")];
    assert_eq!(notify("h2-3", &chunked).await.2, vec![b'x'; 9000]);
    assert_eq!(notify("h2-3", &chunked).await.2, vec![b'x'; 9000]);
    let short_chunked = [("x-reply-body", "chunked success"), ("x-reply-chunked", "1")];
    assert_eq!(notify("h2-4", &short_chunked).await.2, Bytes::from_static(b"chunked success"));
    assert_eq!(notify("h2-4", &[("x-reply-body", "not this")]).await.2, Bytes::from_static(b"chunked success"));
    assert_eq!(backend.seen().len(), 6);

    // Remembered over HTTP/2, repeated over HTTP/1.1 (a plain listener), and the other way round.
    let mut stream = TcpStream::connect(plain_addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let over_http1 = |trade: &str, reply: &str| request("POST", "/reply/notify/EPay/u", &[FORM, reply], &epay(trade));
    assert_eq!(send(&mut stream, &over_http1("h2-1", "X-Reply-Body: not this")).body_text(), "success");
    assert_eq!(send(&mut stream, &over_http1("h1-1", "X-Reply-Body: from http/1.1")).body_text(), "from http/1.1");
    assert_eq!(notify("h1-1", &[("x-reply-body", "not this")]).await.2, Bytes::from_static(b"from http/1.1"));
    assert_eq!(backend.seen().len(), 7);
}

/// The address of `daemon`'s listener of `kind` (`Plain`, `Tls`), from its log.
fn listener(daemon: &Daemon, kind: &str) -> std::net::SocketAddr {
    let kinds = daemon
        .logs()
        .into_iter()
        .filter(|l| l.contains("listening") && !l.contains("admin listening") && !l.contains("no longer listening"));
    let mut pairs = kinds.zip(daemon.listening_addrs());
    pairs.find(|(line, _)| line.contains(kind)).map(|(_, addr)| addr).unwrap()
}

/// The engine's path to https upstreams (hyper's client) captures the answer too.
#[tokio::test(flavor = "multi_thread")]
async fn answers_from_https_upstreams_are_remembered() {
    let pki = Pki::new();
    pki.issue("backend", &["localhost"]);
    let cert = hookgate::internals::load_certificate(&pki.path("backend.pem"), &pki.path("backend.key")).unwrap();
    let backend =
        Upstream::start_tls("backend", hookgate::internals::server_config(&[cert], true, None).unwrap()).await;
    let file = format!(
        "[upstreams.backend]\nurl = \"https://localhost:{}\"\ntls_ca_file = \"{}\"\n{}[default]\nrespond = {{ status = 404 }}\n",
        backend.addr.port(),
        pki.path("ca.pem"),
        route("q", "/reply/q", "key = \"query:id\"")
    );
    let daemon = Daemon::start(&file);
    let mut stream = open(&daemon);
    let get =
        |id: &str, reply: &str| request("GET", &format!("/reply/q?id={id}"), &["X-Reply-Type: text/plain", reply], "");
    assert_eq!(send(&mut stream, &get("1", "X-Reply-Body: first")).body_text(), "first");
    let again = send(&mut stream, &get("1", "X-Reply-Body: second"));
    assert_eq!((again.body_text().as_str(), again.header("content-type").as_deref()), ("first", Some("text/plain")));
    send(&mut stream, &get("2", "X-Reply-Bytes: 6000\r\nX-Reply-Chunked: 1"));
    send(&mut stream, &get("2", "X-Reply-Bytes: 6000\r\nX-Reply-Chunked: 1"));
    assert_eq!(backend.seen().len(), 3, "a long answer is not remembered");
}

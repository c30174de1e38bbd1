//! Two hosts, one Redis (issue 34): `dedupe` and rate limits shared through
//! `[cluster]`. Two daemons (nodes `edge-1` and `edge-2`) share a Debian
//! `redis-server` on a loopback port and one backend, `common::Upstream`'s
//! `/reply`, which answers what each request's `x-reply-*` headers ask: a
//! repeat asks for another answer than its first request, so one that
//! reached the backend would show. Each test is skipped without redis-server.

use crate::common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use common::redis::Redis;
use common::{Daemon, Upstream};

/// A host's config: `[cluster]` on `redis` as `node`, the backend, `routes`.
/// The call deadline is generous (the default is 50 ms): these tests assert
/// sharing, and a busy test machine must not make a host degrade mid-test.
fn config(redis: &Redis, node: &str, backend: &Upstream, routes: &str) -> String {
    format!(
        "[admin]\naddr = \"127.0.0.1:0\"\n[cluster]\nredis = \"{}\"\nnode = \"{node}\"\ncall_timeout = \"1s\"\n\
         [upstreams.backend]\nurl = \"{}\"\n{routes}[default]\nrespond = {{ status = 404 }}\n",
        redis.url,
        backend.url()
    )
}

/// Two hosts sharing `redis`, each with `routes`.
fn two_hosts(redis: &Redis, backend: &Upstream, routes: &str) -> [Daemon; 2] {
    ["edge-1", "edge-2"].map(|node| Daemon::start(&config(redis, node, backend, routes)))
}

/// The sum of `metric`'s series whose labels contain `label` (`""`: all).
fn metric(host: &Daemon, metric: &str, label: &str) -> f64 {
    let text = common::get(host.admin.unwrap(), "localhost", "/metrics").body_text();
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// POSTs `body` to `target` with `headers`, reading the whole answer within `timeout`.
async fn post(
    client: &Client<HttpConnector, Full<Bytes>>,
    target: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    body: String,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let mut request = Request::post(format!("http://{target}{path}")).header("host", "hooks.example");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request.body(Full::new(Bytes::from(body))).unwrap();
    let exchange = async {
        let response = client.request(request).await.map_err(|e| format!("request failed: {e}"))?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| format!("answer cut: {e}"))?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(timeout, exchange).await.unwrap_or_else(|_| Err("no answer in time".to_string()))
}

const TELEGRAM: &str = "[[routes]]\nname = \"telegram-webhook\"\npath_prefix = \"/reply/tg\"\nupstream = \"backend\"\n\
                        dedupe = { key = \"telegram_update_id\", window = \"10m\" }\n";

/// What the backend answers attempt `n` of update `id`: a Bot API call,
/// different for every attempt.
fn bot_call(id: i64, n: u32) -> String {
    format!(r#"{{"method":"sendMessage","chat_id":{id},"text":"attempt {n}"}}"#)
}

/// Telegram's way with one update, spread over two hosts: the first attempt
/// goes to `hosts[id % 2]`; an answer later than `first_timeout` (the
/// backend is slow on it when `slow`) makes it redeliver to the other host.
/// Returns the attempts made and the answer that ended them.
async fn deliver(
    client: Client<HttpConnector, Full<Bytes>>,
    hosts: [SocketAddr; 2],
    id: i64,
    slow: bool,
) -> (u32, String) {
    let update = format!(r#"{{"update_id":{id},"message":{{"chat":{{"id":{id}}},"text":"/start"}}}}"#);
    for attempt in 1..=4u32 {
        let host = hosts[(id as usize + attempt as usize - 1) % 2];
        let mut headers = vec![
            ("content-type", "application/json".to_string()),
            ("x-reply-type", "application/json".to_string()),
            ("x-reply-body", bot_call(id, attempt)),
        ];
        if slow && attempt == 1 {
            headers.push(("x-reply-delay-ms", "900".to_string()));
        }
        let timeout = if attempt == 1 { Duration::from_millis(300) } else { Duration::from_secs(10) };
        if let Ok((200, answer)) = post(&client, host, "/reply/tg", &headers, update.clone(), timeout).await {
            return (attempt, answer);
        }
    }
    panic!("update {id} was never answered");
}

/// The update ids the backend handled, with how often.
fn handled(backend: &Upstream) -> HashMap<i64, usize> {
    let mut counts = HashMap::new();
    for seen in backend.seen() {
        let update: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
        *counts.entry(update["update_id"].as_i64().unwrap()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_update_redelivered_to_the_other_host_is_handled_once_and_gets_the_first_answer() {
    let Some(redis) = Redis::start() else { return };
    let backend = Upstream::start("backend").await;
    let hosts = two_hosts(&redis, &backend, TELEGRAM);
    let addrs = [hosts[0].addr, hosts[1].addr];
    let client = common::webhook_senders::sender_client();
    // Every fourth update is slow: its sender gives up on the first host and
    // redelivers to the other while the first is still in flight there.
    let updates: Vec<_> =
        (0..16i64).map(|id| tokio::spawn(deliver(client.clone(), addrs, 1000 + id, id % 4 == 1))).collect();
    let mut outcomes = Vec::new();
    for update in updates {
        outcomes.push(update.await.unwrap());
    }
    for (i, (attempts, answer)) in outcomes.iter().enumerate() {
        let id = 1000 + i as i64;
        if i % 4 == 1 {
            assert_eq!(*attempts, 2, "update {id} was redelivered once, to the other host");
        }
        assert_eq!(answer, &bot_call(id, 1), "update {id} got its first answer, whichever host answered");
    }
    let counts = handled(&backend);
    assert_eq!(counts.len(), 16, "{counts:?}");
    assert!(counts.values().all(|n| *n == 1), "each update handled once across both hosts: {counts:?}");
    // (On a slow machine a quick update may be redelivered too; it is answered the same way.)
    let redeliveries: u32 = outcomes.iter().map(|(attempts, _)| attempts - 1).sum();
    let suppressed: f64 = hosts.iter().map(|h| metric(h, "hookgate_dedupe_suppressed_total", "")).sum();
    assert_eq!(suppressed, f64::from(redeliveries), "every redelivery was answered by the host it reached");
    let stored = || redis.keys("hookgate:dedupe:telegram-webhook:*").len() == 16;
    assert!(common::eventually(Duration::from_secs(2), stored), "each answer is stored in Redis");

    // An update answered on edge-1, sent again to edge-2 later, is answered there alone.
    let again = [addrs[1], addrs[0]];
    assert_eq!(deliver(client.clone(), again, 1000, false).await, (1, bot_call(1000, 1)));
    assert_eq!(handled(&backend)[&1000], 1);
    hosts[1].wait_for_log("redelivered update answered without forwarding it again", Duration::from_secs(2));
}

/// Requests sent every `every` (or as fast as they are answered, if slower),
/// alternately to each host, for `run`: the host, status and `Retry-After` of each.
fn alternate(hosts: &[Daemon; 2], path: &str, every: Duration, run: Duration) -> Vec<(usize, u16, Option<String>)> {
    let start = Instant::now();
    let mut answers = Vec::new();
    for i in 0usize.. {
        let at = (start + every * i as u32).max(Instant::now());
        if at >= start + run {
            break;
        }
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        let request = format!("GET {path} HTTP/1.1\r\nHost: hooks.example\r\nConnection: close\r\n\r\n");
        let answer = common::raw(hosts[i % 2].addr, request.as_bytes());
        answers.push((i % 2, answer.status, answer.header("retry-after")));
    }
    answers
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_of_10_per_second_holds_for_both_hosts_together() {
    let Some(redis) = Redis::start() else { return };
    let backend = Upstream::start("backend").await;
    let routes = "[[routes]]\nname = \"limited\"\npath_prefix = \"/limited\"\nupstream = \"backend\"\n\
                  rate_limit = { per_second = 10, burst = 2 }\n";
    let hosts = two_hosts(&redis, &backend, routes);
    // 50 requests a second for 3 s, 25 a second to each host: alone, each
    // host would admit 2 + 10 a second (64 in all); shared, the two admit
    // about 2 + 30 together.
    let answers = alternate(&hosts, "/limited", Duration::from_millis(20), Duration::from_secs(3));
    let admitted = answers.iter().filter(|(_, status, _)| *status == 200).count();
    let refused = answers.iter().filter(|(_, status, _)| *status == 429).count();
    assert_eq!(admitted + refused, answers.len(), "every request is admitted or refused: {answers:?}");
    common::say(&format!("{admitted} of {} admitted over 3 s by two hosts sharing 10/s (burst 2)", answers.len()));
    assert!((24..=44).contains(&admitted), "about 10/s in total over 3 s, not 20/s: {admitted} of {}", answers.len());
    for host in 0..2 {
        let here = answers.iter().filter(|(h, status, _)| *h == host && *status == 200).count();
        assert!(here >= 6, "host {host} admitted its share too: {here}");
    }
    assert!(answers.iter().filter(|(_, status, _)| *status == 429).all(|(_, _, retry)| retry.as_deref() == Some("1")));
    let buckets = redis.keys("hookgate:rate:limited:*");
    assert_eq!(buckets, ["hookgate:rate:limited:127.0.0.1"], "one bucket per client address");
    let ttl: i64 = redis.cli(&["PTTL", &buckets[0]]).parse().unwrap();
    assert!((0..=300).contains(&ttl), "an idle bucket expires once it has refilled: PTTL {ttl}");
    let fell_back: f64 = hosts.iter().map(|h| metric(h, "hookgate_cluster_fallbacks_total", "")).sum();
    assert_eq!(fell_back, 0.0, "Redis answered every check");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_stopped_mid_traffic_fails_no_request_and_the_hosts_share_again_once_it_is_back() {
    let Some(mut redis) = Redis::start() else { return };
    let backend = Upstream::start("backend").await;
    let routes = "[[routes]]\nname = \"notify\"\npath_prefix = \"/reply/notify\"\nupstream = \"backend\"\n\
                  dedupe = { key = \"header:x-trade\" }\nrate_limit = { per_second = 1000, burst = 1000 }\n";
    let hosts = two_hosts(&redis, &backend, routes);
    let notify = |host: &Daemon, trade: &str, reply: &str| {
        let request = format!(
            "POST /reply/notify HTTP/1.1\r\nHost: hooks.example\r\nX-Trade: {trade}\r\nX-Reply-Body: {reply}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let answer = common::raw(host.addr, request.as_bytes());
        (answer.status, answer.body_text())
    };
    let redis_up = |host: &Daemon| metric(host, "hookgate_cluster_redis_up", "");

    // A failed answer is not remembered: its claim is released, and the
    // retry on the other host goes through.
    assert_eq!(notify(&hosts[0], "F1", "fail\r\nX-Reply-Status: 500").0, 500);
    let released = || redis.keys("hookgate:dedupe:notify:*").is_empty();
    assert!(common::eventually(Duration::from_secs(2), released), "{:?}", redis.keys("*"));
    assert_eq!(notify(&hosts[1], "F1", "retried"), (200, "retried".to_string()));
    assert_eq!(backend.seen().len(), 2);

    // Traffic on both hosts, each notify new: before, during and after the outage.
    let mut answers = Vec::new();
    let send = |n: usize, answers: &mut Vec<(usize, (u16, String))>| {
        let trade = format!("T{n}");
        answers.push((n, notify(&hosts[n % 2], &trade, &format!("ok {n}"))));
    };
    for n in 0..20 {
        send(n, &mut answers);
    }
    assert!(hosts.iter().all(|h| redis_up(h) == 1.0), "both hosts share through Redis");
    redis.stop();
    for n in 20..80 {
        send(n, &mut answers);
        std::thread::sleep(Duration::from_millis(20));
    }
    for (n, (status, body)) in &answers {
        assert_eq!((*status, body.as_str()), (200, format!("ok {n}").as_str()), "notify {n} answered as without Redis");
    }
    for host in &hosts {
        assert!(common::eventually(Duration::from_secs(3), || redis_up(host) == 0.0), "degraded shows in /metrics");
        assert!(metric(host, "hookgate_cluster_fallbacks_total", "guard=\"dedupe\"") > 0.0);
        assert!(metric(host, "hookgate_cluster_fallbacks_total", "guard=\"rate_limit\"") > 0.0);
    }
    // Degraded, each host still answers its own repeats.
    assert_eq!(notify(&hosts[0], "T40", "again"), (200, "ok 40".to_string()));

    redis.restart();
    for host in &hosts {
        assert!(common::eventually(Duration::from_secs(5), || redis_up(host) == 1.0), "the host rejoins");
    }
    let before = backend.seen().len();
    assert_eq!(notify(&hosts[0], "after", "first"), (200, "first".to_string()));
    assert_eq!(notify(&hosts[1], "after", "second"), (200, "first".to_string()), "a repeat across hosts, once again");
    assert_eq!(backend.seen().len(), before + 1);
    assert_eq!(redis.keys("hookgate:dedupe:notify:*").len(), 1, "{:?}", redis.keys("*"));
}

/// The address of `host`'s listener of `kind` (`Plain`, `Tls`), from its log.
fn listener(host: &Daemon, kind: &str) -> SocketAddr {
    let lines = host.logs().into_iter().filter(|l| l.contains("listening") && !l.contains("admin listening"));
    lines.zip(host.listening_addrs()).find(|(line, _)| line.contains(kind)).map(|(_, addr)| addr).unwrap()
}

/// The HTTP/2 path (hyper's service) shares as the engine's does: what one
/// host answered over HTTP/2 another answers over HTTP/1.1, and back; and
/// both draw on one bucket.
#[tokio::test(flavor = "multi_thread")]
async fn http2_clients_share_the_answers_and_the_bucket_too() {
    use common::tls_client::{Pki, client, connect};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let Some(redis) = Redis::start() else { return };
    let pki = Pki::two_sites();
    let backend = Upstream::start("backend").await;
    let routes = "[[routes]]\nname = \"notify\"\npath_prefix = \"/reply/notify\"\nupstream = \"app\"\n\
                  dedupe = { key = \"header:x-trade\" }\n\
                  [[routes]]\nname = \"limited\"\npath_prefix = \"/limited\"\nupstream = \"app\"\n\
                  rate_limit = { per_second = 0.2, burst = 2, key = \"route\" }\n";
    let hosts = ["edge-1", "edge-2"].map(|node| {
        let cluster =
            format!("[cluster]\nredis = \"{}\"\nnode = \"{node}\"\ncall_timeout = \"1s\"\n[admin]", redis.url);
        let file = common::tls_client::tls_config(&pki, &backend, routes)
            .replace("[listen]\naddrs = []", "[listen]\naddrs = [\"127.0.0.1:0\"]")
            .replace("[admin]", &cluster);
        Daemon::start(&file)
    });
    let tls = connect(&client(&pki, &[b"h2"]), listener(&hosts[0], "Tls"), "a.test").await;
    let (mut h2, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let mut over_h2 = async |path: &str, trade: &str, reply: &str| {
        let request = Request::post(format!("https://a.test{path}"))
            .header("x-trade", trade)
            .header("x-reply-body", reply)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = h2.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned(), retry_after)
    };
    let plain = listener(&hosts[1], "Plain");
    let over_h1 = |path: &str, trade: &str, reply: &str| {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: a.test\r\nX-Trade: {trade}\r\nX-Reply-Body: {reply}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let answer = common::raw(plain, request.as_bytes());
        (answer.status, answer.body_text(), answer.header("retry-after"))
    };

    assert_eq!(over_h2("/reply/notify", "A", "first over h2").await, (200, "first over h2".into(), None));
    assert_eq!(over_h1("/reply/notify", "A", "not this"), (200, "first over h2".into(), None));
    assert_eq!(over_h1("/reply/notify", "B", "first over h1"), (200, "first over h1".into(), None));
    assert_eq!(over_h2("/reply/notify", "B", "not this").await, (200, "first over h1".into(), None));
    assert_eq!(backend.seen().len(), 2, "each notify reached the backend once");

    // A burst of 2 for the cluster, then one request per 5 s: edge-1 takes both.
    assert_eq!(over_h2("/limited", "-", "in").await.0, 200);
    assert_eq!(over_h2("/limited", "-", "in").await.0, 200);
    assert_eq!(over_h1("/limited", "-", "over").0, 429, "edge-2 finds the bucket edge-1 emptied");
    let refused = over_h2("/limited", "-", "over").await;
    assert_eq!((refused.0, refused.2.is_some()), (429, true), "{refused:?}");
    assert_eq!(backend.seen().len(), 4);
}

/// Redis is not trusted: a dedupe key or a bucket holding something hookgate
/// never writes is no answer and no refusal; the request is forwarded.
#[tokio::test(flavor = "multi_thread")]
async fn values_out_of_shape_in_redis_answer_nothing_and_refuse_nothing() {
    let Some(redis) = Redis::start() else { return };
    let backend = Upstream::start("backend").await;
    let routes = "[[routes]]\nname = \"notify\"\npath_prefix = \"/reply/notify\"\nupstream = \"backend\"\n\
                  dedupe = { key = \"header:x-trade\" }\nrate_limit = { per_second = 1, burst = 1, key = \"route\" }\n";
    let host = Daemon::start(&config(&redis, "edge-1", &backend, routes));
    let notify = |trade: &str, reply: &str| {
        let request = format!(
            "POST /reply/notify HTTP/1.1\r\nHost: hooks.example\r\nX-Trade: {trade}\r\nX-Reply-Body: {reply}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let answer = common::raw(host.addr, request.as_bytes());
        (answer.status, answer.body_text())
    };
    let hex = |trade: &str| trade.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    // The bucket (1/s, burst 1) is refilled by hand before each request:
    // whatever it holds, out of shape, counts as empty, never as full.
    let cases = [("T1", "garbage", "x"), ("T2", "a999000x", "1e300"), ("T3", "a200300short", "-5"), ("T4", "", "")];
    for (trade, value, bucket) in cases {
        redis.cli(&["SET", &format!("hookgate:dedupe:notify:{}", hex(trade)), value]);
        redis.cli(&["SET", "hookgate:rate:notify:route", bucket]);
        assert_eq!(notify(trade, "forwarded"), (200, "forwarded".to_string()), "{trade} over {value:?}, {bucket:?}");
    }
    assert_eq!(backend.seen().len(), 4);
    assert_eq!(notify("T5", "over"), (429, "too many requests\n".to_string()), "the bucket is kept in shape again");
    redis.cli(&["DEL", "hookgate:rate:notify:route"]);
    assert_eq!(notify("T2", "again"), (200, "forwarded".to_string()), "answered from this host's own table");
    assert_eq!(backend.seen().len(), 4);
    assert!(host.logs().iter().all(|l| !l.contains("panicked")));
}

//! Store and forward (issue 30), request by request: an update kept behind
//! one forwarded live, queues across a reload, what an answer makes of a
//! kept request, what `fallback` takes over, the two hyper paths (an https
//! upstream, an HTTP/2 client) and what reaches the backend. The senders
//! scored through whole outages are in `spool_outages`.

use crate::common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};

use common::spool_requests::{ACCESS_TOKEN, form, hook, telegram_config, update, update_ids};
use common::tls_client::{Front, Pki, client, connect};
use common::webhook_senders::{Backend, form_field, spool_contents, spool_rows};
use common::{Daemon, eventually, say};

/// A sender that does not wait (Telegram after its 60 s, or a second
/// sender): an update of a chat whose previous update is still being
/// forwarded live is kept behind it, and delivered as soon as that one is answered.
#[tokio::test(flavor = "multi_thread")]
async fn an_update_kept_behind_one_forwarded_live_follows_it_at_once() {
    let backend = Backend::start("").await;
    backend.slow(Duration::from_millis(1500));
    let store = "store = { mode = \"fallback\", order = \"telegram_chat\" }";
    let daemon = Daemon::start(&telegram_config(backend.addr, store).replace("dedupe = ", "# dedupe = "));
    let first = std::thread::spawn({
        let daemon_addr = daemon.addr;
        move || {
            let body = r#"{"update_id":1,"message":{"chat":{"id":9},"text":"first"}}"#;
            let request = format!(
                "POST {}?access_token={ACCESS_TOKEN} HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                common::WEBHOOK_PATH,
                body.len()
            );
            common::raw(daemon_addr, request.as_bytes()).status
        }
    });
    assert!(eventually(Duration::from_secs(5), || update_ids(&backend) == [1]), "the first is being handled");
    backend.slow(Duration::ZERO);
    let behind = update(&daemon, 9, 2);
    assert_eq!((behind.status, behind.body.len()), (200, 0), "kept behind the first and acknowledged");
    assert_eq!(first.join().unwrap(), 200, "the first, answered by the backend");
    let answered = Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || update_ids(&backend) == [1, 2]),
        "the second must follow the first once it is answered: {:?}",
        update_ids(&backend)
    );
    say(&format!("delivered {:.0?} after the first was answered", answered.elapsed()));
}

#[tokio::test(flavor = "multi_thread")]
async fn queues_survive_a_reload_and_a_removed_routes_requests_reach_their_upstream() {
    let backend = Backend::start_down("handled").await;
    let old = Backend::start_down("old handled").await;
    let config = |routes: &str| {
        format!(
            "[listen]\naddrs = [\"127.0.0.1:0\"]\n[spool]\ndir = \"spool\"\n\
             [upstreams.frontend]\nurl = \"http://127.0.0.1:9\"\n\
             [upstreams.backend]\nurl = \"http://{}\"\n[upstreams.old]\nurl = \"http://{}\"\n{routes}\
             [default]\nupstream = \"frontend\"\n",
            backend.addr, old.addr
        )
    };
    let hooks = |mode: &str| {
        format!(
            "[[routes]]\nname = \"hooks\"\npath_prefix = \"/hooks\"\nupstream = \"backend\"\nstore = {{ mode = \"{mode}\" }}\n"
        )
    };
    let legacy = "[[routes]]\nname = \"legacy\"\npath_prefix = \"/legacy\"\nupstream = \"old\"\n\
                  store = { mode = \"always\", order = \"telegram_chat\" }\n";
    let daemon = Daemon::start(&config(&format!("{}{legacy}", hooks("always"))));
    for n in 0..10 {
        let kept = hook(&daemon, "/hooks/a", &format!("h{n}"));
        assert_eq!((kept.status, kept.body.len()), (200, 0), "always: acknowledged by hookgate");
        assert_eq!(hook(&daemon, "/legacy/b", &format!("l{n}")).status, 200);
    }
    // `legacy` is gone, `hooks` passes the upstream's answer through now.
    daemon.rewrite_config(&config(&hooks("journal")));
    daemon.signal("HUP");
    daemon.wait_for_log("reloaded ", Duration::from_secs(5));
    for n in 10..15 {
        let error = hook(&daemon, "/hooks/a", &format!("h{n}"));
        assert_eq!(error.status, 502, "journal: the down backend's error reaches the sender");
    }
    assert!(backend.got().is_empty() && old.got().is_empty());
    backend.up().await;
    old.up().await;
    let live = hook(&daemon, "/hooks/a", "h15");
    assert_eq!((live.status, live.body_text().as_str()), (200, "handled"), "journal: the backend's own answer");
    let all_hooks = |b: &Backend| (0..16).all(|n| b.counts("id").contains_key(&format!("h{n}")));
    assert!(eventually(Duration::from_secs(20), || all_hooks(&backend)), "kept before and after the reload");
    let all_legacy = || (0..10).all(|n| old.counts("id").contains_key(&format!("l{n}")));
    assert!(eventually(Duration::from_secs(20), all_legacy), "a removed route's requests reach their upstream");
    let order: Vec<String> = old.got().iter().filter_map(|g| form_field(&g.body, "id")).collect();
    let expected: Vec<String> = (0..10).map(|n| format!("l{n}")).collect();
    assert_eq!(order, expected, "once each, in the order they came");
    assert!(backend.got().iter().all(|g| !g.body.starts_with(b"id=l")), "delivered to their recorded upstream");
    let spool = daemon.dir().join("spool/spool.sqlite3");
    assert!(eventually(Duration::from_secs(5), || spool_rows(&spool) == 0), "the spool drains");
}

/// No route keeps anything and there is no spool file, so none is opened at
/// start; the reload that adds `store` opens it and starts delivering.
#[tokio::test(flavor = "multi_thread")]
async fn the_reload_that_adds_store_opens_the_spool() {
    let backend = Backend::start_down("handled").await;
    let config = |store: &str| {
        format!(
            "[listen]\naddrs = [\"127.0.0.1:0\"]\n[spool]\ndir = \"spool\"\n[upstreams.backend]\nurl = \"http://{}\"\n\
             [[routes]]\nname = \"hooks\"\npath_prefix = \"/hooks\"\nupstream = \"backend\"\n{store}\n\
             [default]\nupstream = \"backend\"\n",
            backend.addr
        )
    };
    let daemon = Daemon::start(&config(""));
    assert_eq!(hook(&daemon, "/hooks/a", "before").status, 502, "no store yet");
    assert!(!daemon.dir().join("spool").exists(), "no spool is made for a config that keeps nothing");
    daemon.rewrite_config(&config("store = { mode = \"always\" }"));
    daemon.signal("HUP");
    daemon.wait_for_log("reloaded ", Duration::from_secs(5));
    daemon.wait_for_log("spool open", Duration::from_secs(1));
    let kept = hook(&daemon, "/hooks/a", "after");
    assert_eq!((kept.status, kept.body.len()), (200, 0), "kept since the reload");
    backend.up().await;
    let delivered = || backend.counts("id").contains_key("after");
    assert!(eventually(Duration::from_secs(10), delivered), "delivered by the deliverer the reload started");
    assert!(!backend.counts("id").contains_key("before"), "the 502 was not kept");
}

/// What the backend's answer makes of a kept request: a final 4xx makes it
/// What the backend's answer makes of a kept request: a final 4xx makes it
/// a dead letter (kept with that answer, attempted once, and not blocking
/// its line), 503 is retried no sooner than its `Retry-After`, and one that
/// reaches `expire` becomes a dead letter too.
#[tokio::test(flavor = "multi_thread")]
async fn answers_decide_between_retry_and_dead_letter() {
    let backend = Backend::start("nope").await;
    let gone = Backend::start_down("").await;
    let config = format!(
        "[spool]\ndir = \"spool\"\n[upstreams.backend]\nurl = \"http://{}\"\n[upstreams.gone]\nurl = \"http://{}\"\n\
         [[routes]]\nname = \"hooks\"\npath_prefix = \"/hooks\"\nupstream = \"backend\"\n\
         store = {{ mode = \"always\", order = \"telegram_chat\" }}\n\
         [[routes]]\nname = \"short\"\npath_prefix = \"/short\"\nupstream = \"gone\"\n\
         store = {{ mode = \"always\", expire = \"2s\" }}\n[default]\nupstream = \"backend\"\n",
        backend.addr, gone.addr
    );
    let daemon = Daemon::start(&config);
    let spool = daemon.dir().join("spool/spool.sqlite3");
    assert_eq!(form(&daemon, "/short", "id=late").status, 200);
    // Not Telegram updates: one line for the route, in order.
    assert_eq!(form(&daemon, "/hooks", "id=final&status=404").status, 200);
    assert_eq!(form(&daemon, "/hooks", "id=next").status, 200);
    let delivered = |id: &str| backend.counts("id").get(id).copied().unwrap_or(0);
    assert!(eventually(Duration::from_secs(5), || delivered("next") == 1), "a dead letter does not block its line");

    backend.answer_status(503, Some(3));
    assert_eq!(form(&daemon, "/hooks", "id=later").status, 200);
    assert!(eventually(Duration::from_secs(10), || delivered("later") == 2), "503 is retried");
    backend.answer_status(200, None);
    let at: Vec<Instant> = backend.got().iter().filter(|g| g.body.starts_with(b"id=later")).map(|g| g.at).collect();
    let waited = at[1] - at[0];
    assert!(waited >= Duration::from_millis(2900), "Retry-After: 3 is honoured: retried after {waited:?}");
    assert!(eventually(Duration::from_secs(10), || delivered("later") == 3), "delivered once answered 200");

    // The delivered one's delete commits a moment after the backend sees it.
    let only_dead = || spool_contents(&spool).iter().map(|k| k.dead as usize).collect::<Vec<_>>() == [1, 1];
    assert!(eventually(Duration::from_secs(10), only_dead), "{:?}", spool_contents(&spool));
    let kept = spool_contents(&spool);
    assert_eq!(kept.len(), 2, "only the dead letters stay: {kept:?}");
    let final_ = kept.iter().find(|k| k.body.starts_with("id=final")).unwrap();
    assert_eq!(
        (final_.attempts, final_.last_status, final_.last_answer.as_str()),
        (1, Some(404), "nope"),
        "{final_:?}"
    );
    assert_eq!(delivered("final"), 1, "a final answer is not retried");
    let late = kept.iter().find(|k| k.body.starts_with("id=late")).unwrap();
    assert_eq!(late.last_error, format!("expired after {} attempts", late.attempts), "{late:?}"); // >= 2, below
    assert!(late.attempts >= 2, "attempted at once and after a second: {late:?}");
    say(&format!("dead letters: {kept:?}"));
}

/// `fallback` takes over what the upstream answers 502, 503 or 504 (a
/// proxy in front of a restarting backend) and a head that does not come
/// within `response_timeout`; other answers, errors included, pass through.
#[tokio::test(flavor = "multi_thread")]
async fn fallback_takes_over_502_503_504_and_a_late_head_and_nothing_else() {
    let backend = Backend::start("from the backend").await;
    let config = format!(
        "[spool]\ndir = \"spool\"\n[upstreams.backend]\nurl = \"http://{}\"\nresponse_timeout = \"1s\"\n\
         [[routes]]\nname = \"hooks\"\npath_prefix = \"/hooks\"\nupstream = \"backend\"\n\
         store = {{ mode = \"fallback\", ack = 202 }}\n[default]\nupstream = \"backend\"\n",
        backend.addr
    );
    let daemon = Daemon::start(&config);
    let spool = daemon.dir().join("spool/spool.sqlite3");
    for status in [502, 503, 504] {
        let kept = form(&daemon, "/hooks", &format!("id=s{status}&status={status}"));
        assert_eq!((kept.status, kept.body.len()), (202, 0), "{status}: kept and acknowledged");
    }
    for status in [500, 404, 429] {
        let passed = form(&daemon, "/hooks", &format!("id=p{status}&status={status}"));
        assert_eq!((passed.status, passed.body_text().as_str()), (status, "from the backend"), "passed through");
    }
    backend.slow(Duration::from_secs(2));
    let late = form(&daemon, "/hooks", "id=late");
    assert_eq!((late.status, late.body.len()), (202, 0), "no head within response_timeout: kept");
    backend.slow(Duration::ZERO);
    // Each kept one is a dead letter or retried as its body asks; `late` is delivered.
    let delivered = || backend.counts("id").get("late").copied().unwrap_or(0) >= 2;
    assert!(eventually(Duration::from_secs(10), delivered), "the late one is delivered");
    // The backend sees the delivery a moment before the spool's delete commits.
    let late_gone = || spool_contents(&spool).iter().all(|k| k.body != "id=late");
    assert!(eventually(Duration::from_secs(10), late_gone), "the delivered one leaves the spool");
    let kept: Vec<String> = spool_contents(&spool).into_iter().map(|k| k.body).collect();
    assert!(kept.iter().all(|b| b.starts_with("id=s5")), "only the taken-over ones are kept: {kept:?}");
    assert_eq!(kept.len(), 3, "{kept:?}");
}

/// A rustls acceptor for `localhost` from `pki`.
fn tls_acceptor(pki: &Pki) -> tokio_rustls::TlsAcceptor {
    pki.issue("backend", &["localhost"]);
    let cert = hookgate::internals::load_certificate(&pki.path("backend.pem"), &pki.path("backend.key")).unwrap();
    tokio_rustls::TlsAcceptor::from(hookgate::internals::server_config(&[cert], false, None).unwrap())
}

/// The engine's hyper path: a `fallback` route to an https upstream.
#[tokio::test(flavor = "multi_thread")]
async fn fallback_keeps_and_delivers_to_an_https_upstream() {
    let pki = Pki::new();
    let backend = Backend::start_tls_down("handled", tls_acceptor(&pki)).await;
    let config = format!(
        "[spool]\ndir = \"spool\"\n[upstreams.backend]\nurl = \"https://localhost:{}\"\ntls_ca_file = \"{}\"\n\
         [[routes]]\nname = \"hooks\"\npath_prefix = \"/hooks\"\nupstream = \"backend\"\n\
         store = {{ mode = \"fallback\", ack = 202 }}\n[default]\nupstream = \"backend\"\n",
        backend.addr.port(),
        pki.path("ca.pem")
    );
    let daemon = Daemon::start(&config);
    for n in 0..5 {
        let kept = hook(&daemon, "/hooks/x", &format!("k{n}"));
        assert_eq!((kept.status, kept.body.len()), (202, 0), "kept: the route's ack");
    }
    let not_kept = common::get(daemon.addr, "h", "/other");
    assert_eq!(not_kept.status, 502, "a route without store answers the error");
    backend.up().await;
    let all = || (0..5).all(|n| backend.counts("id").contains_key(&format!("k{n}")));
    assert!(eventually(Duration::from_secs(15), all), "delivered over TLS once the backend is up");
    let live = hook(&daemon, "/hooks/x", "live");
    assert_eq!((live.status, live.body_text().as_str()), (200, "handled"), "forwarded live when up");
    let seen = backend.got();
    assert!(seen.iter().all(|g| g.headers.get("x-forwarded-for").is_some()), "kept as it would have gone");
    let spool = daemon.dir().join("spool/spool.sqlite3");
    assert!(eventually(Duration::from_secs(5), || spool_rows(&spool) == 0), "the spool drains");
}

/// Sends update `id` of chat `chat` to the webhook; its status and body.
async fn send_update(front: &mut Front, chat: i64, id: i64) -> (u16, Bytes) {
    let update = format!(r#"{{"update_id":{id},"message":{{"chat":{{"id":{chat}}},"text":"hi"}}}}"#);
    let request = Request::post(format!("https://a.test{}", common::WEBHOOK_PATH))
        .header("host", "a.test")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(update)))
        .unwrap();
    front.send(request).await
}

/// Both TLS front ends with dedupe: a kept update is acknowledged, its
/// redelivery gets the same answer and is not kept twice, and the backend
/// handles each update once, in order, when it is back.
#[tokio::test(flavor = "multi_thread")]
async fn a_redelivery_of_a_kept_update_is_not_kept_twice_over_http2_and_http1() {
    let pki = Pki::two_sites();
    let backend = Backend::start_down("").await;
    let app = common::Upstream::start("app").await;
    let store = "dedupe = { key = \"telegram_update_id\" }\n\
                 store = { mode = \"fallback\", order = \"telegram_chat\" }\n\
                 [spool]\ndir = \"spool\"\n";
    let config = common::tls_client::tls_config(&pki, &app, store)
        .replace("upstream = \"app\"\ndedupe", "upstream = \"backend\"\ndedupe")
        .replace(
            "[upstreams.app]",
            &format!("[upstreams.backend]\nurl = \"http://{}\"\n[upstreams.app]", backend.addr),
        );
    let daemon = Daemon::start(&config);
    let spool = daemon.dir().join("spool/spool.sqlite3");
    for (http2, chat) in [(true, 5), (false, 6)] {
        let mut sender = Front::connect(&pki, daemon.addr, http2).await;
        let (first, second) = (chat * 10, chat * 10 + 1);
        let front = if http2 { "HTTP/2" } else { "HTTP/1.1" };
        assert_eq!(send_update(&mut sender, chat, first).await, (200, Bytes::new()), "{front}: kept and acknowledged");
        assert_eq!(
            send_update(&mut sender, chat, first).await,
            (200, Bytes::new()),
            "{front}: the redelivery, the same answer"
        );
        assert_eq!(send_update(&mut sender, chat, second).await, (200, Bytes::new()), "{front}: kept behind the first");
    }
    assert_eq!(spool_rows(&spool), 4, "no redelivery is kept twice");
    backend.up().await;
    assert!(eventually(Duration::from_secs(15), || spool_rows(&spool) == 0), "delivered once the backend is up");
    let mut ids: Vec<i64> = backend
        .got()
        .iter()
        .map(|g| serde_json::from_slice::<serde_json::Value>(&g.body).unwrap()["update_id"].as_i64().unwrap())
        .collect();
    let chat5: Vec<i64> = ids.iter().copied().filter(|id| *id < 60).collect();
    assert_eq!(chat5, [50, 51], "each once, in order");
    ids.sort_unstable();
    assert_eq!(ids, [50, 51, 60, 61], "each once");
    assert!(app.seen().is_empty());
}

/// An HTTP/2 sender resets its stream while its update is being written
/// (the test holds the spool's write lock meanwhile): the update is then
/// kept and delivered like any other, and the chat's line is not blocked:
/// the next update of the chat is delivered too.
#[tokio::test(flavor = "multi_thread")]
async fn a_sender_that_leaves_while_its_update_is_written_blocks_nothing() {
    for store in
        ["{ mode = \"always\", order = \"telegram_chat\" }", "{ mode = \"journal\", order = \"telegram_chat\" }"]
    {
        let pki = Pki::two_sites();
        let backend = Backend::start("").await;
        let app = common::Upstream::start("app").await;
        let store = format!("store = {store}\n[spool]\ndir = \"spool\"\n");
        let config = common::tls_client::tls_config(&pki, &app, &store)
            .replace("upstream = \"app\"\nstore", "upstream = \"backend\"\nstore")
            .replace(
                "[upstreams.app]",
                &format!("[upstreams.backend]\nurl = \"http://{}\"\n[upstreams.app]", backend.addr),
            );
        let daemon = Daemon::start(&config);
        let spool = daemon.dir().join("spool/spool.sqlite3");
        let lock = rusqlite::Connection::open(&spool).unwrap();
        lock.execute_batch("BEGIN IMMEDIATE").unwrap();
        let mut sender = Front::connect(&pki, daemon.addr, true).await;
        let left = tokio::time::timeout(Duration::from_millis(300), send_update(&mut sender, 3, 1)).await;
        assert!(left.is_err(), "{store}: no answer while the spool cannot be written");
        drop(sender); // The stream is reset, the connection closed.
        tokio::time::sleep(Duration::from_millis(200)).await;
        lock.execute_batch("COMMIT").unwrap();
        drop(lock);
        let mut sender = Front::connect(&pki, daemon.addr, true).await;
        assert_eq!(send_update(&mut sender, 3, 2).await.0, 200, "{store}: the next update of the chat");
        let both = || update_ids(&backend).contains(&1) && update_ids(&backend).contains(&2);
        assert!(eventually(Duration::from_secs(5), both), "{store}: delivered: {:?}", update_ids(&backend));
        assert!(eventually(Duration::from_secs(5), || spool_rows(&spool) == 0), "{store}: nothing stays in the spool");
        assert!(app.seen().is_empty());
    }
}

/// What is kept is what would have been forwarded: the same request sent
/// while the backend is up (forwarded live) and while it is down (kept,
/// delivered later) reaches it with the same target, headers and body, over
/// HTTP/1.1 (a chunked binary body, hop-by-hop headers) and over HTTP/2.
#[tokio::test(flavor = "multi_thread")]
async fn a_kept_request_reaches_the_backend_as_a_live_one_does() {
    let pki = Pki::two_sites();
    let backend = Backend::start("").await;
    let app = common::Upstream::start("app").await;
    let store = "store = { mode = \"fallback\" }\n[spool]\ndir = \"spool\"\n";
    let config = common::tls_client::tls_config(&pki, &app, store)
        .replace("upstream = \"app\"\nstore", "upstream = \"backend\"\nstore")
        .replace(
            "[upstreams.app]",
            &format!("[upstreams.backend]\nurl = \"http://{}\"\n[upstreams.app]", backend.addr),
        );
    let daemon = Daemon::start(&config);
    let body: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 256) as u8).collect();
    let path = format!("{}?access_token=t%20k&x=1", common::WEBHOOK_PATH);
    let http1 = |tag: &str| {
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: a.test\r\nX-Tag: {tag}\r\nX-Forwarded-For: 6.6.6.6\r\n\
             Connection: x-hop\r\nX-Hop: dropped\r\nContent-Type: application/octet-stream\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        )
        .into_bytes();
        for chunk in body.chunks(1000) {
            head.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            head.extend_from_slice(chunk);
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"0\r\n\r\n");
        head
    };
    let send_http1 = |tag: &'static str| {
        let (pki_ca, addr, request) = (pki.path("ca.pem"), daemon.addr, http1(tag));
        async move {
            let connector = common::tls_client::trusting(&pki_ca, &[b"http/1.1"]);
            let mut stream = connect(&connector, addr, "a.test").await;
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            stream.write_all(&request).await.unwrap();
            let mut answer = vec![0u8; 12];
            stream.read_exact(&mut answer).await.unwrap();
            String::from_utf8_lossy(&answer[9..12]).into_owned()
        }
    };
    let send_http2 = |tag: &'static str| {
        let (body, path) = (body.clone(), path.clone());
        let (pki, addr) = (&pki, daemon.addr);
        async move {
            let stream = TokioIo::new(connect(&client(pki, &[b"h2"]), addr, "a.test").await);
            let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), stream).await.unwrap();
            tokio::spawn(conn);
            let request = Request::post(format!("https://a.test{path}"))
                .header("x-tag", tag)
                .header("content-type", "application/octet-stream")
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            send.send_request(request).await.unwrap().status().as_u16().to_string()
        }
    };
    assert_eq!(send_http1("h1").await, "200");
    assert_eq!(send_http2("h2").await, "200");
    backend.down();
    assert_eq!(send_http1("h1").await, "200", "kept");
    assert_eq!(send_http2("h2").await, "200", "kept");
    backend.up().await;
    let spool = daemon.dir().join("spool/spool.sqlite3");
    assert!(eventually(Duration::from_secs(10), || backend.got().len() == 4), "delivered");
    let got = backend.got();
    for tag in ["h1", "h2"] {
        let copies: Vec<&common::webhook_senders::Got> =
            got.iter().filter(|g| g.headers.get("x-tag").is_some_and(|v| v == tag)).collect();
        assert_eq!(copies.len(), 2, "{tag}: live and kept");
        let (live, kept) = (copies[0], copies[1]);
        assert_eq!(kept.target, live.target, "{tag}");
        assert!(kept.body == body && live.body == body, "{tag}: the body byte for byte");
        let fields = |g: &common::webhook_senders::Got| {
            let mut fields: Vec<String> =
                g.headers.iter().map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v.as_bytes()))).collect();
            fields.sort();
            fields
        };
        assert_eq!(fields(kept), fields(live), "{tag}: the same head");
        assert!(kept.headers.get("x-hop").is_none() && kept.headers["x-forwarded-for"] == "127.0.0.1", "{tag}");
    }
    assert!(eventually(Duration::from_secs(5), || spool_rows(&spool) == 0));
}

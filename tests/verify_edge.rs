//! Signatures checked at the edge (`verify`, issue 31) over real sockets, on
//! both front ends (HTTP/1.1 through the engine, HTTP/2 through hyper's
//! service): for every scheme a signed request passes byte for byte, and a
//! changed body, a wrong secret, a missing, repeated or malformed signature
//! and a stale timestamp each get 401 and never reach the upstream; `log`
//! forwards and counts; a refused request is neither kept nor claimed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::common::signers::{self, SignedRequest, body, sign, signature_header};
use crate::common::tls_client::{Front, Pki};
use crate::common::webhook_senders::spool_rows;
use crate::common::{self, Daemon, Upstream};

const KEY: &[u8] = b"test-secret-one";
const OTHER_KEY: &[u8] = b"test-secret-two";
const REFUSED: &str = "signature check failed\n";

/// The schemes signed here (alipay_rsa2 is checked with the vectors its PHP made).
const SCHEMES: [&str; 11] = [
    "github",
    "stripe",
    "standard_webhooks",
    "shopify",
    "slack",
    "hmac_sha256",
    "btcpay",
    "coinbase",
    "coinpayments",
    "epay_md5",
    "mgate_md5",
];

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// POSTs `request` to `path`; the status and body.
async fn post(front: &mut Front, path: &str, request: &SignedRequest) -> (u16, String) {
    let query = if request.query.is_empty() { String::new() } else { format!("?{}", request.query) };
    let mut builder = Request::post(format!("https://a.test{path}{query}")).header("host", "a.test");
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let (status, body) = front.send(builder.body(Full::new(Bytes::from(request.body.clone()))).unwrap()).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A route `/hooks/<scheme>` per scheme, each with `mode`, and the TLS listener.
fn config(pki: &Pki, app: &Upstream, mode: &str) -> String {
    let mut routes = String::new();
    for scheme in SCHEMES {
        let extra = match scheme {
            "hmac_sha256" => ", header = \"X-Signature\", encoding = \"base64\", prefix = \"sha256=\"",
            _ => "",
        };
        routes += &format!(
            "[[routes]]\nname = \"{scheme}\"\npath = \"/hooks/{scheme}\"\nmethods = [\"POST\"]\nupstream = \"app\"\n\
             verify = {{ scheme = \"{scheme}\", secret_file = \"{scheme}.key\", mode = \"{mode}\"{extra} }}\n"
        );
    }
    common::tls_client::tls_config(pki, app, &routes)
}

/// Writes each scheme's secret file (0600) into `dir`.
fn write_secrets(dir: &std::path::Path, key: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    for scheme in SCHEMES {
        let path = dir.join(format!("{scheme}.key"));
        std::fs::write(&path, signers::secret_file_text(scheme, key)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// Each way a signed request can be wrong, as it goes out for `scheme`.
fn forgeries(scheme: &str) -> Vec<(&'static str, SignedRequest)> {
    let at = now();
    let good = sign(scheme, KEY, &body(scheme, "100"), at);
    let mut changed = good.clone();
    changed.body = body(scheme, "900");
    if scheme.ends_with("_md5") {
        // The parameters change; the signature stays.
        let text = String::from_utf8(good.body.clone()).unwrap();
        changed.body = text.replacen("money=100", "money=900", 1).into_bytes();
    }
    let mut out = vec![("changed body", changed), ("wrong secret", sign(scheme, OTHER_KEY, &good.body, at))];
    if scheme.ends_with("_md5") {
        let text = String::from_utf8(good.body.clone()).unwrap();
        let unsigned = text.split('&').filter(|p| !p.starts_with("sign=")).collect::<Vec<_>>().join("&");
        out.push(("missing sign", SignedRequest { body: unsigned.into_bytes(), ..good.clone() }));
        let bad = text.split('&').map(|p| if p.starts_with("sign=") { "sign=zz" } else { p }).collect::<Vec<_>>();
        out.push(("malformed sign", SignedRequest { body: bad.join("&").into_bytes(), ..good.clone() }));
        return out;
    }
    let header = signature_header(scheme).unwrap();
    let without = |r: &SignedRequest| r.headers.iter().filter(|(n, _)| n != header).cloned().collect::<Vec<_>>();
    out.push(("missing header", SignedRequest { headers: without(&good), ..good.clone() }));
    let value = good.headers.iter().find(|(n, _)| n == header).unwrap().1.clone();
    let mut repeated = good.clone();
    repeated.headers.push((header.to_string(), value));
    out.push(("repeated header", repeated));
    let mut malformed = SignedRequest { headers: without(&good), ..good.clone() };
    malformed.headers.push((header.to_string(), "t=yesterday,v1=not-hex!".to_string()));
    out.push(("malformed header", malformed));
    if matches!(scheme, "stripe" | "standard_webhooks" | "slack") {
        out.push(("stale", sign(scheme, KEY, &good.body, at - 3600)));
        out.push(("from the future", sign(scheme, KEY, &good.body, at + 3600)));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_scheme_passes_a_signed_request_and_refuses_every_forgery_on_both_front_ends() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let dir = tempfile::tempdir().unwrap();
    write_secrets(dir.path(), KEY);
    let daemon = Daemon::start_in(dir.path(), &config(&pki, &app, "enforce"));
    for http2 in [false, true] {
        let front_name = if http2 { "HTTP/2" } else { "HTTP/1.1" };
        let mut front = Front::connect(&pki, daemon.addr, http2).await;
        for scheme in SCHEMES {
            let path = format!("/hooks/{scheme}");
            let before = app.seen().len();
            for (what, forged) in forgeries(scheme) {
                let answer = post(&mut front, &path, &forged).await;
                assert_eq!(answer, (401, REFUSED.to_string()), "{front_name} {scheme}: {what}");
                // A 401 closes an HTTP/1.1 connection (a client fault): open another.
                front = Front::connect(&pki, daemon.addr, http2).await;
            }
            assert_eq!(app.seen().len(), before, "{front_name} {scheme}: no forgery reached the upstream");
            let good = sign(scheme, KEY, &body(scheme, "100"), now());
            assert_eq!(post(&mut front, &path, &good).await, (200, "app".to_string()), "{front_name} {scheme}: signed");
            let seen = app.seen().pop().unwrap();
            assert_eq!(seen.body, good.body, "{front_name} {scheme}: the body byte for byte");
            for (name, value) in &good.headers {
                assert_eq!(seen.headers.get(name).unwrap(), value.as_str(), "{front_name} {scheme}: {name}");
            }
        }
    }
    let metrics = common::get(daemon.admin.unwrap(), "localhost", "/metrics").body_text();
    for scheme in SCHEMES {
        let ok = format!("hookgate_verify_total{{route=\"{scheme}\",result=\"ok\"}} 2");
        assert!(metrics.contains(&ok), "{ok} in\n{metrics}");
    }
    assert!(metrics.contains("hookgate_verify_total{route=\"stripe\",result=\"stale\"} 4"), "{metrics}");
    assert!(metrics.contains("hookgate_verify_total{route=\"github\",result=\"missing\"} 2"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn log_mode_forwards_a_bad_signature_and_counts_it() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let dir = tempfile::tempdir().unwrap();
    write_secrets(dir.path(), KEY);
    let daemon = Daemon::start_in(dir.path(), &config(&pki, &app, "log"));
    let mut front = Front::connect(&pki, daemon.addr, true).await;
    let forged = sign("github", OTHER_KEY, &body("github", "100"), now());
    assert_eq!(post(&mut front, "/hooks/github", &forged).await, (200, "app".to_string()), "forwarded in log mode");
    assert_eq!(app.seen().len(), 1);
    let admin = daemon.admin.unwrap();
    let metrics = common::get(admin, "localhost", "/metrics").body_text();
    assert!(metrics.contains("hookgate_verify_total{route=\"github\",result=\"bad_signature\"} 1"), "{metrics}");
    let status: serde_json::Value =
        serde_json::from_str(&common::get(admin, "localhost", "/status.json").body_text()).expect("status.json");
    let github = status["signatures"].as_array().unwrap().iter().find(|r| r["route"] == "github").unwrap().clone();
    assert_eq!(github["mode"], "log");
    assert_eq!(github["verdicts"]["bad_signature"], 1, "{github}");
    daemon.wait_for_log("signature check failed; forwarded", Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn any_of_several_secrets_admits_for_rotation() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old"), "old-secret").unwrap();
    std::fs::write(dir.path().join("new"), "new-secret").unwrap();
    let route = "[[routes]]\nname = \"stripe\"\npath = \"/hooks/stripe\"\nupstream = \"app\"\n\
                 verify = { scheme = \"stripe\", secret_files = [\"old\", \"new\"], tolerance = \"1m\" }\n";
    let daemon = Daemon::start_in(dir.path(), &common::tls_client::tls_config(&pki, &app, route));
    let mut front = Front::connect(&pki, daemon.addr, true).await;
    let payload = body("stripe", "100");
    for key in [&b"old-secret"[..], b"new-secret"] {
        assert_eq!(post(&mut front, "/hooks/stripe", &sign("stripe", key, &payload, now())).await.0, 200);
    }
    let unknown = sign("stripe", b"third-secret", &payload, now());
    assert_eq!(post(&mut front, "/hooks/stripe", &unknown).await.0, 401);
    let late = sign("stripe", b"new-secret", &payload, now() - 120);
    assert_eq!(post(&mut front, "/hooks/stripe", &late).await.0, 401, "tolerance = 1m");
    assert_eq!(app.seen().len(), 2);
}

/// A forged update is never kept and never claims its update id: the genuine
/// one that follows is forwarded (kept here) rather than answered as a repeat.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_request_is_neither_kept_nor_claimed() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gh.key"), KEY).unwrap();
    let route = "[[routes]]\nname = \"hooks\"\npath = \"/hooks\"\nupstream = \"app\"\n\
                 verify = { scheme = \"github\", secret_file = \"gh.key\" }\n\
                 dedupe = { key = \"telegram_update_id\" }\nstore = { mode = \"always\" }\n\
                 [spool]\ndir = \"spool\"\n";
    let daemon = Daemon::start_in(dir.path(), &common::tls_client::tls_config(&pki, &app, route));
    let spool = dir.path().join("spool/spool.sqlite3");
    let update = br#"{"update_id":7,"message":{"chat":{"id":1},"text":"hi"}}"#;
    for http2 in [true, false] {
        let mut front = Front::connect(&pki, daemon.addr, http2).await;
        let forged = sign("github", OTHER_KEY, update, now());
        assert_eq!(post(&mut front, "/hooks", &forged).await.0, 401);
    }
    assert_eq!(spool_rows(&spool), 0, "a forged request is not kept");
    let mut front = Front::connect(&pki, daemon.addr, true).await;
    assert_eq!(post(&mut front, "/hooks", &sign("github", KEY, update, now())).await.0, 200, "kept and acknowledged");
    assert!(common::eventually(Duration::from_secs(10), || app.seen().len() == 1), "delivered: not a repeat");
    assert_eq!(app.seen()[0].body.as_ref(), update);
}

/// Every XBoard vector signed by PHP (`tests/data/verify/make_xboard.php`)
/// through the daemon, on both front ends: the ones XBoard accepts pass
/// byte for byte (spaces, empty fields, GET queries, the Alipay RSA2 key
/// included), every other one gets 401 and never reaches the upstream.
#[tokio::test(flavor = "multi_thread")]
async fn the_php_signed_xboard_vectors_pass_or_fail_through_the_daemon_as_in_xboard() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/verify");
    let vectors: Vec<serde_json::Value> = std::fs::read_to_string(data.join("xboard.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let dir = tempfile::tempdir().unwrap();
    // One route per scheme and key set, at /x/<n>.
    let mut keys: Vec<String> = Vec::new();
    let mut routes = String::new();
    let route_of = |vector: &serde_json::Value, keys: &mut Vec<String>, routes: &mut String| {
        let id = format!("{}|{}|{}", vector["scheme"], vector["secrets"], vector["public_key"]);
        if let Some(n) = keys.iter().position(|k| *k == id) {
            return n;
        }
        let n = keys.len();
        let key_keys = match vector["public_key"].as_str() {
            Some(file) => format!("public_key_file = \"{}\"", data.join(file).display()),
            None => {
                let files: Vec<String> = vector["secrets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .enumerate()
                    .map(|(i, secret)| {
                        let file = format!("key-{n}-{i}");
                        std::fs::write(dir.path().join(&file), secret.as_str().unwrap()).unwrap();
                        format!("\"{file}\"")
                    })
                    .collect();
                format!("secret_files = [{}]", files.join(", "))
            }
        };
        *routes += &format!(
            "[[routes]]\nname = \"x{n}\"\npath = \"/x/{n}\"\nupstream = \"app\"\nverify = {{ scheme = {}, {key_keys} }}\n",
            vector["scheme"]
        );
        keys.push(id);
        n
    };
    let paths: Vec<usize> = vectors.iter().map(|v| route_of(v, &mut keys, &mut routes)).collect();
    let daemon = Daemon::start_in(dir.path(), &common::tls_client::tls_config(&pki, &app, &routes));
    let mut forwarded = 0;
    for http2 in [false, true] {
        let mut front = Front::connect(&pki, daemon.addr, http2).await;
        for (vector, n) in vectors.iter().zip(&paths) {
            let (status, target, body) = send_vector(&mut front, &format!("/x/{n}"), vector).await;
            if status != 200 && !http2 {
                // A 401 closes an HTTP/1.1 connection (a client fault).
                front = Front::connect(&pki, daemon.addr, http2).await;
            }
            let name = format!("{} ({}, http2 {http2})", vector["name"], vector["scheme"]);
            if vector["expect"] == "ok" {
                assert_eq!(status, 200, "{name}");
                let seen = app.seen().pop().unwrap();
                assert_eq!((seen.target, seen.body), (target, body), "{name}: byte for byte");
                forwarded += 1;
            } else {
                assert_eq!(status, 401, "{name}");
            }
        }
    }
    let passed = vectors.iter().filter(|v| v["expect"] == "ok").count();
    assert_eq!(app.seen().len(), forwarded, "only what passed reached the upstream");
    assert!(passed >= 50 && passed < vectors.len(), "{passed} of {} vectors pass", vectors.len());
}

/// Sends one vector; its status, and the target and body as sent.
async fn send_vector(front: &mut Front, path: &str, vector: &serde_json::Value) -> (u16, String, Bytes) {
    let target = match vector["query"].as_str() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    let body = Bytes::from(vector["body"].as_str().unwrap().to_string());
    let mut builder = Request::builder()
        .method(vector["method"].as_str().unwrap())
        .uri(format!("https://a.test{target}"))
        .header("host", "a.test");
    if let Some(content_type) = vector["content_type"].as_str() {
        builder = builder.header("content-type", content_type);
    }
    for pair in vector["headers"].as_array().unwrap() {
        builder = builder.header(pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
    }
    let (status, _) = front.send(builder.body(Full::new(body.clone())).unwrap()).await;
    (status, target, body)
}

/// In `mode = "log"` a request whose signature fails is forwarded but claims
/// no dedupe key: its answer is never given to the genuine request after it.
#[tokio::test(flavor = "multi_thread")]
async fn a_forgery_let_through_by_log_mode_claims_no_dedupe_key() {
    let pki = Pki::two_sites();
    let app = Upstream::start("app").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gh.key"), KEY).unwrap();
    let route = "[[routes]]\nname = \"hooks\"\npath = \"/hooks\"\nupstream = \"app\"\n\
                 verify = { scheme = \"github\", secret_file = \"gh.key\", mode = \"log\" }\n\
                 dedupe = { key = \"json:/id\" }\n";
    let daemon = Daemon::start_in(dir.path(), &common::tls_client::tls_config(&pki, &app, route));
    for (http2, id) in [(false, "evt_h1"), (true, "evt_h2")] {
        let mut front = Front::connect(&pki, daemon.addr, http2).await;
        let event = format!(r#"{{"id":"{id}","amount":100}}"#).into_bytes();
        let before = app.seen().len();
        let forged = sign("github", OTHER_KEY, &event, now());
        assert_eq!(post(&mut front, "/hooks", &forged).await.0, 200, "log mode forwards it");
        let genuine = sign("github", KEY, &event, now());
        assert_eq!(post(&mut front, "/hooks", &genuine).await.0, 200);
        assert_eq!(app.seen().len(), before + 2, "http2 {http2}: the genuine one reached the upstream");
        assert_eq!(post(&mut front, "/hooks", &genuine).await.0, 200);
        assert_eq!(app.seen().len(), before + 2, "http2 {http2}: its repeat is answered here");
    }
}

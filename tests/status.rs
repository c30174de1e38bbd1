//! The status page: `/status.json` after real traffic, the HTML page as a
//! real browser renders it (headless Chromium's DOM and layout at 1280 × 900
//! and 390 × 844, with screenshots kept in `target/tmp/status-page-1280.png`
//! and `target/tmp/status-page-390.png`, in whichever target folder cargo
//! uses), `hookgate status`, and the admin token.

use crate::common;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use common::telegram_sim::TelegramSim;
use common::{Daemon, Upstream, Webhook, eventually, raw};

const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const ADMIN_TOKEN: &str = "admin-token_0123456789";

struct Setup {
    dir: tempfile::TempDir,
    daemon: Daemon,
    admin: std::net::SocketAddr,
}

/// A daemon with XBoard's routes (one to a dead upstream, one answered by
/// hookgate) and Telegram set up, after a little traffic of every kind.
async fn setup(admin_extra: &str) -> Setup {
    let app = Upstream::start("app").await;
    let sim = TelegramSim::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    std::fs::write(dir.path().join("secret"), "s3cret").unwrap();
    std::fs::write(dir.path().join("admin-token"), ADMIN_TOKEN).unwrap();
    let d = dir.path().display();
    let admin_extra = admin_extra.replace("DIR", &d.to_string());
    let webhook = Webhook::new(dir.path(), sim.api_addr).upstream("app").secret().telegram_line("repair = false");
    let config = format!(
        r#"[admin]
addr = "127.0.0.1:0"
{admin_extra}
[upstreams.app]
url = "{app}"
[upstreams.dead]
url = "http://127.0.0.1:9"
{route}[[routes]]
name = "payment-notify"
path_prefix = "/api/v1/guest/payment/notify/"
upstream = "app"
allow_from = ["10.0.0.0/8"]
[[routes]]
name = "node-api"
path_regex = "^/api/v[12]/server/"
upstream = "app"
[[routes]]
name = "subscriptions"
path_prefix = "/api/v1/client/subscribe"
upstream = "app"
[[routes]]
name = "broken-backend"
path_prefix = "/broken"
upstream = "dead"
[[routes]]
name = "block-admin"
path_prefix = "/admin"
respond = {{ status = 403, body = "forbidden\n" }}
[default]
upstream = "app"
{telegram}"#,
        app = app.url(),
        route = webhook.route(),
        telegram = webhook.telegram(),
    );
    let daemon = Daemon::start(&config);
    let addr = daemon.addr;
    for _ in 0..20 {
        assert_eq!(common::get(addr, "www.example.com", "/").status, 200);
    }
    for _ in 0..3 {
        assert_eq!(common::get(addr, "www.example.com", "/api/v1/guest/payment/notify/EPay/x").status, 403);
        assert_eq!(common::get(addr, "www.example.com", "/broken/x?token=hunter2").status, 502);
    }
    // So the 401 below is the newest problem, whichever thread served what.
    wait_for_access_lines(&daemon, 26);
    let unsigned = raw(
        addr,
        b"POST /api/v1/guest/telegram/webhook HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    );
    assert_eq!(unsigned.status, 401);
    wait_for_access_lines(&daemon, 27);
    let admin = daemon.admin.unwrap();
    std::mem::forget(app);
    std::mem::forget(sim);
    Setup { dir, daemon, admin }
}

/// Waits until `count` responses have been counted. A response is counted
/// once its last byte is written, which can be just after the client has read
/// it; its access line is written after the counters, so it says it has been.
fn wait_for_access_lines(daemon: &Daemon, count: usize) {
    let written = || daemon.logs().iter().filter(|l| l.contains("hookgate::access")).count();
    assert!(eventually(Duration::from_secs(10), || written() >= count), "{} access lines, not {count}", written());
}

fn get_json(setup: &Setup, token: Option<&str>) -> Value {
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let request = format!("GET /status.json HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
    let response = raw(setup.admin, request.as_bytes());
    assert_eq!(response.status, 200, "{}", response.body_text());
    serde_json::from_str(&response.body_text()).unwrap()
}

fn route<'a>(snapshot: &'a Value, name: &str) -> &'a Value {
    snapshot["routes"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn status_json_reports_the_traffic_the_routes_and_the_webhook() {
    let setup = setup("").await;
    // The webhook was never set: the monitor's first round says so.
    assert!(eventually(Duration::from_secs(5), || !get_json(&setup, None)["telegram"]["webhook"].is_null()));
    let s = get_json(&setup, None);

    let names: Vec<&str> = s["routes"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["telegram-webhook", "payment-notify", "node-api", "subscriptions", "broken-backend", "block-admin", "default"]
    );
    assert_eq!(route(&s, "default")["last_minute"]["classes"][1], 20);
    assert_eq!(route(&s, "payment-notify")["last_minute"]["refusals"][0], 3, "allow_from refusals");
    assert_eq!(route(&s, "telegram-webhook")["last_minute"]["refusals"][1], 1, "secret refusals");
    assert_eq!(route(&s, "broken-backend")["last_minute"]["classes"][4], 3);
    assert!(route(&s, "default")["last_minute"]["p99_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(route(&s, "default")["per_minute"].as_array().unwrap().len(), 15);

    let dead = s["upstreams"].as_array().unwrap().iter().find(|u| u["name"] == "dead").unwrap();
    assert_eq!(dead["connect_errors"], 3);
    assert!(dead["last_error"].as_str().unwrap().starts_with("connect: "), "{dead}");

    assert_eq!(s["telegram"]["webhook"]["state"], "no webhook set");
    let listeners = s["listeners"].as_array().unwrap();
    assert_eq!(listeners[0]["addr"], setup.daemon.addr.to_string(), "the bound address, not the configured :0");
    assert_eq!(s["telegram"]["webhook"]["healthy"], false);
    let problems = s["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 7, "3 × 403, 3 × 502, 1 × 401: {problems:#?}");
    assert_eq!(problems[0]["status"], 401, "newest first");
    assert!(problems.iter().any(|p| p["reason"] == "upstream unreachable" && p["route"] == "broken-backend"));
    let text = s.to_string();
    assert!(!text.contains("hunter2") && !text.contains("s3cret") && !text.contains(TOKEN), "{text}");
    assert!(s["trouble"].as_array().unwrap().iter().any(|t| t.as_str().unwrap().starts_with("telegram webhook")));
}

/// hookgate's own answer (a `respond` rule's 403) is listed under its route
/// with a reason that says so, not as an upstream's.
#[tokio::test(flavor = "multi_thread")]
async fn a_respond_rules_answer_is_listed_as_its_own() {
    let setup = setup("").await;
    assert_eq!(common::get(setup.daemon.addr, "www.example.com", "/admin").status, 403);
    wait_for_access_lines(&setup.daemon, 28);
    let s = get_json(&setup, None);
    let problems = s["problems"].as_array().unwrap();
    let listed = problems.iter().any(|p| p["route"] == "block-admin" && p["reason"] == "a respond rule answered 403");
    assert!(listed, "{problems:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hookgate_status_prints_the_summary_and_exits_1_on_trouble() {
    let setup = setup("").await;
    let config = std::fs::read_to_string(&setup.daemon.config_path).unwrap();
    let path = setup.dir.path().join("cli.toml");
    std::fs::write(&path, config.replacen("addr = \"127.0.0.1:0\"", &format!("addr = \"{}\"", setup.admin), 1))
        .unwrap();
    assert!(eventually(Duration::from_secs(5), || !get_json(&setup, None)["telegram"]["webhook"].is_null()));
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate")).args(["status", "-c"]).arg(&path).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "the webhook is not set: {said}");
    for needle in
        ["verdict: needs attention", "payment-notify", "allow_from 3", "dead", "recent problems", "no webhook set"]
    {
        assert!(said.contains(needle), "missing {needle:?} in:\n{said}");
    }
    assert!(!said.contains('\x1b'), "no colour when stdout is not a terminal");
    assert!(said.contains("refusing connections"), "{said}");
    for table in ["upstream ", "age ", "route (last minute) "] {
        assert_aligned(&said, table);
    }
}

/// The table in `said` whose header line starts with `header` lines up:
/// every cell starts (left-aligned) or ends (right-aligned) where its
/// column's header does. Cells are apart by two spaces or more.
fn assert_aligned(said: &str, header: &str) {
    let lines: Vec<&str> =
        said.lines().skip_while(|l| !l.trim_start().starts_with(header)).take_while(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "no table under {header:?} in:\n{said}");
    let cells = |line: &str| {
        let chars: Vec<char> = line.chars().collect();
        let mut spans = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == ' ' {
                i += 1;
                continue;
            }
            let start = i;
            while i < chars.len() && !(chars[i] == ' ' && chars.get(i + 1).is_none_or(|c| *c == ' ')) {
                i += 1;
            }
            spans.push((start, i));
        }
        spans
    };
    let columns = cells(lines[0]);
    for line in &lines[1..] {
        let row = cells(line);
        let table = lines.join("\n");
        assert_eq!(row.len(), columns.len(), "{line:?} has other columns than its header:\n{table}");
        for (cell, column) in row.iter().zip(&columns) {
            assert!(cell.0 == column.0 || cell.1 == column.1, "{line:?}: a cell out of its column:\n{table}");
        }
    }
}

/// Headless Chromium with a window of `width` × `height`.
fn chromium(width: u32, height: u32, args: &[&str], url: &str) -> std::process::Output {
    Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"])
        .arg(format!("--window-size={width},{height}"))
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium")
}

/// A page holding `page` in a `width` × `height` frame at its top left, which
/// measures it once laid out: its scroll width against the frame's, the
/// tables that end past the frame's right edge, and where the upstreams and
/// the newest problem end. A frame because headless Chromium's windows are at
/// least 500 px wide; a screenshot of the window's `width` × `height` is the frame.
fn framed(page: &str, width: u32, height: u32) -> String {
    let srcdoc = page.replace('&', "&amp;").replace('"', "&quot;");
    format!(
        r#"<!doctype html><html><head><style>body{{margin:0}}iframe{{border:0;display:block;width:{width}px;height:{height}px}}</style></head>
<body><iframe id="page" srcdoc="{srcdoc}"></iframe><script>
document.getElementById('page').onload = () => {{
  const w = document.getElementById('page').contentWindow, d = w.document;
  const bottom = q => {{ const e = d.querySelector(q); return e ? Math.round(e.getBoundingClientRect().bottom + w.scrollY) : null; }};
  const measured = {{
    inner_width: w.innerWidth,
    inner_height: w.innerHeight,
    scroll_width: d.documentElement.scrollWidth,
    wide_tables: [...d.querySelectorAll('table')].filter(t => t.getBoundingClientRect().right > w.innerWidth).map(t => t.id),
    upstreams_end: bottom('#upstreams'),
    first_problem_end: bottom('#problems tbody tr'),
  }};
  document.body.insertAdjacentHTML('beforeend', '<pre id="measured" hidden>' + JSON.stringify(measured) + '</pre>');
}};
</script></body></html>"#
    )
}

/// Lays `page` out at `width` × `height` (see `framed`) and returns the
/// measurements; keeps a screenshot in `target/tmp/status-page-{width}.png`
/// (one Chromium run dumps the DOM and takes the screenshot).
fn measure(page: &str, width: u32, height: u32) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("framed.html");
    std::fs::write(&file, framed(page, width, height)).unwrap();
    let url = format!("file://{}", file.display());
    // Cargo's scratch folder for integration tests: there whatever `CARGO_TARGET_DIR` says.
    let screenshot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("status-page-{width}.png"));
    let out = chromium(width, height, &["--dump-dom", &format!("--screenshot={}", screenshot.display())], &url);
    let dom = String::from_utf8(out.stdout).unwrap();
    let json = dom.rsplit("<pre id=\"measured\" hidden=\"\">").next().and_then(|r| r.split("</pre>").next());
    let json = json.filter(|j| j.starts_with('{'));
    let json = json.unwrap_or_else(|| panic!("no measurement: {dom}\n{}", String::from_utf8_lossy(&out.stderr)));
    let measured: Value = serde_json::from_str(&json.replace("&quot;", "\"").replace("&amp;", "&")).unwrap();

    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 2_000, "the screenshot is an image of the page");
    let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!((size(16), size(20)), (width, height), "the screenshot is the frame");
    measured
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_renders_every_route_the_webhook_and_the_numbers() {
    if !common::have_tool("chromium", "chromium") {
        return;
    }
    let setup = setup("").await;
    assert!(eventually(Duration::from_secs(5), || !get_json(&setup, None)["telegram"]["webhook"].is_null()));
    // The layout checks below run in Chromiums of their own beside this one.
    let page = raw(setup.admin, b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").body_text();
    let sizes = [(1280u32, 900u32), (390, 844)];
    let layouts: Vec<_> = sizes
        .iter()
        .map(|&(width, height)| {
            let page = page.clone();
            std::thread::spawn(move || measure(&page, width, height))
        })
        .collect();
    let url = format!("http://{}/", setup.admin);
    let dom = String::from_utf8(chromium(1280, 900, &["--dump-dom"], &url).stdout).unwrap();
    for name in ["telegram-webhook", "payment-notify", "node-api", "subscriptions", "broken-backend", "default"] {
        assert!(dom.contains(&format!("data-route=\"{name}\"")), "route {name} missing:\n{dom}");
    }
    assert!(dom.contains("id=\"webhook-state\">no webhook set</span>"), "{dom}");
    let row = |name: &str| dom.split(&format!("data-route=\"{name}\"")).nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(
        row("broken-backend").contains(">100%<"),
        "all of broken-backend's answers were 5xx: {}",
        row("broken-backend")
    );
    assert!(row("payment-notify").contains("allow_from 3"), "{}", row("payment-notify"));
    // Latencies in plain numbers (`512 µs`, `4 ms`), not bucket bounds (`≤4.096 ms`).
    let p99 = row("default").split("data-label=\"p99\"").nth(1);
    let p99 = p99.unwrap_or_else(|| panic!("no cell labelled p99: {}", row("default")));
    let p99 = p99.split('>').nth(1).unwrap().split('<').next().unwrap();
    assert!(p99.ends_with(" µs") || p99.ends_with(" ms"), "{p99}");
    assert!(p99.trim_end_matches(" µs").trim_end_matches(" ms").parse::<u32>().is_ok(), "a whole number: {p99}");
    assert!(!dom.contains('≤'), "no bucket bounds on the page");
    assert!(dom.contains("data-upstream=\"dead\""), "{dom}");
    assert!(dom.contains("upstream unreachable"), "the problem list: {dom}");
    assert!(!dom.contains("hunter2"), "no query strings on the page");

    // At a laptop's 1280 × 900 and a phone's 390 × 844: nothing wider than
    // the window; at 1280 × 900, with something wrong, the upstreams and the
    // newest problem above the fold.
    for ((width, height), layout) in sizes.into_iter().zip(layouts) {
        let m = layout.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        assert_eq!(
            (m["inner_width"].as_u64(), m["inner_height"].as_u64()),
            (Some(u64::from(width)), Some(u64::from(height))),
            "{m}"
        );
        assert!(m["scroll_width"].as_u64().unwrap() <= u64::from(width), "scrolls sideways at {width} px: {m}");
        assert_eq!(m["wide_tables"], serde_json::json!([]), "tables past the right edge at {width} px: {m}");
        if width == 1280 {
            assert!(m["upstreams_end"].as_u64().unwrap() <= u64::from(height), "upstreams below the fold: {m}");
            assert!(m["first_problem_end"].as_u64().unwrap() <= u64::from(height), "problems below the fold: {m}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_guards_every_admin_endpoint_but_healthz() {
    let setup = setup("token_file = \"DIR/admin-token\"").await;
    let ask = |path: &str, auth: &str| {
        let request = format!("GET {path} HTTP/1.1\r\nHost: a\r\n{auth}Connection: close\r\n\r\n");
        raw(setup.admin, request.as_bytes())
    };
    let good = format!("Authorization: Bearer {ADMIN_TOKEN}\r\n");
    for path in ["/", "/status.json", "/readyz", "/metrics"] {
        let refused = ask(path, "");
        assert_eq!(refused.status, 401, "{path} without a token");
        assert_eq!(refused.header("www-authenticate").as_deref(), Some("Bearer"));
        assert_eq!(ask(path, "Authorization: Bearer wrong\r\n").status, 401, "{path} with a wrong token");
        assert_eq!(ask(path, &format!("Authorization: Basic {ADMIN_TOKEN}\r\n")).status, 401);
        assert_eq!(ask(path, &good).status, 200, "{path} with the token");
    }
    assert_eq!(ask("/healthz", "").status, 200, "health checks need no token");
    let _ = get_json(&setup, Some(ADMIN_TOKEN));
}

#[test]
fn a_public_admin_address_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookgate.toml");
    std::fs::write(&path, "[admin]\naddr = \"0.0.0.0:9901\"\n[default]\nrespond = { status = 200 }\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate")).args(["check", "-c"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("admin.addr: 0.0.0.0:9901 is not a loopback address: set [admin] token_file"), "{said}");
}

//! The Bot API client's limits, over real sockets: a Bot API whose answer never
//! ends (or declares gigabytes) fails the call with "larger than 1 MiB" as soon
//! as 1 MiB has arrived, in the daemon's monitor and in `hookgate telegram
//! info`, and neither process grows past a few tens of MB. And what `[telegram]`
//! may hold: no `user:password@` in `api_url` (refused by `check`, `run` and
//! `telegram`, and the password never printed), and no route secret that
//! Telegram would refuse as `secret_token`.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Daemon, Webhook, get};

const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const MIB: u64 = 1024 * 1024;
/// What the sim sends at most, so a client without a limit holds this much,
/// not the whole machine's memory, before its call times out.
const SIM_CAP: u64 = 512 * MIB;
/// Peak resident memory either process may reach (it idles at about 9 MB).
const MAX_PEAK_KIB: u64 = 100 * 1024;

/// How the sim's answer says how long it is.
#[derive(Clone, Copy)]
enum Framing {
    /// `Transfer-Encoding: chunked`, chunks until `SIM_CAP` (an endless answer).
    Endless,
    /// `Content-Length: 10 GiB`, bytes until `SIM_CAP`.
    Declared,
}

/// A Bot API that answers every call with `{"ok":true,"result":{"url":"aaaa…`
/// for as long as the client reads, and counts the bytes it got out.
struct HugeBotApi {
    addr: SocketAddr,
    sent: Arc<AtomicU64>,
    /// Calls so far: one connection each, as no answer ends.
    calls: Arc<AtomicU64>,
}

impl HugeBotApi {
    fn start(framing: Framing) -> HugeBotApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (sent, calls) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (counter, accepted) = (sent.clone(), calls.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                accepted.fetch_add(1, Ordering::SeqCst);
                let counter = counter.clone();
                std::thread::spawn(move || answer(stream, framing, &counter));
            }
        });
        HugeBotApi { addr, sent, calls }
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

fn answer(mut stream: TcpStream, framing: Framing, sent: &AtomicU64) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let length = match framing {
        Framing::Endless => "Transfer-Encoding: chunked".to_string(),
        Framing::Declared => format!("Content-Length: {}", 10 * 1024 * MIB),
    };
    let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}\r\n\r\n");
    let chunk = [b'a'; 64 * 1024];
    let mut write = |bytes: &[u8]| {
        let ok = stream.write_all(bytes).is_ok();
        if ok {
            sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        ok
    };
    if !write(head.as_bytes()) {
        return;
    }
    let start = br#"{"ok":true,"result":{"url":""#;
    let framed = |data: &[u8]| match framing {
        Framing::Endless => [format!("{:x}\r\n", data.len()).as_bytes(), data, b"\r\n"].concat(),
        Framing::Declared => data.to_vec(),
    };
    if !write(&framed(start)) {
        return;
    }
    let framed_chunk = framed(&chunk);
    while sent.load(Ordering::Relaxed) < SIM_CAP {
        if !write(&framed_chunk) {
            return;
        }
    }
    // Never ends: the client either stopped long ago or times out.
    std::thread::sleep(Duration::from_secs(60));
}

/// The token file and a config whose `[telegram]` asks `api` every 200 ms.
fn config(dir: &std::path::Path, api: SocketAddr) -> String {
    std::fs::write(dir.join("token"), format!("{TOKEN}\n")).unwrap();
    let webhook = Webhook::new(dir, api).monitor_interval("200ms");
    format!(
        "[listen]\naddrs = [\"127.0.0.1:0\"]\n[admin]\naddr = \"127.0.0.1:0\"\n[upstreams.backend]\n\
         url = \"http://127.0.0.1:9\"\n{}[default]\nupstream = \"backend\"\n{}",
        webhook.route(),
        webhook.telegram()
    )
}

/// The highest resident memory the process has had, in KiB.
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn the_monitor_stops_reading_an_endless_answer_at_1_mib() {
    let api = HugeBotApi::start(Framing::Endless);
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&config(dir.path(), api.addr));
    let started = Instant::now();
    // Before the limit this line came only at the 15 s call timeout, after
    // the daemon had taken in all of the sim's 512 MiB.
    let line = daemon.wait_for_log("cannot read the webhook state", Duration::from_secs(20));
    let took = started.elapsed();
    let peak = peak_kib(daemon.pid()).unwrap();
    assert!(peak < MAX_PEAK_KIB, "the daemon's RSS peaked at {peak} KiB; after {took:?}: {line}");
    assert!(line.contains("Bot API answer larger than 1 MiB"), "{line}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {line}");
    // It stopped reading: what the sim got out is the 1 MiB plus socket buffers.
    assert!(api.sent() < 32 * MIB, "the sim sent {} MiB", api.sent() / MIB);

    let readyz = get(daemon.admin.unwrap(), "localhost", "/readyz").body_text();
    assert!(readyz.contains("cannot ask Telegram (getWebhookInfo: Bot API answer larger than 1 MiB"), "{readyz}");
    // Three later rounds fail the same way (the fourth has begun); the daemon stays small.
    let rounds = api.calls() + 4;
    assert!(common::eventually(Duration::from_secs(20), || api.calls() >= rounds), "the monitor stopped asking");
    let peak = peak_kib(daemon.pid()).unwrap();
    assert!(peak < MAX_PEAK_KIB, "the daemon's RSS peaked at {peak} KiB after a few rounds");
    let rss = daemon.rss_kib();
    assert!(rss < MAX_PEAK_KIB, "the daemon holds {rss} KiB");
}

#[test]
fn telegram_info_stops_reading_a_huge_answer_at_1_mib() {
    for framing in [Framing::Endless, Framing::Declared] {
        let api = HugeBotApi::start(framing);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookgate.toml");
        std::fs::write(&path, config(dir.path(), api.addr)).unwrap();
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .args(["telegram", "info", "-c"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut peak = 0;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            // Only once the child is hookgate: until its exec it is a copy of this
            // test binary, whose memory is not hookgate's (one CI run read 216 MB at 10 ms).
            if std::fs::read_link(format!("/proc/{}/exe", child.id())).ok() != std::env::current_exe().ok() {
                peak = peak.max(peak_kib(child.id()).unwrap_or(0));
            }
            assert!(started.elapsed() < Duration::from_secs(30), "telegram info did not end");
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut said = String::new();
        child.stdout.take().unwrap().read_to_string(&mut said).unwrap();
        child.stderr.take().unwrap().read_to_string(&mut said).unwrap();
        let took = started.elapsed();
        assert!(peak < MAX_PEAK_KIB, "telegram info's RSS peaked at {peak} KiB; after {took:?}: {said}");
        assert_eq!(status.code(), Some(1), "{said}");
        assert!(said.contains("getWebhookInfo: Bot API answer larger than 1 MiB"), "{said}");
        assert!(took < Duration::from_secs(5), "took {took:?}: {said}");
        assert!(api.sent() < 32 * MIB, "the sim sent {} MiB", api.sent() / MIB);
        assert!(!said.contains(TOKEN), "the token leaked: {said}");
    }
}

/// A password that must never be printed.
const PASSWORD: &str = "hunter2-Pa55";

fn hookgate(args: &[&str], config: &std::path::Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate")).args(args).arg("-c").arg(config).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), said)
}

/// Writes `config(...)` with `tweak` applied; returns its path.
fn write_config(dir: &std::path::Path, tweak: impl Fn(String) -> String) -> std::path::PathBuf {
    let api: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let path = dir.join("hookgate.toml");
    std::fs::write(&path, tweak(config(dir, api))).unwrap();
    path
}

#[test]
fn an_api_url_with_a_user_and_password_is_refused_without_printing_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let urls = [
        format!("https://bot:{PASSWORD}@api.telegram.org"),
        format!("http://bot:{PASSWORD}@127.0.0.1:8081/"),
        format!("https://{PASSWORD}@api.telegram.org"),
        // No scheme, and one that does not parse as a URL: both used to echo it.
        format!("bot:{PASSWORD}@api.telegram.org"),
        format!("https://bot:{PASSWORD} x@api.telegram.org"),
    ];
    for url in urls {
        let path =
            write_config(dir.path(), |c| c.replace("api_url = \"http://127.0.0.1:9\"", &format!("api_url = {url:?}")));
        let line = std::fs::read_to_string(&path).unwrap().lines().position(|l| l.starts_with("api_url")).unwrap() + 1;
        for args in [&["check"][..], &["telegram", "info"], &["run"]] {
            let (code, said) = hookgate(args, &path);
            assert_eq!(code, Some(78), "{args:?} with {url}: {said}");
            let want = format!("{}:{line}: telegram.api_url: ", path.display());
            assert!(said.contains(&want), "want {want:?} in {said}");
            assert!(said.contains("must be scheme://host[:port] with no user or password"), "{said}");
            assert!(said.contains("…@"), "{said}");
            assert!(!said.contains(PASSWORD), "{args:?} printed the password: {said}");
        }
    }
}

#[test]
fn a_route_secret_telegram_would_refuse_is_refused_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let with_secret = |extra: &'static str| {
        let secret = format!("{}/secret", dir.path().display());
        move |c: String| {
            c.replace(
                "upstream = \"backend\"\n[default]",
                &format!("upstream = \"backend\"\nsecret_header = {{ name = \"X-Telegram-Bot-Api-Secret-Token\", value_file = {secret:?} }}\n[default]"),
            )
            .replace("monitor_interval", &format!("{extra}monitor_interval"))
        }
    };
    let refused = [
        ("a.secret-with-a-dot".to_string(), "it holds 1 other character"),
        ("with spaces inside".to_string(), "it holds 2 other characters"),
        ("sécret".to_string(), "it holds 1 other character"),
        ("a".repeat(257), "it is 257 characters long"),
    ];
    for (secret, why) in refused {
        std::fs::write(dir.path().join("secret"), format!("{secret}\n")).unwrap();
        let path = write_config(dir.path(), with_secret(""));
        let line =
            std::fs::read_to_string(&path).unwrap().lines().position(|l| l.starts_with("secret_header")).unwrap() + 1;
        let (code, said) = hookgate(&["check"], &path);
        assert_eq!(code, Some(78), "{secret:?}: {said}");
        let want = format!("{}:{line}: routes[0].secret_header.value_file: ", path.display());
        assert!(said.contains(&want), "want {want:?} in {said}");
        assert!(said.contains("registered with Telegram as secret_token"), "{said}");
        assert!(said.contains(why), "want {why:?} in {said}");
        assert!(!said.contains(&secret), "the secret was printed: {said}");
        // Not registered with Telegram, the route may keep it for other senders.
        let path = write_config(dir.path(), with_secret("secret_header_from_route = false\n"));
        let (code, said) = hookgate(&["check"], &path);
        assert_eq!(code, Some(0), "{secret:?} not registered: {said}");
    }
    // The longest and widest secret Telegram takes passes.
    for secret in ["a".repeat(256), "Az09_-".to_string()] {
        std::fs::write(dir.path().join("secret"), format!("{secret}\n")).unwrap();
        let (code, said) = hookgate(&["check"], &write_config(dir.path(), with_secret("")));
        assert_eq!(code, Some(0), "{secret:?}: {said}");
    }
    // An empty one was already refused, as no header value, naming the same key.
    std::fs::write(dir.path().join("secret"), "\n").unwrap();
    let (code, said) = hookgate(&["check"], &write_config(dir.path(), with_secret("")));
    assert_eq!(code, Some(78), "{said}");
    assert!(said.contains("routes[0].secret_header.value_file: "), "{said}");
}

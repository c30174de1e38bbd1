//! The command line: `check` exit codes and output, `route` explanations,
//! `init`, `health`, and the config path rules (`-c`, `HOOKGATE_CONFIG`).

use crate::common;

use std::process::{Command, Output};
use std::time::Duration;

fn hookgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hookgate")).args(args).env_remove("HOOKGATE_CONFIG").output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_config(body: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookgate.toml");
    std::fs::write(&path, body).unwrap();
    (dir, path.to_string_lossy().into_owned())
}

#[test]
fn check_accepts_the_shipped_configs_and_prints_the_table() {
    let shipped = ["config/xboard.toml", "config/hookgate.toml"];
    let compose = ["examples/xboard-compose-default.toml", "examples/xboard-compose-split.toml"];
    for file in shipped.into_iter().chain(compose) {
        let out = hookgate(&["check", "-c", file]);
        assert_eq!(out.status.code(), Some(0), "{file}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.contains("telegram-webhook"), "{stdout}");
        assert!(stdout.contains("config OK"), "{stdout}");
    }
    // The preset's store routes name the spool, its size as written and as people read it.
    let stdout = text(&hookgate(&["check", "-c", "config/xboard.toml"]).stdout);
    assert!(stdout.contains("spool: /var/lib/hookgate/spool (max_bytes = 1073741824, 1.0 GiB)"), "{stdout}");
}

#[test]
fn check_rejects_an_invalid_file_with_exit_78_and_a_located_error() {
    let (_dir, path) = write_config(
        "[listen]\naddrs = [\"127.0.0.1:0\"]\n[upstreams.frontend]\nurl = \"http://127.0.0.1:3000\"\n[upstreams.backend]\nurl = \"http://127.0.0.1:7001\"\n\n[[routes]]\nname = \"hook\"\npath = \"/hook\"\nupstream = \"backnd\"\n",
    );
    let out = hookgate(&["check", "-c", &path]);
    assert_eq!(out.status.code(), Some(78));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.trim(),
        format!("{path}:11: routes[0].upstream: no upstream named \"backnd\" (defined: frontend, backend)")
    );
    // `run` refuses the same file the same way, before binding anything.
    assert_eq!(hookgate(&["run", "-c", &path]).status.code(), Some(78));
    assert_eq!(hookgate(&["check", "-c", "/nonexistent.toml"]).status.code(), Some(78));
}

/// An upstream URL with a user and password is refused without printing the
/// password (it was echoed whole by both URL errors).
#[test]
fn check_never_prints_an_upstream_password() {
    let urls = ["http://bot:hunter2@127.0.0.1:3000", "http://bot:hunter2@127.0.0.1:3000/path", "bot:hunter2@[::1"];
    for url in urls {
        let (_dir, path) = write_config(&format!("[upstreams.app]\nurl = \"{url}\"\n[default]\nupstream = \"app\"\n"));
        let out = hookgate(&["check", "-c", &path]);
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(78), "{url}: {said}");
        assert!(said.contains("upstreams.app.url") && said.contains("…@"), "{url}: {said}");
        assert!(!said.contains("hunter2"), "{url}: the password is printed: {said}");
    }
}

#[test]
fn check_warns_about_routes_that_can_never_match() {
    let (_dir, path) = write_config(
        "[listen]\naddrs = [\"127.0.0.1:0\"]\n[upstreams.b]\nurl = \"http://127.0.0.1:7001\"\n[[routes]]\nname = \"api\"\npath_prefix = \"/api\"\nupstream = \"b\"\n[[routes]]\nname = \"hook\"\npath = \"/api/hook\"\nupstream = \"b\"\n",
    );
    let out = hookgate(&["check", "-c", &path]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("warning: route \"hook\" can never match: the earlier route \"api\""), "{stdout}");
}

#[test]
fn route_names_the_backend_for_the_telegram_webhook() {
    let out = hookgate(&[
        "route",
        "-c",
        "config/xboard.toml",
        "POST",
        "https://www.example.com/api/v1/guest/telegram/webhook?access_token=x",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("=> route telegram-webhook -> upstream backend"), "{stdout}");
}

#[test]
fn route_explains_why_earlier_routes_did_not_match() {
    let out = hookgate(&[
        "route",
        "-c",
        "config/xboard.toml",
        "GET",
        "https://www.example.com/api/v1/guest/telegram/webhook",
    ]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("telegram-webhook") && stdout.contains("method GET is not one of POST"), "{stdout}");
    assert!(stdout.contains("=> no route matched: default -> upstream frontend"), "{stdout}");

    let out = hookgate(&["route", "-c", "config/xboard.toml", "GET", "/s/abc", "-H", "Host: www.example.com"]);
    assert!(text(&out.stdout).contains("=> route subscription-short -> upstream backend"), "{}", text(&out.stdout));

    let out = hookgate(&["route", "-c", "config/xboard.toml", "GET", "https://x/a/%2e%2e/admin"]);
    assert!(text(&out.stdout).contains("refused with 400"), "{}", text(&out.stdout));
}

/// The daemon refuses an HTTP/1.1 request without `Host`, and any with two:
/// `route` says so rather than naming a route such a request never reaches.
#[test]
fn route_says_when_the_host_is_missing_or_repeated() {
    let out = hookgate(&["route", "-c", "config/xboard.toml", "GET", "/nohost"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("without a Host header an HTTP/1.1 or HTTP/2 request is refused with 400"), "{stdout}");

    let twice = ["-H", "Host: www.example.com", "-H", "Host: api.example.com"];
    let out = hookgate(&[&["route", "-c", "config/xboard.toml", "GET", "/s/abc"][..], &twice].concat());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("=> refused with 400 bad request: repeated Host header"), "{stdout}");
    assert!(!stdout.contains("subscription-short"), "{stdout}");

    // What else the daemon refuses before routing, `route` refuses too, with the daemon's reason.
    let refused = [
        (&["GET", "/s/abc", "-H", "Host:"][..], "invalid Host"),
        (&["GET", "/s/abc", "-H", "Host: user@www.example.com"], "invalid Host"),
        (&["GET", "ftp://www.example.com/s/abc"], "hookgate is no forward proxy"),
        (&["CONNECT", "www.example.com:443"], "hookgate is no forward proxy"),
    ];
    for (request, reason) in refused {
        let out = hookgate(&[&["route", "-c", "config/xboard.toml"][..], request].concat());
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{request:?}: {stdout}{}", text(&out.stderr));
        assert!(
            stdout.contains("=> refused with 400 bad request: ") && stdout.contains(reason),
            "{request:?}: {stdout}"
        );
    }
}

#[test]
fn route_shows_the_guards_a_request_would_meet() {
    let url = "https://www.example.com/api/v1/guest/telegram/webhook?access_token=x";
    let out = hookgate(&["route", "-c", "config/xboard.toml", "POST", url, "--from", "149.154.167.99"]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("allow_from [telegram]: 149.154.167.99 is allowed"), "{stdout}");
    assert!(stdout.contains("=> route telegram-webhook -> upstream backend"), "{stdout}");
    let out = hookgate(&["route", "-c", "config/xboard.toml", "POST", url, "--from", "203.0.113.7"]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("203.0.113.7 is NOT allowed (403)"), "{stdout}");
    assert!(stdout.contains("=> route telegram-webhook refuses this request with 403"), "{stdout}");
}

#[test]
fn hookgate_config_env_names_the_file_when_no_flag_is_given() {
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["check"])
        .env("HOOKGATE_CONFIG", "config/xboard.toml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = hookgate(&["check"]);
    if !std::path::Path::new("/etc/hookgate/hookgate.toml").exists() {
        assert_eq!(out.status.code(), Some(78));
        assert!(text(&out.stderr).contains("/etc/hookgate/hookgate.toml"), "{}", text(&out.stderr));
    }
}

#[test]
fn the_xboard_preset_sends_the_backend_domain_and_client_apps_to_the_backend() {
    let cases = [
        ("GET", "https://api.example.com/api/v1/user/info", "=> route backend-domain -> upstream backend"),
        ("GET", "https://www.example.com/api/v1/client/app/getConfig", "=> route client-app-v1 -> upstream backend"),
        ("GET", "https://www.example.com/api/v2/client/app/getVersion", "=> route client-app-v2 -> upstream backend"),
        ("GET", "https://www.example.com/api/v1/user/info", "=> no route matched: default -> upstream frontend"),
    ];
    for (method, url, want) in cases {
        let out = hookgate(&["route", "-c", "config/xboard.toml", method, url]);
        assert!(text(&out.stdout).contains(want), "{url}: {}", text(&out.stdout));
    }
    // The webhook's guards hold on the backend's name too, and so does the 404 of its trailing-slash twin.
    let webhook = "https://api.example.com/api/v1/guest/telegram/webhook";
    let out = hookgate(&["route", "-c", "config/xboard.toml", "POST", webhook, "--from", "203.0.113.7"]);
    assert!(
        text(&out.stdout).contains("=> route telegram-webhook refuses this request with 403"),
        "{}",
        text(&out.stdout)
    );
    let out = hookgate(&["route", "-c", "config/xboard.toml", "POST", &format!("{webhook}/")]);
    assert!(text(&out.stdout).contains("=> route telegram-webhook-slash"), "{}", text(&out.stdout));
    let behind_php = "https://api.example.com/index.php/api/v1/guest/telegram/webhook";
    let out = hookgate(&["route", "-c", "config/xboard.toml", "POST", behind_php]);
    assert!(text(&out.stdout).contains("=> route front-controller"), "{}", text(&out.stdout));
    // `route` refuses a lower-case method as the daemon does.
    let out = hookgate(&["route", "-c", "config/xboard.toml", "post", webhook]);
    assert!(
        text(&out.stdout).contains("refused with 400 bad request: method not in upper case"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn init_writes_a_valid_config_once_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookgate.toml");
    let path_text = path.to_str().unwrap();
    let init = |output: &str, extra: &[&str]| {
        let mut args = vec!["init", "--frontend", "http://10.0.0.5:3000", "--backend", "http://10.0.0.6:7001"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-o", output]);
        hookgate(&args)
    };
    let out = init(path_text, &["--domain", "panel.example.org", "--api-domain", "api.panel.example.org"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    for step in [
        format!("hookgate check -c {path_text}"),
        format!("hookgate route -c {path_text} POST 'https://panel.example.org/api/v1/guest/telegram/webhook"),
        format!("hookgate run -c {path_text}"),
    ] {
        assert!(said.contains(&step), "missing {step:?} in {said}");
    }
    let check = hookgate(&["check", "-c", path_text]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("upstream backend: http://10.0.0.6:7001"), "{}", text(&check.stdout));
    let route = hookgate(&["route", "-c", path_text, "GET", "https://api.panel.example.org/api/v1/user/info"]);
    assert!(text(&route.stdout).contains("=> route backend-domain -> upstream backend"), "{}", text(&route.stdout));
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.contains("public_url = \"https://panel.example.org\""), "{written}");

    // A second run must not touch the file.
    let again = init(path_text, &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("exists"), "{}", text(&again.stderr));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), written);

    // Without --api-domain the host rule is left out; a bad URL writes nothing.
    let other = dir.path().join("other.toml");
    let out = init(other.to_str().unwrap(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let route = hookgate(&["route", "-c", other.to_str().unwrap(), "GET", "https://api.example.com/api/v1/user/info"]);
    assert!(text(&route.stdout).contains("default -> upstream frontend"), "{}", text(&route.stdout));
    let bad = dir.path().join("bad.toml");
    let out = hookgate(&["init", "--frontend", "ftp://x", "--backend", "http://b:1", "-o", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "a bad option is a usage error");
    assert!(text(&out.stderr).contains("--frontend"), "{}", text(&out.stderr));
    assert!(!bad.exists());
}

#[test]
fn health_asks_the_running_daemon_and_fails_once_it_is_gone() {
    let mut daemon = common::Daemon::start("[admin]\naddr = \"127.0.0.1:0\"\n[default]\nrespond = { status = 200 }\n");
    let admin = daemon.admin.unwrap();
    let (_dir, path) = write_config(&format!("[admin]\naddr = \"{admin}\"\n[default]\nrespond = {{ status = 200 }}\n"));
    let out = hookgate(&["health", "-c", &path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("answers /healthz"), "{}", text(&out.stdout));
    daemon.signal("TERM");
    daemon.wait_exit(Duration::from_secs(10));
    let out = hookgate(&["health", "-c", &path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot reach the daemon's admin endpoint"), "{}", text(&out.stderr));

    let (_dir, without_admin) = write_config("[default]\nrespond = { status = 200 }\n");
    let out = hookgate(&["health", "-c", &without_admin]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("nothing to ask"), "{}", text(&out.stdout));
}

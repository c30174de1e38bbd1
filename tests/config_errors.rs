//! What `hookgate check` (and `run`, which loads the file the same way) says
//! about a config with mistakes in it, over the real binary: one error per
//! mistake, with no follow-on errors from a key that already failed, each
//! naming its key path and what to write; what it refuses as `run` would; and
//! the table it prints for a good one, in the file's own spelling.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Exit code, stdout and stderr of `hookgate ARGS -c FILE`.
fn hookgate(args: &[&str], file: &Path) -> (Option<i32>, String, String) {
    hookgate_with(args, file, &[])
}

/// The same, with `env` set (and no other socket-activation variables).
fn hookgate_with(args: &[&str], file: &Path, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(args)
        .arg("-c")
        .arg(file)
        .env_remove("HOOKGATE_CONFIG")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes `body` as `hookgate.toml` in `dir`.
fn write(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("hookgate.toml");
    std::fs::write(&path, body).unwrap();
    path
}

/// `check`'s error lines for `body`, asserting it exits 78.
fn refused(body: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), body);
    let (code, stdout, stderr) = hookgate(&["check"], &path);
    assert_eq!(code, Some(78), "stdout: {stdout}\nstderr: {stderr}");
    let prefix = format!("{}:", path.display());
    stderr.lines().map(|line| line.strip_prefix(&prefix).unwrap_or(line).to_string()).collect()
}

const LISTEN: &str = "[listen]\naddrs = [\"127.0.0.1:0\"]\n";

/// Issue 28 §3: a bad backend URL was reported once, then once more as
/// `no upstream named "backend" (defined: frontend)` for every route and the
/// default that name it.
#[test]
fn a_bad_upstream_url_is_one_error_not_one_per_route_that_names_it() {
    let mut body = format!(
        "{LISTEN}[upstreams.frontend]\nurl = \"http://127.0.0.1:3000\"\n[upstreams.backend]\nurl = \"127.0.0.1:7001\"\n"
    );
    for i in 0..10 {
        body.push_str(&format!("[[routes]]\nname = \"r{i}\"\npath = \"/r{i}\"\nupstream = \"backend\"\n"));
    }
    body.push_str("[default]\nupstream = \"backend\"\n");
    let errors = refused(&body);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with("6: upstreams.backend.url: "), "{errors:#?}");
    // A name that is really undefined is still reported, and the broken one counts as defined.
    let errors = refused(&body.replace("upstream = \"backend\"\n[default]", "upstream = \"bakend\"\n[default]"));
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[1].ends_with("routes[9].upstream: no upstream named \"bakend\" (defined: frontend, backend)"));
}

/// Issue 28 §3: a path that does not parse also drew "a route needs at least one match key".
#[test]
fn a_bad_path_or_host_is_one_error() {
    let route = |key: &str| {
        format!(
            "{LISTEN}[upstreams.b]\nurl = \"http://127.0.0.1:7001\"\n[[routes]]\nname = \"a\"\n{key}\nupstream = \"b\"\n"
        )
    };
    let cases = [
        ("path = \"api/x\"", "7: routes[0].path: \"api/x\": path must start with /"),
        ("path_prefix = \"/a/../b\"", "7: routes[0].path_prefix: \"/a/../b\""),
        ("host = \"bad host\"", "7: routes[0].host: invalid host"),
        ("headers = { \"bad name\" = \"x\" }", "7: routes[0].headers.bad name: invalid header name"),
    ];
    for (key, want) in cases {
        let errors = refused(&route(key));
        assert_eq!(errors.len(), 1, "{key}: {errors:#?}");
        assert!(errors[0].starts_with(want), "{key}: {errors:#?}");
    }
    // With no match key at all, that is the mistake, and it is still said.
    let errors = refused(&route("# no match key"));
    assert_eq!(
        errors,
        [
            "5: routes[0]: a route needs at least one match key (host, path, path_prefix, path_regex, methods, headers or query)"
        ]
    );
}

/// Issue 28 §2 and §3: with the webhook route's secret file missing, `check`
/// went on to say `telegram.route: no route named "telegram-webhook"`,
/// although the route is right there.
#[test]
fn a_telegram_route_that_failed_is_not_reported_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "123456:ABC-def_ghi\n").unwrap();
    let body = format!(
        "{LISTEN}[upstreams.backend]\nurl = \"http://127.0.0.1:7001\"\n\
         [[routes]]\nname = \"telegram-webhook\"\npath = \"/api/v1/guest/telegram/webhook\"\nupstream = \"backend\"\n\
         secret_header = {{ name = \"X-Telegram-Bot-Api-Secret-Token\", value_file = \"missing-secret\" }}\n\
         [telegram]\nbot_token_file = \"token\"\npublic_url = \"https://www.example.com\"\nroute = \"telegram-webhook\"\n"
    );
    let path = write(dir.path(), &body);
    let (code, _, stderr) = hookgate(&["check"], &path);
    assert_eq!(code, Some(78), "{stderr}");
    let errors: Vec<&str> = stderr.lines().collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].contains(":9: routes[0].secret_header.value_file: cannot read "), "{errors:#?}");
    // The same file under `run`: the same one error.
    let (code, _, run) = hookgate(&["run"], &path);
    assert_eq!((code, run.as_str()), (Some(78), stderr.as_str()));
    // A route that really is not there is still named.
    std::fs::write(dir.path().join("missing-secret"), "s3cret\n").unwrap();
    let path = write(dir.path(), &body.replace("route = \"telegram-webhook\"", "route = \"telegram\""));
    let (_, _, stderr) = hookgate(&["check"], &path);
    assert!(stderr.contains("telegram.route: no route named \"telegram\" (defined: telegram-webhook)"), "{stderr}");
}

/// A set that failed is not reported again, as "neither a CIDR nor a set", by each route that uses it.
#[test]
fn a_bad_set_is_one_error() {
    let body = format!(
        "{LISTEN}[sets.office]\ncidrs = []\n[upstreams.b]\nurl = \"http://127.0.0.1:7001\"\n\
         [[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"b\"\nallow_from = [\"office\"]\n\
         [[routes]]\nname = \"b\"\npath = \"/b\"\nupstream = \"b\"\nallow_from = [\"office\", \"telegram\"]\n"
    );
    let errors = refused(&body);
    assert_eq!(errors, ["4: sets.office.cidrs: a set needs at least one CIDR"]);
}

/// Issue 28 §4: `check` said `config OK (0 routes, 0 warnings)` and exited 0
/// for an empty file (or one with no listen address), which `run` refused
/// (exit 1, "no listen address"). Now both refuse it alike, exit 78.
#[test]
fn check_refuses_a_config_with_nowhere_to_listen_as_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let bodies = [
        "",
        "[listen]\naddrs = []\n",
        "[upstreams.app]\nurl = \"http://127.0.0.1:3000\"\n[default]\nupstream = \"app\"\n",
    ];
    for body in bodies {
        let path = write(dir.path(), body);
        let (code, stdout, stderr) = hookgate(&["check"], &path);
        assert_eq!(code, Some(78), "{body:?}: {stdout}{stderr}");
        let want = ": listen.addrs: no listen address: set [listen] addrs (or [listen.tls] addrs), \
                    or start hookgate with sockets from systemd (socket activation)";
        assert!(stderr.contains(want), "{body:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        let (run_code, _, run_stderr) = hookgate(&["run"], &path);
        assert_eq!((run_code, run_stderr), (code, stderr), "{body:?}: run refuses it the same way");
    }
    // Sockets systemd passes are somewhere to listen, as `run` counts them:
    // not one named `admin`, nor ones passed to another process.
    let path = write(dir.path(), "[default]\nrespond = { status = 200 }\n");
    let (code, stdout, _) = hookgate_with(&["check"], &path, &[("LISTEN_FDS", "2"), ("LISTEN_FDNAMES", "http:admin")]);
    assert_eq!(code, Some(0), "{stdout}");
    for env in [[("LISTEN_FDS", "1"), ("LISTEN_FDNAMES", "admin")], [("LISTEN_FDS", "1"), ("LISTEN_PID", "1")]] {
        let (code, _, stderr) = hookgate_with(&["check"], &path, &env);
        assert_eq!(code, Some(78), "{env:?}");
        assert!(stderr.contains("listen.addrs: no listen address"), "{env:?}: {stderr}");
    }
}

/// Issue 28 §4: a CIDR with host bits set (`149.154.160.1/20`) was taken
/// silently as its network. It is refused, naming the network it would mean
/// and the one address it might mean instead.
#[test]
fn a_cidr_with_host_bits_set_is_refused_naming_the_network() {
    let route = |allow: &str| {
        format!(
            "{LISTEN}[upstreams.b]\nurl = \"http://127.0.0.1:7001\"\n\
             [[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"b\"\nallow_from = [\"telegram\", {allow:?}]\n"
        )
    };
    let errors = refused(&route("149.154.160.1/20"));
    assert_eq!(
        errors,
        ["9: routes[0].allow_from[1]: \"149.154.160.1/20\" has host bits set: \
          write \"149.154.160.0/20\" for the network, or \"149.154.160.1\" for the one address"]
    );
    let errors = refused(&format!("{LISTEN}trusted_proxies = [\"10.0.0.0/8\", \"2001:db8::1/64\"]\n"));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0]
            .starts_with("3: listen.trusted_proxies[1]: \"2001:db8::1/64\" has host bits set: write \"2001:db8::/64\"")
    );
    let errors = refused(&format!("{LISTEN}[sets.office]\ncidrs = [\"91.108.4.1/22\"]\n"));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with("4: sets.office.cidrs[0]: \"91.108.4.1/22\" has host bits set"), "{errors:#?}");
    // Networks, single addresses and /32s are taken as they are.
    let dir = tempfile::tempdir().unwrap();
    for allow in ["149.154.160.0/20", "149.154.160.1", "149.154.160.1/32", "2001:db8::/64"] {
        let (code, stdout, stderr) = hookgate(&["check"], &write(dir.path(), &route(allow)));
        assert_eq!(code, Some(0), "{allow}: {stdout}{stderr}");
    }
}

/// Issue 28 §4: a syntax error carried no key path (`max_body = 10MiB` said
/// only "string values must be quoted, expected literal string"), and a
/// duplicate key did not say which. Every syntax error now names the file,
/// the line and the key path, and says what to write.
#[test]
fn syntax_errors_name_the_key_path_and_what_to_write() {
    let cases = [
        ("[limits]\nmax_body = 10MiB\n", "4: limits.max_body: \"10MiB\" must be quoted: write max_body = \"10MiB\""),
        ("addrs = []\n", "3: listen.addrs: duplicate key: addrs is already set on line 2"),
        (
            "[listen]\n",
            "3: listen: duplicate table: [listen] is already on line 1; put all its keys under one [listen]",
        ),
        (
            "[[routes]]\nname = \"a\"\npath = \"/a\"\nrespond = { status = 2x }\n",
            "6: routes[0].respond.status: 2x is not a number; write e.g. status = 403",
        ),
        ("trusted_proxies = [\n  \"10.0.0.0/8\",\n  127.0.0.1,\n]\n", "5: listen.trusted_proxies[1]: "),
        ("proxy_protocol = yes\n", "3: listen.proxy_protocol: yes is not true or false; write proxy_protocol = true"),
        ("[log]\nlevel = \"info\n", "4: log.level: "),
        (
            "[upstreams.app]\nurl = http://127.0.0.1:3000\n",
            "4: upstreams.app.url: \"http://127.0.0.1:3000\" must be quoted",
        ),
        (
            "[limits]\nheader_timeout =\n",
            "4: limits.header_timeout: a value is missing after =; write header_timeout = \"10s\"",
        ),
    ];
    for (extra, want) in cases {
        let errors = refused(&format!("{LISTEN}{extra}"));
        assert_eq!(errors.len(), 1, "{extra:?}: {errors:#?}");
        assert!(errors[0].starts_with(want), "{extra:?}\n got: {}\nwant: {want}…", errors[0]);
    }
}

/// Issue 28 §4: `response_timeout = 55` said "invalid type: integer `55`,
/// expected a string" with no example; every type error now gets one, fitted
/// to what was written where that is plain, and no Rust type names.
#[test]
fn type_errors_give_an_example_value() {
    let upstream = "[upstreams.app]\nurl = \"http://127.0.0.1:3000\"\n";
    let cases = [
        (
            format!("{upstream}response_timeout = 55\n"),
            "5: upstreams.app.response_timeout: invalid type: integer `55`, expected a string; write e.g. response_timeout = \"55s\"",
        ),
        (
            format!("{upstream}host_header = 1\n"),
            "5: upstreams.app.host_header: invalid type: expected a string; write e.g. host_header = \"preserve\" (or \"upstream\")",
        ),
        (
            format!("{upstream}http2 = \"yes\"\n"),
            "5: upstreams.app.http2: invalid type: string \"yes\", expected a boolean; write e.g. http2 = true",
        ),
        (
            "[limits]\nmax_connections = \"10000\"\n".to_string(),
            "4: limits.max_connections: invalid type: string \"10000\", expected a whole number; write e.g. max_connections = 10000",
        ),
        (
            "[limits]\nmax_body = 1048576\n".to_string(),
            "4: limits.max_body: invalid type: integer `1048576`, expected a string; write e.g. max_body = \"1MiB\"",
        ),
        ("[admin]\naddr = 9901\n".to_string(), "4: admin.addr: invalid type: integer `9901`"),
        (
            "[[routes]]\nname = \"a\"\npath = \"/a\"\nrespond = 403\n".to_string(),
            "6: routes[0].respond: invalid type: integer `403`, expected a table; write e.g. respond = { status = 403, body = \"forbidden\\n\" }",
        ),
        (
            "[[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"app\"\nrate_limit = { per_second = \"5\" }\n"
                .to_string(),
            "7: routes[0].rate_limit.per_second: invalid type: string \"5\", expected a number; write e.g. per_second = 5",
        ),
    ];
    for (extra, want) in &cases {
        let errors = refused(&format!("{LISTEN}{extra}"));
        assert_eq!(errors.len(), 1, "{extra:?}: {errors:#?}");
        assert!(errors[0].starts_with(want), "{extra:?}\n got: {}\nwant: {want}…", errors[0]);
        assert!(errors[0].contains("write e.g. "), "{}", errors[0]);
        assert!(
            !errors[0].contains("Raw") && !errors[0].contains("usize") && !errors[0].contains("f64"),
            "{}",
            errors[0]
        );
    }
}

/// Issue 28 §9: the table printed Rust names (`host_header Preserve`,
/// `per ClientIp`), said "1 warnings", and `hookgate route` did not list the
/// dedupe guard. Now the table uses the file's spelling, counts in English,
/// and `route` lists every guard.
#[test]
fn check_prints_the_config_spelling_and_route_lists_the_dedupe_guard() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{LISTEN}[upstreams.backend]\nurl = \"http://127.0.0.1:7001\"\nhost_header = \"upstream\"\nresponse_timeout = \"90s\"\n\
         [[routes]]\nname = \"hook\"\npath = \"/hook\"\nmethods = [\"POST\"]\nupstream = \"backend\"\n\
         rate_limit = {{ per_second = 20, burst = 50 }}\nmax_body = \"1MiB\"\n\
         dedupe = {{ key = \"telegram_update_id\", window = \"10m\" }}\n\
         [upstreams.frontend]\nurl = \"http://127.0.0.1:3000\"\n"
    );
    let path = write(dir.path(), &body);
    let (code, stdout, stderr) = hookgate(&["check"], &path);
    assert_eq!(code, Some(0), "{stderr}");
    for want in [
        "upstream backend: http://127.0.0.1:7001 (connect_timeout = \"3s\", response_timeout = \"1m 30s\", host_header = \"upstream\")",
        "upstream frontend: http://127.0.0.1:3000 (connect_timeout = \"3s\", response_timeout = \"1m\", host_header = \"preserve\")",
        "       rate_limit = { per_second = 20, burst = 50, key = \"client_ip\", max_keys = 100000 }",
        "       max_body = \"1MiB\"",
        "       dedupe = { key = \"telegram_update_id\", window = \"10m\", max_keys = 100000 }",
        "config OK (1 route, 0 warnings)",
    ] {
        assert!(stdout.lines().any(|line| line == want), "want the line {want:?} in\n{stdout}");
    }
    for rust in ["Preserve", "Upstream", "ClientIp", "600s"] {
        assert!(!stdout.contains(rust), "{rust:?} in\n{stdout}");
    }
    // One warning is "1 warning"; two routes are "2 routes".
    let shadowed = body.replace(
        "[upstreams.frontend]",
        "[[routes]]\nname = \"later\"\npath = \"/hook\"\nmethods = [\"POST\"]\nupstream = \"frontend\"\n[upstreams.frontend]",
    );
    let (_, stdout, _) = hookgate(&["check"], &write(dir.path(), &shadowed));
    assert!(stdout.ends_with("config OK (2 routes, 1 warning)\n"), "{stdout}");

    let out = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["route", "-c"])
        .arg(&path)
        .args(["POST", "http://www.example.com/hook"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("  rate_limit: 20 per second, burst 50, key \"client_ip\" (429 above)"), "{stdout}");
    assert!(
        stdout.contains("  dedupe: key \"telegram_update_id\", window 10m: a repeat of a request the backend already answered with 2xx is answered here with that answer (status, Content-Type, a body of up to 4 KiB) and not forwarded again"),
        "{stdout}"
    );
    assert!(stdout.contains("=> route hook -> upstream backend"), "{stdout}");
}

/// A guarded exact path whose twins (`/hook/`, `/index.php/hook`) go,
/// unguarded, to the same server (a probe skipped `allow_from` and `dedupe`
/// this way on the compose example, where frontend and backend are one
/// XBoard): `check` warns, also when a `host` route takes the twin; routes
/// for the twins silence it, and so does another server.
#[test]
fn check_warns_when_a_twin_path_skips_a_routes_guards() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{LISTEN}[upstreams.backend]\nurl = \"http://127.0.0.1:7001\"\n[upstreams.frontend]\nurl = \"http://127.0.0.1:7001\"\n\
         [[routes]]\nname = \"hook\"\npath = \"/hook\"\nmethods = [\"POST\"]\nupstream = \"backend\"\nallow_from = [\"10.0.0.0/8\"]\n\
         [default]\nupstream = \"frontend\"\n"
    );
    let warned = |body: &str| {
        let (code, stdout, stderr) = hookgate(&["check"], &write(dir.path(), body));
        assert_eq!(code, Some(0), "{stderr}");
        stdout.lines().filter(|l| l.contains("the same server")).map(str::to_string).collect::<Vec<_>>()
    };
    let warning = warned(&body);
    assert!(
        warning.len() == 1 && warning[0].starts_with("warning: route hook: /hook/ goes through [default]"),
        "{warning:?}"
    );
    let twins = "[[routes]]\nname = \"slash\"\npath = \"/hook/\"\nrespond = { status = 404 }\n\
        [[routes]]\nname = \"php\"\npath_prefix = \"/index.php\"\nrespond = { status = 404 }\n[default]";
    let warning = warned(&body.replace(
        "[default]",
        "[[routes]]\nname = \"slash\"\npath = \"/hook/\"\nrespond = { status = 404 }\n[default]",
    ));
    assert!(warning.len() == 1 && warning[0].contains("/index.php/hook goes through [default]"), "{warning:?}");
    assert_eq!(warned(&body.replace("[default]", twins)), Vec::<String>::new());
    // A backend's own name before the twins' routes: its host route takes the twins sent to that name.
    let api = "[[routes]]\nname = \"api\"\nhost = \"api.example\"\nupstream = \"backend\"\n";
    let warning = warned(&body.replace("[default]", &format!("{api}{twins}")));
    assert!(warning.len() == 1 && warning[0].contains("/hook/ for api.example goes through route api"), "{warning:?}");
    let frontend = "[upstreams.frontend]\nurl = \"http://127.0.0.1:7001\"";
    let elsewhere = body.replace(frontend, "[upstreams.frontend]\nurl = \"http://127.0.0.1:3000\"");
    assert_eq!(warned(&elsewhere), Vec::<String>::new(), "another server");
}

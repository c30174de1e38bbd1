//! Config validation: every error names the file, line and key path.

use super::*;
use crate::guards::RateKey;
use http::StatusCode;

const BASE: &str = r#"
[listen]
addrs = ["127.0.0.1:0"]

[upstreams.frontend]
url = "http://127.0.0.1:3000"

[upstreams.backend]
url = "http://127.0.0.1:7001"
"#;

pub(super) fn load(extra: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(&format!("{BASE}{extra}"), "hookgate.toml")
}

fn error(extra: &str) -> String {
    load(extra).expect_err("config should be rejected").to_string()
}

#[test]
fn the_shipped_configs_are_valid() {
    for file in ["config/hookgate.toml", "config/xboard.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn defaults_apply_when_limits_are_absent() {
    let config = load("[default]\nupstream = \"frontend\"\n").unwrap();
    assert_eq!(config.limits.header_timeout, Duration::from_secs(10));
    assert_eq!(config.limits.send_timeout, Duration::from_secs(60));
    assert_eq!(config.limits.max_body, 10 * 1024 * 1024);
    assert_eq!(config.limits.max_header_bytes, 32 * 1024);
    assert_eq!(config.upstreams[1].connect_timeout, Duration::from_secs(3));
    assert_eq!(config.upstreams[1].host_header, HostHeader::Preserve);
    assert_eq!(config.log.format, LogFormat::Text);
}

#[test]
fn limits_parse_durations_and_sizes() {
    let config = load("[limits]\nheader_timeout = \"750ms\"\nmax_body = \"64KiB\"\nshutdown_grace = \"5m\"\n").unwrap();
    assert_eq!(config.limits.header_timeout, Duration::from_millis(750));
    assert_eq!(config.limits.max_body, 64 * 1024);
    assert_eq!(config.limits.shutdown_grace, Duration::from_secs(300));
}

#[test]
fn undefined_upstream_names_the_line_and_the_choices() {
    let extra = "\n[[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"backend\"\n\n[[routes]]\nname = \"b\"\npath = \"/b\"\nupstream = \"backend\"\n\n[[routes]]\nname = \"c\"\npath = \"/c\"\nupstream = \"backnd\"\n";
    assert_eq!(
        error(extra),
        "hookgate.toml:24: routes[2].upstream: no upstream named \"backnd\" (defined: frontend, backend)"
    );
}

#[test]
fn errors_name_file_line_and_key() {
    let cases: &[(&str, &str)] = &[
        ("[limits]\nheader_timeout = \"10 parsecs\"\n", "hookgate.toml:11: limits.header_timeout: invalid duration"),
        ("[limits]\nmax_body = \"lots\"\n", "hookgate.toml:11: limits.max_body: invalid size"),
        ("[limits]\nsend_timeout = \"0s\"\n", "hookgate.toml:11: limits.send_timeout: must be greater than zero"),
        ("[limits]\nmax_header_bytes = \"1000\"\n", "hookgate.toml:11: limits.max_header_bytes: must be at least 1KiB"),
        ("[limits]\nmax_connections = \"many\"\n", "hookgate.toml:11: limits.max_connections: invalid type"),
        ("[limits]\nbogus = 1\n", "hookgate.toml:11: limits.bogus: unknown field `bogus`"),
        ("[listen]\n", "hookgate.toml:10: listen: duplicate table: [listen] is already on line 2"),
        (
            "[limits]\nmax_body = 10MiB\n",
            "hookgate.toml:11: limits.max_body: \"10MiB\" must be quoted: write max_body = \"10MiB\"",
        ),
        (
            "[[routes]]\nname = \"a\"\nupstream = \"backend\"\n",
            "hookgate.toml:10: routes[0]: a route needs at least one match key",
        ),
        (
            "[[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"backend\"\nrespond = { status = 200 }\n",
            "hookgate.toml:10: routes[0]: set exactly one of upstream and respond",
        ),
        ("[[routes]]\nname = \"a\"\npath = \"/a\"\n", "hookgate.toml:10: routes[0]: needs an action"),
        (
            "[[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"backend\"\n[[routes]]\nname = \"a\"\npath = \"/b\"\nupstream = \"backend\"\n",
            "hookgate.toml:15: routes[1].name: duplicate route name \"a\"",
        ),
        (
            "[[routes]]\nname = \"a\"\npath = \"a\"\nupstream = \"backend\"\n",
            "hookgate.toml:12: routes[0].path: \"a\": path must start with /",
        ),
        (
            "[[routes]]\nname = \"a\"\npath = \"//a\"\nupstream = \"backend\"\n",
            "hookgate.toml:12: routes[0].path: \"//a\" is not in canonical form; write \"/a\"",
        ),
        (
            "[[routes]]\nname = \"a\"\npath_regex = \"(\"\nupstream = \"backend\"\n",
            "hookgate.toml:12: routes[0].path_regex: invalid regex",
        ),
        (
            "[[routes]]\nname = \"a\"\nhost = \"bad host\"\nupstream = \"backend\"\n",
            "hookgate.toml:12: routes[0].host: invalid host",
        ),
        (
            "[[routes]]\nname = \"a\"\nmethods = [\"G T\"]\nupstream = \"backend\"\n",
            "hookgate.toml:12: routes[0].methods[0]: invalid method",
        ),
        (
            "[[routes]]\nname = \"a\"\npath = \"/a\"\nrespond = { status = 99 }\n",
            "hookgate.toml:13: routes[0].respond.status: status must be 200-599",
        ),
        ("[upstreams.x]\nurl = \"ftp://h\"\n", "hookgate.toml:11: upstreams.x.url: scheme"),
        (
            "[upstreams.x]\nurl = \"http://h/base\"\n",
            "hookgate.toml:11: upstreams.x.url: \"http://h/base\" must be scheme://host[:port]",
        ),
        (
            "[upstreams.x]\nurl = \"http://h\"\nhost_header = \"mine\"\n",
            "hookgate.toml:12: upstreams.x.host_header: unknown variant `mine`",
        ),
        ("[default]\nupstream = \"nope\"\n", "hookgate.toml:11: default.upstream: no upstream named \"nope\""),
        ("[log]\nformat = \"xml\"\n", "hookgate.toml:11: log.format: unknown variant `xml`"),
        ("[runtime]\nworkers = 0\n", "hookgate.toml:11: runtime.workers: must be 1 to 1024, got 0"),
        (
            "[[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"backend\"\nallow_from = [\"telegram\", \"offce\"]\n",
            "hookgate.toml:14: routes[0].allow_from[1]: \"offce\" is neither a CIDR nor a set (sets: cloudflare, telegram)",
        ),
        (
            "[[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"backend\"\nrate_limit = { per_second = 0 }\n",
            "hookgate.toml:14: routes[0].rate_limit.per_second: must be above 0",
        ),
        (
            "[[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"backend\"\nsecret_header = { name = \"X-S\", value_file = \"/nonexistent/secret\" }\n",
            "hookgate.toml:14: routes[0].secret_header.value_file: cannot read /nonexistent/secret",
        ),
        (
            "[[routes]]\nname = \"a\"\npath = \"/a\"\nrespond = { status = 200 }\nmax_in_flight = 3\n",
            "hookgate.toml:10: routes[0]: guards (allow_from, secret_header, ...) only apply to routes with an upstream",
        ),
        ("[sets.telegram]\ncidrs = [\"10.0.0.0/8\"]\n", "hookgate.toml:10: sets.telegram: \"telegram\" is built in"),
        (
            "[[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"backend\"\ndedupe = { key = \"telegram_update_id\", window = \"0s\" }\n",
            "hookgate.toml:14: routes[0].dedupe: window and max_keys must be above 0",
        ),
        (
            "[[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"backend\"\ndedupe = { key = \"message_id\" }\n",
            "hookgate.toml:14: routes[0].dedupe.key: unknown key \"message_id\": write \"telegram_update_id\", \"json:/pointer\", \"form:NAME\", \"query:NAME\" or \"header:NAME\"",
        ),
        (
            "[[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"backend\"\ndedupe = { key = \"json:id\" }\n",
            "hookgate.toml:14: routes[0].dedupe.key: a json: pointer must start with / (RFC 6901), got \"id\"",
        ),
        (
            "[[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"backend\"\ndedupe = { key = \"json:/a~2\" }\n",
            "hookgate.toml:14: routes[0].dedupe.key: invalid ~ escape in json pointer \"/a~2\"",
        ),
        (
            "[[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"backend\"\ndedupe = { key = \"form:\" }\n",
            "hookgate.toml:14: routes[0].dedupe.key: form: needs a name after the colon",
        ),
        (
            "[[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"backend\"\n\ndedupe = { key = \"header:X Id\" }\n",
            "hookgate.toml:15: routes[0].dedupe.key: invalid header name \"X Id\"",
        ),
    ];
    for (extra, want) in cases {
        let got = error(extra);
        assert!(got.starts_with(want), "for {extra:?}\n got: {got}\nwant: {want}…");
    }
}

/// `trusted_proxies` takes CIDRs and set names, built in or `[sets.NAME]`,
/// with the errors `allow_from` gives.
#[test]
fn trusted_proxies_take_sets_with_allow_froms_errors() {
    let listen =
        |list: &str| format!("[listen]\naddrs = []\ntrusted_proxies = {list}\n[sets.lb]\ncidrs = [\"10.1.0.0/16\"]\n");
    let config = Config::from_toml_str(&listen(r#"["cloudflare", "127.0.0.1", "lb"]"#), "h.toml").unwrap();
    let trusted = &config.listen.trusted_proxies;
    for (ip, want) in [("104.16.0.1", true), ("2606:4700::1", true), ("127.0.0.1", true), ("10.1.2.3", true)] {
        assert_eq!(trusted.contains(ip.parse().unwrap()), want, "{ip}");
    }
    assert!(!trusted.contains("127.0.0.2".parse().unwrap()));
    assert_eq!(config.listen.trusted_proxy_names, ["cloudflare", "127.0.0.1", "lb"]);
    // IPv4-mapped entries mean their IPv4 addresses (found by a probe: they matched nothing).
    let config = Config::from_toml_str(&listen(r#"["::ffff:127.0.0.3", "::ffff:10.9.9.0/120"]"#), "h.toml").unwrap();
    for (ip, want) in [("127.0.0.3", true), ("10.9.9.9", true), ("10.9.8.9", false), ("::ffff:10.9.9.9", true)] {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        assert_eq!(config.listen.trusted_proxies.contains(ip.to_canonical()), want, "{ip}");
    }
    let cases = [
        (
            r#"["cloudflare", "cloudfare"]"#,
            "h.toml:3: listen.trusted_proxies[1]: \"cloudfare\" is neither a CIDR nor a set (sets: cloudflare, lb, telegram)",
        ),
        (r#"["10.0.0.1/8"]"#, "h.toml:3: listen.trusted_proxies[0]: \"10.0.0.1/8\" has host bits set"),
    ];
    for (list, want) in cases {
        let got = Config::from_toml_str(&listen(list), "h.toml").unwrap_err().to_string();
        assert!(got.starts_with(want), "for {list}\n got: {got}\nwant: {want}…");
    }
    let redefined = "[sets.cloudflare]\ncidrs = [\"10.0.0.0/8\"]\n";
    assert!(
        error(redefined).starts_with("hookgate.toml:10: sets.cloudflare: \"cloudflare\" is built in"),
        "{}",
        error(redefined)
    );
}

#[test]
fn proxy_protocol_needs_trusted_proxies() {
    let err = Config::from_toml_str("[listen]\naddrs = []\nproxy_protocol = true\n", "h.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "h.toml:3: listen.proxy_protocol: PROXY headers are only read from trusted_proxies, and none are set"
    );
}

#[test]
fn secret_files_are_read_relative_to_the_config_and_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "abc_DEF-123\n").unwrap();
    let file = dir.path().join("hookgate.toml");
    let route = "[[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"backend\"\nsecret_header = { name = \"X-S\", value_file = \"secret.txt\" }\n";
    let config = Config::from_toml_str(&format!("{BASE}{route}"), &file.display().to_string()).unwrap();
    let secret = config.routes.routes()[0].guards.secret_header.as_ref().unwrap();
    assert!(secret.value.matches(b"abc_DEF-123") && secret.strip);
    assert!(!format!("{config:?}").contains("abc_DEF"), "the secret must not show in Debug output");
    std::fs::write(dir.path().join("secret.txt"), "\n").unwrap();
    let err = Config::from_toml_str(&format!("{BASE}{route}"), &file.display().to_string()).unwrap_err().to_string();
    assert!(err.contains("must hold one non-empty line"), "{err}");
}

#[test]
fn a_missing_default_answers_404() {
    let config = load("").unwrap();
    match config.routes.default_action() {
        crate::routes::Action::Respond(local) => assert_eq!(local.status, StatusCode::NOT_FOUND),
        other => panic!("unexpected default {other:?}"),
    }
}

#[test]
fn unreadable_files_are_reported_with_their_path() {
    let err = Config::load(Path::new("/nonexistent/hookgate.toml")).unwrap_err().to_string();
    assert!(err.starts_with("/nonexistent/hookgate.toml: cannot read:"), "{err}");
}

#[test]
fn telegram_table_errors_name_the_key_and_never_the_token() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "123:SECRET-token_value\n").unwrap();
    let file = dir.path().join("hookgate.toml").display().to_string();
    let route = "[[routes]]\nname = \"hook\"\npath = \"/hook\"\nupstream = \"backend\"\n";
    let table = |extra: &str| {
        format!(
            "{BASE}{route}[telegram]\nbot_token_file = \"token\"\npublic_url = \"https://www.example.com\"\nroute = \"hook\"\n{extra}"
        )
    };
    let config = Config::from_toml_str(&table(""), &file).unwrap();
    let telegram = config.telegram.as_ref().unwrap();
    assert_eq!(
        telegram.webhook_url(),
        format!("https://www.example.com/hook?access_token={}", telegram.token.xboard_access_token())
    );
    assert!(!format!("{config:?}").contains("SECRET-token"));

    let cases = [
        ("api_url = \"http://api.telegram.org\"\n", "telegram.api_url: \"http://api.telegram.org\" must be https://"),
        ("max_connections = 500\n", "telegram.max_connections: Telegram accepts 1 to 100"),
        ("secret_header_from_route = true\n", "telegram.secret_header_from_route: route \"hook\" has no secret_header"),
        ("monitor_interval = \"soon\"\n", "telegram.monitor_interval: invalid duration"),
    ];
    for (extra, want) in cases {
        let err = Config::from_toml_str(&table(extra), &file).unwrap_err().to_string();
        assert!(err.contains(want), "{extra}: {err}");
        assert!(!err.contains("SECRET-token"), "{err}");
    }
    let err = Config::from_toml_str(&table("").replace("route = \"hook\"", "route = \"nope\""), &file).unwrap_err();
    assert!(err.to_string().contains("telegram.route: no route named \"nope\" (defined: hook)"), "{err}");
    std::fs::write(dir.path().join("token"), "not a token\n").unwrap();
    let err = Config::from_toml_str(&table(""), &file).unwrap_err().to_string();
    assert!(err.contains("does not hold a bot token") && !err.contains("not a token"), "{err}");
    std::fs::write(dir.path().join("token"), "123:SECRET-token_value\n").unwrap();
    let off = Config::from_toml_str(&table("monitor_interval = \"0\"\n"), &file).unwrap();
    assert!(off.telegram.unwrap().monitor_interval.is_zero(), "\"0\" turns the monitor off");
}

#[test]
fn acme_settings_are_checked_and_defaulted() {
    let table = |keys: &str| format!("[listen.tls]\naddrs = [\"127.0.0.1:0\"]\n[listen.tls.acme]\n{keys}\n");
    let cases: &[(&str, &str)] = &[
        ("domains = []", "hookgate.toml:13: listen.tls.acme.domains: at least one domain is needed"),
        (
            "domains = [\"*.shop.test\"]",
            "hookgate.toml:13: listen.tls.acme.domains[0]: \"*.shop.test\" is a wildcard: wildcards need the dns-01 challenge",
        ),
        (
            "domains = [\"shop\"]",
            "hookgate.toml:13: listen.tls.acme.domains[0]: \"shop\" is not a fully qualified DNS name",
        ),
        ("domains = [\"10.0.0.1\"]", "hookgate.toml:13: listen.tls.acme.domains[0]: \"10.0.0.1\" is an IP address"),
        (
            "domains = [\"a.test\", \"A.test\"]",
            "hookgate.toml:13: listen.tls.acme.domains[1]: \"A.test\" is listed twice",
        ),
        (
            "domains = [\"a.test\"]\nchallenge = \"dns-01\"",
            "hookgate.toml:14: listen.tls.acme.challenge: \"dns-01\": expected \"tls-alpn-01\" or \"http-01\"",
        ),
        (
            "domains = [\"a.test\"]\ndirectory = \"http://ca.test/dir\"",
            "hookgate.toml:14: listen.tls.acme.directory: \"http://ca.test/dir\" is not an https:// URL",
        ),
        (
            "domains = [\"a.test\"]\ncontact = \"ops\"",
            "hookgate.toml:14: listen.tls.acme.contact: \"mailto:ops\" is not an e-mail address",
        ),
        (
            "domains = [\"a.test\"]\nca_file = \"/nonexistent/ca.pem\"",
            "hookgate.toml:14: listen.tls.acme.ca_file: cannot read /nonexistent/ca.pem",
        ),
        ("domains = [\"a.test\"]\nrenew = true", "hookgate.toml:14: listen.tls.acme.renew: unknown field `renew`"),
    ];
    for (keys, want) in cases {
        let got = error(&table(keys));
        assert!(got.starts_with(want), "for {keys:?}\n got: {got}\nwant: {want}…");
    }
    assert!(
        error("[listen.tls]\naddrs = []\n")
            .contains("listen.tls.certificates: at least one { cert_file, key_file } (or [listen.tls.acme])")
    );

    let cache = tempfile::tempdir().unwrap();
    let keys =
        format!("domains = [\"Shop.test\"]\ncontact = \"ops@shop.test\"\ncache_dir = \"{}\"", cache.path().display());
    let config = load(&table(&keys)).unwrap();
    let acme = config.listen.tls.unwrap().acme.unwrap();
    let settings = acme.settings();
    assert_eq!(settings.domains, vec!["shop.test"]);
    assert_eq!(settings.contact.as_deref(), Some("mailto:ops@shop.test"));
    assert_eq!(settings.directory, "https://acme-v02.api.letsencrypt.org/directory");
    assert_eq!(settings.challenge, crate::tls::Challenge::TlsAlpn01);
    assert!(acme.current().is_none(), "nothing cached yet");
    assert_eq!(acme.folder(), cache.path().join("acme-v02.api.letsencrypt.org_directory"));
    // The same table again (a reload) gets the same store, and with it the running client task.
    let again = load(&table(&keys)).unwrap().listen.tls.unwrap().acme.unwrap();
    assert!(std::sync::Arc::ptr_eq(&acme, &again));
    let staging = keys.replace("contact", "directory = \"letsencrypt-staging\"\ncontact");
    let other = load(&table(&staging)).unwrap().listen.tls.unwrap().acme.unwrap();
    assert!(!std::sync::Arc::ptr_eq(&acme, &other), "a changed table gets its own store");
    assert_eq!(other.settings().directory, "https://acme-staging-v02.api.letsencrypt.org/directory");
}

#[test]
fn systemd_proxy_sockets_are_counted_as_run_takes_them() {
    let count = |fds: &str, pid: Option<&str>, names: Option<&str>| {
        proxy_sockets(Some(fds.to_string()), pid.map(str::to_string), names.map(str::to_string), 42)
    };
    assert_eq!(proxy_sockets(None, None, None, 42), 0);
    assert_eq!(count("2", None, None), 2);
    assert_eq!(count("2", Some("42"), Some("http:admin")), 1);
    assert_eq!(count("1", Some("42"), Some("admin")), 0, "an admin socket alone serves no proxy");
    assert_eq!(count("2", Some("7"), None), 0, "sockets for another process");
    assert_eq!(count("x", None, None), 0);
}

#[test]
fn the_spelling_check_prints_is_the_spelling_the_file_takes() {
    #[derive(serde::Deserialize)]
    struct Keys {
        host_header: HostHeader,
        key: RateKey,
    }
    for (host_header, key) in [(HostHeader::Preserve, RateKey::ClientIp), (HostHeader::Upstream, RateKey::Route)] {
        let text = format!("host_header = \"{}\"\nkey = \"{}\"\n", host_header.as_str(), key.as_str());
        let read: Keys = toml::from_str(&text).unwrap();
        assert_eq!((read.host_header, read.key), (host_header, key));
    }
    let config = load("[[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"backend\"\nmax_body = \"64KiB\"\nmax_in_flight = 3\nallow_from = [\"telegram\", \"10.0.0.0/8\"]\n").unwrap();
    assert_eq!(
        guards_as_written(&config.routes.routes()[0].guards),
        ["allow_from = [\"telegram\", \"10.0.0.0/8\"]", "max_body = \"64KiB\"", "max_in_flight = 3"]
    );
}

#[test]
fn dedupe_keys_are_written_back_as_the_file_writes_them() {
    for key in [
        "telegram_update_id",
        "json:/data/object/id",
        "json:/a~1b",
        "form:out_trade_no",
        "query:id",
        "header:x-request-id",
    ] {
        let route = format!(
            "[[routes]]\nname = \"a\"\npath = \"/a\"\nupstream = \"backend\"\ndedupe = {{ key = \"{key}\", window = \"10m\" }}\n"
        );
        let config = load(&route).unwrap();
        let written = crate::config::guards_as_written(&config.routes.routes()[0].guards);
        assert_eq!(written, [format!("dedupe = {{ key = \"{key}\", window = \"10m\", max_keys = 100000 }}")]);
    }
}

#[test]
fn acme_in_a_cluster_needs_the_encryption_key() {
    let acme = "[listen.tls]\naddrs = [\"127.0.0.1:0\"]\n[listen.tls.acme]\ndomains = [\"a.test\"]\n";
    let cluster = "[cluster]\nredis = \"redis://127.0.0.1:6379/0\"\nnode = \"edge-1\"\n";
    let got = error(&format!("{acme}{cluster}"));
    assert!(got.contains("cluster.encryption_key_file: is required with [listen.tls.acme]"), "{got}");
    assert!(load(cluster).is_ok(), "without ACME, the key file is optional");
}

/// Request header names with `_` are dropped before any rule reads them, so
/// a rule that names one could never match: refused, saying why.
#[test]
fn rules_cannot_name_request_headers_with_underscores() {
    let routes = [
        "headers = { X_Role = \"admin\" }\nrespond = { status = 403 }",
        "upstream = \"backend\"\nsecret_header = { name = \"X_Secret\", value_file = \"/dev/null\" }",
        "upstream = \"backend\"\ndedupe = { key = \"header:X_Id\" }",
    ];
    for route in routes {
        let got = error(&format!("[[routes]]\nname = \"a\"\npath = \"/a\"\n{route}\n"));
        assert!(got.contains("X_"), "{route}: {got}");
    }
}

//! Values that passed `check` and then failed when served: each is refused,
//! naming the line and key.

use super::tests::load;

/// Found by a probe (2026-12-08): each of these passed `check`, then failed
/// every request, panicked at start or on reload, or could never match.
#[test]
fn values_that_could_only_fail_when_served_are_refused() {
    let route = |extra: &str| format!("[[routes]]\nname = \"a\"\npath = \"/a\"\n{extra}");
    let cases: &[(String, &str)] = &[
        (
            "[limits]\nmax_connections = 3000000000000000000\n".into(),
            "11: limits.max_connections: must be between 1 and",
        ),
        ("[limits]\nmax_uri_bytes = \"0\"\n".into(), "11: limits.max_uri_bytes: must be at least 1 byte"),
        (
            route("upstream = \"backend\"\nmax_in_flight = 9223372036854775807\n"),
            "14: routes[0].max_in_flight: must be between",
        ),
        (
            "[upstreams.x]\nurl = \"http://127.0.0.1:99999\"\n".into(),
            "11: upstreams.x.url: port \"99999\" is not a port",
        ),
        ("[upstreams.x]\nurl = \"http://127.0.0.1:0\"\n".into(), "11: upstreams.x.url: port \"0\" is not a port"),
        (
            "[upstreams.x]\nurl = \"http://h#frag\"\n".into(),
            "11: upstreams.x.url: \"http://h#frag\" must be scheme://host",
        ),
        ("[upstreams.\"-\"]\nurl = \"http://h\"\n".into(), "10: upstreams.-: name \"-\": use letters"),
        (
            route("upstream = \"backend\"\n").replace("\"a\"", "\"a\\nforged\""),
            "11: routes[0].name: name \"a\\nforged\"",
        ),
        (route("upstream = \"backend\"\nmethods = []\n"), "14: routes[0].methods: an empty list matches no request"),
        (
            "[[routes]]\nname = \"a\"\nhost = \"*\"\nupstream = \"backend\"\n".into(),
            "12: routes[0].host: invalid host \"*\"",
        ),
        (
            "[[routes]]\nname = \"a\"\nhost = \"a.*.com\"\nupstream = \"backend\"\n".into(),
            "12: routes[0].host: invalid host",
        ),
        (route("respond = { status = 204, body = \"hello\" }\n"), "13: routes[0].respond.body: a 204 has no body"),
        (
            route("respond = { status = 200, headers = { \"content-length\" = \"99\" } }\n"),
            "13: routes[0].respond.headers.content-length: \"content-length\" is not set by hand",
        ),
        ("[admin]\naddr = \"127.0.0.1:4309\"\n".into(), ""),
        (
            "[listen.redirect]\naddrs = [\"0.0.0.0:4309\"]\n[admin]\naddr = \"127.0.0.1:4309\"\n".into(),
            "13: admin.addr: 127.0.0.1:4309 clashes with listen.redirect.addrs[0]",
        ),
    ];
    for (extra, want) in cases {
        match load(extra) {
            Ok(_) => assert!(want.is_empty(), "{extra:?} should be refused with {want:?}"),
            Err(e) => assert!(!want.is_empty() && e.to_string().contains(want), "{extra:?}: {e}"),
        }
    }
}

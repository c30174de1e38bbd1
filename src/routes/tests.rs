//! Route selection: table-driven, with the negative cases next to the positive ones.

use http::{HeaderMap, Method};

use crate::config::Config;

const CONFIG: &str = r#"
[upstreams.frontend]
url = "http://127.0.0.1:3000"
[upstreams.backend]
url = "http://127.0.0.1:7001"

[[routes]]
name = "webhook"
path = "/api/v1/guest/telegram/webhook"
methods = ["POST"]
upstream = "backend"

[[routes]]
name = "notify"
path_prefix = "/api/v1/guest/payment/notify/"
upstream = "backend"

[[routes]]
name = "api-host"
host = "api.example.com"
upstream = "backend"

[[routes]]
name = "wild"
host = "*.nodes.example.com"
upstream = "backend"

[[routes]]
name = "needs-header"
path = "/hdr"
headers = { "x-token" = "abc", "x-any" = "*" }
upstream = "backend"

[[routes]]
name = "needs-query"
path = "/q"
query = { access_token = "*", mode = "a b" }
upstream = "backend"

[[routes]]
name = "regex"
path_regex = "^/s/[A-Za-z0-9]+$"
upstream = "backend"

[[routes]]
name = "root-prefix-post"
path_prefix = "/"
methods = ["PUT"]
respond = { status = 405 }

[default]
upstream = "frontend"
"#;

struct Case {
    method: &'static str,
    host: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
    want: &'static str,
}

const fn case(method: &'static str, host: &'static str, path: &'static str, want: &'static str) -> Case {
    Case { method, host, path, query: None, headers: &[], want }
}

fn select_name(config: &Config, c: &Case) -> String {
    let method: Method = c.method.parse().unwrap();
    let mut headers = HeaderMap::new();
    for (k, v) in c.headers {
        headers.append(http::HeaderName::from_static(k), v.parse().unwrap());
    }
    let facts = super::RequestFacts { method: &method, host: c.host, path: c.path, query: c.query, headers: &headers };
    let selected = config.routes.select(&facts);
    // Selection through the index must agree with the plain linear walk.
    let linear = config.routes.explain(&facts).chosen;
    assert_eq!(selected.route.map(|r| r.name.to_string()), linear.map(|i| config.routes.routes()[i].name.to_string()));
    selected.route.map_or("default".to_string(), |r| r.name.to_string())
}

#[test]
fn selection_table() {
    let config = Config::from_toml_str(CONFIG, "test.toml").unwrap();
    let cases = [
        case("POST", "www.example.com", "/api/v1/guest/telegram/webhook", "webhook"),
        case("GET", "www.example.com", "/api/v1/guest/telegram/webhook", "default"),
        case("POST", "www.example.com", "/api/v1/guest/telegram/webhook/", "default"),
        case("POST", "www.example.com", "/api/v1/guest/telegram/webhooks", "default"),
        case("POST", "www.example.com", "/api/v1/guest/telegram", "default"),
        case("GET", "www.example.com", "/api/v1/guest/payment/notify/epay/123", "notify"),
        case("POST", "www.example.com", "/api/v1/guest/payment/notify", "notify"),
        case("POST", "www.example.com", "/api/v1/guest/payment/notifyx", "default"),
        case("POST", "www.example.com", "/api/v1/guest/payment/notif", "default"),
        case("GET", "api.example.com", "/anything", "api-host"),
        case("GET", "xapi.example.com", "/anything", "default"),
        case("GET", "a.nodes.example.com", "/", "wild"),
        case("GET", "a.b.nodes.example.com", "/", "wild"),
        case("GET", "nodes.example.com", "/", "default"),
        case("GET", "xnodes.example.com", "/", "default"),
        case("GET", "w", "/s/abc123", "regex"),
        case("GET", "w", "/s/abc/def", "default"),
        case("PUT", "w", "/anything/at/all", "root-prefix-post"),
        case("PUT", "w", "/", "root-prefix-post"),
        // Earlier routes still win over the catch-all prefix.
        case("PUT", "api.example.com", "/x", "api-host"),
    ];
    for c in &cases {
        assert_eq!(select_name(&config, c), c.want, "{} {} {}", c.method, c.host, c.path);
    }
}

#[test]
fn header_and_query_matchers() {
    let config = Config::from_toml_str(CONFIG, "test.toml").unwrap();
    let with = |headers: &'static [(&'static str, &'static str)], query: Option<&'static str>, path, want| Case {
        method: "GET",
        host: "w",
        path,
        query,
        headers,
        want,
    };
    let cases = [
        with(&[("x-token", "abc"), ("x-any", "")], None, "/hdr", "needs-header"),
        with(&[("x-token", "abd"), ("x-any", "1")], None, "/hdr", "default"),
        with(&[("x-token", "abc")], None, "/hdr", "default"),
        with(&[("x-token", "ABC"), ("x-any", "1")], None, "/hdr", "default"),
        with(&[], Some("access_token=x&mode=a+b"), "/q", "needs-query"),
        with(&[], Some("access%5Ftoken=&mode=a%20b"), "/q", "needs-query"),
        with(&[], Some("mode=a+b"), "/q", "default"),
        with(&[], Some("access_token=x&mode=ab"), "/q", "default"),
        with(&[], None, "/q", "default"),
    ];
    for c in &cases {
        assert_eq!(select_name(&config, c), c.want, "{:?} {:?}", c.headers, c.query);
    }
}

#[test]
fn first_match_wins_in_file_order_across_index_kinds() {
    let config = Config::from_toml_str(
        r#"
[upstreams.u]
url = "http://127.0.0.1:1"
[[routes]]
name = "regex-first"
path_regex = "^/a"
upstream = "u"
[[routes]]
name = "exact"
path = "/a/b"
upstream = "u"
[[routes]]
name = "prefix"
path_prefix = "/a"
upstream = "u"
"#,
        "t.toml",
    )
    .unwrap();
    assert_eq!(select_name(&config, &case("GET", "h", "/a/b", "")), "regex-first");
}

#[test]
fn shadowed_routes_are_found() {
    let config = Config::from_toml_str(
        r#"
[upstreams.u]
url = "http://127.0.0.1:1"
[[routes]]
name = "all-api"
path_prefix = "/api"
upstream = "u"
[[routes]]
name = "webhook"
path = "/api/webhook"
methods = ["POST"]
upstream = "u"
[[routes]]
name = "other"
path = "/other"
upstream = "u"
[[routes]]
name = "other-post"
path = "/other"
methods = ["POST"]
upstream = "u"
[[routes]]
name = "host-only"
host = "*.example.com"
upstream = "u"
[[routes]]
name = "host-sub"
host = "a.example.com"
path = "/x"
upstream = "u"
[[routes]]
name = "narrow-first"
path = "/n"
methods = ["GET"]
upstream = "u"
[[routes]]
name = "wide-later"
path = "/n"
upstream = "u"
"#,
        "t.toml",
    )
    .unwrap();
    let found: Vec<(String, String)> = config.routes.shadowed().into_iter().map(|s| (s.route, s.by)).collect();
    let want = [("webhook", "all-api"), ("other-post", "other"), ("host-sub", "host-only")];
    let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(found, want);
}

#[test]
fn explanation_says_why_earlier_routes_missed() {
    let config = Config::from_toml_str(CONFIG, "test.toml").unwrap();
    let method = Method::GET;
    let headers = HeaderMap::new();
    let facts = super::RequestFacts {
        method: &method,
        host: "www.example.com",
        path: "/api/v1/guest/telegram/webhook",
        query: None,
        headers: &headers,
    };
    let e = config.routes.explain(&facts);
    assert_eq!(e.chosen, None);
    assert_eq!(e.tried[0].reason.as_deref(), Some("method GET is not one of POST"));
    assert!(e.tried[1].reason.as_deref().unwrap().contains("is not \"/api/v1/guest/payment/notify\" or below it"));
    assert!(e.tried[2].reason.as_deref().unwrap().contains("host \"www.example.com\" is not \"api.example.com\""));
}

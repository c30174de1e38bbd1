//! The words of the errors the TOML parser and serde find, made to say what
//! to write: an unquoted value gets its quoted form, a duplicate key the line
//! of the first one, and a value of the wrong type an example of the right one
//! (`response_timeout = 55` → `write e.g. response_timeout = "55s"`), so no
//! such error leaves the operator guessing. Validation's own messages
//! (`validate` and the rest) carry their examples themselves.

use super::locate::{Step, render};
use super::syntax::{Spot, SpotKind};

/// A TOML syntax error's `message` at `spot`, reworded where it helps.
pub fn syntax(message: &str, spot: &Spot) -> String {
    let key = last_key(&spot.path);
    let write = |value: &str| match spot.path.last() {
        Some(Step::Key(key)) => format!("write {key} = {value}"),
        _ => format!("write {value}"),
    };
    match &spot.kind {
        SpotKind::Header if message == "duplicate key" => match spot.first_line {
            Some(line) => format!(
                "duplicate table: [{path}] is already on line {line}; put all its keys under one [{path}]",
                path = render(&spot.path)
            ),
            None => format!("duplicate table [{}]", render(&spot.path)),
        },
        SpotKind::Key if message == "duplicate key" => match spot.first_line {
            Some(line) => format!("duplicate key: {key} is already set on line {line}"),
            None => format!("duplicate key {key}"),
        },
        SpotKind::Bare(bare) if bare.is_empty() => {
            let example = example(&spot.path).map_or("\"…\"", |(_, text)| text);
            format!("a value is missing after =; {}", write(example))
        }
        SpotKind::Bare(bare) => match example(&spot.path) {
            Some((Kind::Number, text)) => {
                format!("{bare} is not a number; {}", write(text).replacen("write", "write e.g.", 1))
            }
            Some((Kind::Bool, _)) => format!("{bare} is not true or false; {}", write("true")),
            _ if message.starts_with("string values must be quoted") => {
                format!("{bare:?} must be quoted: {}", write(&format!("{bare:?}")))
            }
            _ => format!("{message}; if {bare} is text, quote it: {}", write(&format!("{bare:?}"))),
        },
        _ => message.to_string(),
    }
}

/// A data error (wrong type, bad value, missing key) serde found at `path`,
/// with the Rust type names it may say put in plain words and an example of
/// what to write.
pub fn data(path: &[Step], message: &str) -> String {
    let plain = plain_words(message);
    if plain.contains("write ") || plain.starts_with("unknown ") {
        // Already says what to write, or lists the choices.
        return plain;
    }
    if let Some(field) = plain.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
        let mut at = path.to_vec();
        at.push(Step::Key(field.to_string()));
        return match example(&at) {
            Some((_, text)) => format!("{plain}; write e.g. {field} = {text}"),
            None => plain,
        };
    }
    let Some((kind, text)) = example(path) else { return plain };
    let value = fitted(kind, text, &given(message));
    match path.last() {
        Some(Step::Key(key)) => format!("{plain}; write e.g. {key} = {value}"),
        _ => format!("{plain}; write e.g. {value}"),
    }
}

/// serde's and the TOML parser's Rust-flavoured words for the expected type, in the file's terms.
fn plain_words(message: &str) -> String {
    if message == "wanted string or table" {
        // A choice among words (host_header, log format, rate_limit key, ...).
        return "invalid type: expected a string".to_string();
    }
    let mut out = message.to_string();
    for (rust, plain) in [
        ("expected usize", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number up to 4294967295"),
        ("expected u16", "expected a whole number up to 65535"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected a list"),
        ("expected a map", "expected a table"),
    ] {
        if out.ends_with(rust) {
            out.truncate(out.len() - rust.len());
            out.push_str(plain);
        }
    }
    if let Some(at) = out.find("expected struct ") {
        out.truncate(at);
        out.push_str("expected a table");
    }
    out
}

/// What was written, as serde describes it in "invalid type: integer `55`, ...".
#[derive(Debug, PartialEq)]
enum Given {
    Integer(i64),
    Text(String),
    Other,
}

fn given(message: &str) -> Given {
    let rest = message.strip_prefix("invalid type: ").or_else(|| message.strip_prefix("invalid value: "));
    let Some(rest) = rest else { return Given::Other };
    if let Some(number) = rest.strip_prefix("integer `").and_then(|r| r.split('`').next()) {
        return number.parse().map_or(Given::Other, Given::Integer);
    }
    if let Some(text) = rest.strip_prefix("string \"").and_then(|r| r.rsplit_once("\", expected")) {
        return Given::Text(text.0.replace("\\\"", "\""));
    }
    Given::Other
}

/// The kind of value a key takes, to fit the example to what was written.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Duration,
    Size,
    Number,
    Bool,
    List,
    Other,
}

/// The example, made from what was written where that is plainly what was
/// meant: `55` for a duration is `"55s"`, `"20"` for a number is `20`.
fn fitted(kind: Kind, example: &str, given: &Given) -> String {
    match (kind, given) {
        (Kind::Duration, Given::Integer(n)) if *n >= 0 => format!("\"{n}s\""),
        (Kind::Size, Given::Integer(n)) if *n >= 0 => format!("{:?}", super::raw::size_text(*n as u64)),
        (Kind::Number, Given::Text(text)) if text.trim().parse::<f64>().is_ok() => text.trim().to_string(),
        (Kind::Bool, Given::Text(text)) if matches!(text.as_str(), "true" | "false") => text.clone(),
        (Kind::List, Given::Text(text)) => format!("[{text:?}]"),
        _ => example.to_string(),
    }
}

/// The last key of a path (the list's key for an element).
fn last_key(path: &[Step]) -> &str {
    path.iter()
        .rev()
        .find_map(|step| match step {
            Step::Key(key) => Some(key.as_str()),
            Step::Index(_) => None,
        })
        .unwrap_or("")
}

/// An example value for the key at `path`, as written in the file.
fn example(path: &[Step]) -> Option<(Kind, &'static str)> {
    let keys: Vec<&str> = path
        .iter()
        .filter_map(|step| match step {
            Step::Key(key) => Some(key.as_str()),
            Step::Index(_) => None,
        })
        .collect();
    let element = matches!(path.last(), Some(Step::Index(_)));
    let (parent, key) = match keys.as_slice() {
        [.., parent, key] => (*parent, *key),
        [key] => ("", *key),
        [] => return None,
    };
    use Kind::*;
    // Names the file chooses: header and query names, upstream and set names.
    match keys.as_slice() {
        ["routes", "headers" | "query", _] | [_, "respond", "headers", _] if !element => {
            return Some((Other, "\"value\""));
        }
        ["upstreams", _] => return Some((Other, "{ url = \"http://127.0.0.1:7001\" }")),
        ["sets", _] => return Some((Other, "{ cidrs = [\"10.0.0.0/8\"] }")),
        _ => {}
    }
    if element {
        return Some((
            Other,
            match key {
                "addrs" => "\"0.0.0.0:80\"",
                "trusted_proxies" | "cidrs" => "\"10.0.0.0/8\"",
                "allow_from" => "\"telegram\"",
                "methods" => "\"POST\"",
                "domains" => "\"www.example.com\"",
                "exempt" => "\"/api/v1/guest/telegram/webhook\"",
                "allowed_updates" => "\"message\"",
                "certificates" => "{ cert_file = \"cert.pem\", key_file = \"key.pem\" }",
                "secret_files" => "\"secrets/whsec_new\"",
                _ => return None,
            },
        ));
    }
    let found = match (parent, key) {
        ("rate_limit", "key") => (Other, "\"client_ip\" (or \"route\")"),
        ("dedupe", "key") => {
            (Other, "\"telegram_update_id\" (or \"json:/id\", \"form:out_trade_no\", \"query:NAME\", \"header:NAME\")")
        }
        ("verify", "scheme") => (Other, "\"epay_md5\" (or \"stripe\", \"github\", ...)"),
        ("verify", "mode") => (Other, "\"enforce\" (or \"log\")"),
        ("verify", "encoding") => (Other, "\"hex\" (or \"base64\")"),
        ("verify", "header") => (Other, "\"X-Signature\""),
        ("verify", "prefix") => (Other, "\"sha256=\""),
        ("verify", "tolerance") => (Duration, "\"5m\""),
        ("store", "mode") => (Other, "\"fallback\" (or \"always\", \"journal\")"),
        ("store", "ack") => (Number, "200"),
        ("store", "order") => (Other, "\"telegram_chat\" (or \"none\")"),
        ("spool", "dir") => (Other, "\"/var/lib/hookgate/spool\""),
        ("cluster", "redis") => (Other, "\"redis://10.0.0.5:6379/0\""),
        ("cluster", "password_file") => (Other, "\"secrets/redis.pass\""),
        ("cluster", "key_prefix") => (Other, "\"hookgate:\""),
        ("cluster", "node") => (Other, "\"edge-1\""),
        ("cluster", "call_timeout") => (Duration, "\"50ms\""),
        ("cluster", "lease") => (Duration, "\"15s\""),
        ("cluster", "encryption_key_file") => (Other, "\"secrets/cluster.key\""),
        (_, "expire") => (Duration, "\"24h\""),
        (_, "concurrency") => (Number, "8"),
        (_, "max_bytes") => (Size, "\"1GiB\""),
        ("secret_header", "name") => (Other, "\"X-Telegram-Bot-Api-Secret-Token\""),
        ("respond", "headers") => (Other, "{ \"Content-Type\" = \"text/plain\" }"),
        ("telegram", "max_connections") => (Number, "40"),
        (_, "header_timeout" | "handshake_timeout") => (Duration, "\"10s\""),
        (_, "idle_timeout" | "send_timeout" | "response_timeout") => (Duration, "\"60s\""),
        (_, "body_timeout" | "shutdown_grace") => (Duration, "\"30s\""),
        (_, "connect_timeout") => (Duration, "\"3s\""),
        (_, "monitor_interval" | "repair_gap") => (Duration, "\"5m\""),
        (_, "window") => (Duration, "\"10m\""),
        (_, "max_header_bytes") => (Size, "\"32KiB\""),
        (_, "max_uri_bytes") => (Size, "\"8KiB\""),
        (_, "max_body") => (Size, "\"10MiB\""),
        (_, "max_headers" | "max_concurrent_streams") => (Number, "100"),
        (_, "max_connections") => (Number, "10000"),
        (_, "workers") => (Number, "4"),
        (_, "max_idle") => (Number, "64"),
        (_, "max_in_flight") => (Number, "10"),
        (_, "max_keys") => (Number, "100000"),
        (_, "burst") => (Number, "50"),
        (_, "per_second") => (Number, "20"),
        (_, "https_port") => (Number, "443"),
        (_, "status") => (Number, "403"),
        (_, "proxy_protocol" | "http2" | "strip" | "secret_header_from_route" | "xboard_access_token" | "repair") => {
            (Bool, "true")
        }
        (_, "tls_insecure_skip_verify") => (Bool, "false"),
        (_, "addrs") => (List, "[\"0.0.0.0:80\", \"[::]:80\"]"),
        (_, "trusted_proxies") => (List, "[\"cloudflare\", \"127.0.0.1\"]"),
        (_, "cidrs") => (List, "[\"10.0.0.0/8\"]"),
        (_, "allow_from") => (List, "[\"telegram\"]"),
        (_, "methods") => (List, "[\"POST\"]"),
        (_, "domains") => (List, "[\"www.example.com\"]"),
        (_, "exempt") => (List, "[\"/api/v1/guest/telegram/webhook\"]"),
        (_, "allowed_updates") => (List, "[\"message\", \"callback_query\"]"),
        (_, "certificates") => (List, "[{ cert_file = \"cert.pem\", key_file = \"key.pem\" }]"),
        (_, "addr") => (Other, "\"127.0.0.1:9901\""),
        (_, "url") => (Other, "\"http://127.0.0.1:7001\""),
        (_, "host") => (Other, "\"api.example.com\""),
        (_, "path") => (Other, "\"/api/v1/guest/telegram/webhook\""),
        (_, "path_prefix") => (Other, "\"/api/v1/guest/payment/notify/\""),
        (_, "path_regex") => (Other, "\"^/api/v[12]/server/\""),
        (_, "upstream") => (Other, "\"backend\""),
        (_, "name" | "route") => (Other, "\"telegram-webhook\""),
        (_, "value_file") => (Other, "\"secrets/telegram-secret\""),
        (_, "secret_file") => (Other, "\"secrets/epay.key\""),
        (_, "secret_files") => (List, "[\"secrets/whsec_old\", \"secrets/whsec_new\"]"),
        (_, "public_key_file") => (Other, "\"keys/alipay_public.pem\""),
        (_, "token_file") => (Other, "\"secrets/admin-token\""),
        (_, "bot_token_file") => (Other, "\"secrets/bot-token\""),
        (_, "public_url") => (Other, "\"https://www.example.com\""),
        (_, "api_url") => (Other, "\"https://api.telegram.org\""),
        (_, "level") => (Other, "\"info\""),
        (_, "format") => (Other, "\"text\" (or \"json\")"),
        (_, "host_header") => (Other, "\"preserve\" (or \"upstream\")"),
        (_, "tls_ca_file" | "ca_file") => (Other, "\"/etc/hookgate/ca.pem\""),
        (_, "tls_server_name") => (Other, "\"backend.internal\""),
        (_, "cert_file") => (Other, "\"/etc/hookgate/cert.pem\""),
        (_, "key_file") => (Other, "\"/etc/hookgate/key.pem\""),
        (_, "contact") => (Other, "\"ops@example.com\""),
        (_, "directory") => (Other, "\"letsencrypt-staging\""),
        (_, "cache_dir") => (Other, "\"/var/lib/hookgate/acme\""),
        (_, "challenge") => (Other, "\"tls-alpn-01\" (or \"http-01\")"),
        (_, "body") => (Other, "\"forbidden\\n\""),
        (_, "headers") => (Other, "{ \"X-Name\" = \"value\" }"),
        (_, "query") => (Other, "{ token = \"*\" }"),
        (_, "respond") => (Other, "{ status = 403, body = \"forbidden\\n\" }"),
        (_, "rate_limit") => (Other, "{ per_second = 20, burst = 50 }"),
        (_, "secret_header") => {
            (Other, "{ name = \"X-Telegram-Bot-Api-Secret-Token\", value_file = \"secrets/telegram-secret\" }")
        }
        (_, "dedupe") => (Other, "{ key = \"telegram_update_id\", window = \"10m\" }"),
        (_, "verify") => (Other, "{ scheme = \"epay_md5\", secret_file = \"secrets/epay.key\" }"),
        (_, "store") => (Other, "{ mode = \"fallback\", ack = 200, order = \"telegram_chat\", expire = \"24h\" }"),
        _ => return None,
    };
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> Vec<Step> {
        let mut out = Vec::new();
        for part in text.split('.') {
            match part.split_once('[') {
                Some((key, index)) => {
                    out.push(Step::Key(key.to_string()));
                    out.push(Step::Index(index.trim_end_matches(']').parse().unwrap()));
                }
                None => out.push(Step::Key(part.to_string())),
            }
        }
        out
    }

    #[test]
    fn type_errors_get_an_example_fitted_to_what_was_written() {
        let cases = [
            (
                "upstreams.x.response_timeout",
                "invalid type: integer `55`, expected a string",
                "invalid type: integer `55`, expected a string; write e.g. response_timeout = \"55s\"",
            ),
            (
                "limits.max_body",
                "invalid type: integer `1048576`, expected a string",
                "invalid type: integer `1048576`, expected a string; write e.g. max_body = \"1MiB\"",
            ),
            (
                "limits.max_connections",
                "invalid type: string \"many\", expected usize",
                "invalid type: string \"many\", expected a whole number; write e.g. max_connections = 10000",
            ),
            (
                "routes[0].rate_limit.per_second",
                "invalid type: string \"5\", expected f64",
                "invalid type: string \"5\", expected a number; write e.g. per_second = 5",
            ),
            (
                "upstreams.x.http2",
                "invalid type: string \"yes\", expected a boolean",
                "invalid type: string \"yes\", expected a boolean; write e.g. http2 = true",
            ),
            (
                "listen.addrs",
                "invalid type: string \"0.0.0.0:80\", expected a sequence",
                "invalid type: string \"0.0.0.0:80\", expected a list; write e.g. addrs = [\"0.0.0.0:80\"]",
            ),
            (
                "routes[0].respond",
                "invalid type: integer `403`, expected struct RawRespond",
                "invalid type: integer `403`, expected a table; write e.g. respond = { status = 403, body = \"forbidden\\n\" }",
            ),
            (
                "upstreams.x.host_header",
                "wanted string or table",
                "invalid type: expected a string; write e.g. host_header = \"preserve\" (or \"upstream\")",
            ),
            (
                "listen.addrs[1]",
                "invalid socket address syntax",
                "invalid socket address syntax; write e.g. \"0.0.0.0:80\"",
            ),
            ("routes[2]", "missing field `name`", "missing field `name`; write e.g. name = \"telegram-webhook\""),
            (
                "limits.max_body",
                "invalid size \"lots\"; write e.g. \"64KiB\" or \"10MiB\"",
                "invalid size \"lots\"; write e.g. \"64KiB\" or \"10MiB\"",
            ),
        ];
        for (at, message, want) in cases {
            assert_eq!(data(&path(at), message), want, "{at}");
        }
    }
}

//! The dedupe key sources on hostile requests, and the JSON walk behind
//! `json:` and `telegram_update_id` checked against serde_json.
//!
//! The input is a query and a body (split at the first NUL). Every key
//! source reads the request: no panic, and a key is never longer than
//! `MAX_KEY`. Then, when the body is JSON, it is written back by serde_json
//! (one member per name, so there is one right answer) and the walk must find
//! what `Value::pointer` finds, for the pointers the fuzzer's own members make.
#![no_main]

use hookgate::internals::{Found, KeySource, find_json, unescape_json};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn sources() -> Vec<KeySource> {
    ["telegram_update_id", "json:/id", "json:/a/0/b", "form:out_trade_no", "query:id", "header:x-id"]
        .iter()
        .map(|text| text.parse().expect("a valid key source"))
        .collect()
}

fn request(query: &str) -> http::request::Parts {
    // The query as a client may send it: what a URI allows, the rest made `_`.
    let allowed = |c: char| c.is_ascii_alphanumeric() || "=&%+-._~!$'()*,;:@/?".contains(c);
    let uri = format!("/hook?{}", query.replace(|c: char| !allowed(c), "_"));
    let (mut parts, ()) = http::Request::post(uri).body(()).expect("a request").into_parts();
    parts.headers.insert("content-type", http::HeaderValue::from_static("application/x-www-form-urlencoded"));
    parts.headers.insert("x-id", http::HeaderValue::from_static("h1"));
    parts
}

/// What the walk must find for `value`: a scalar as serde_json writes it, a
/// string's content, or `Other`.
fn agrees(found: Option<Found<'_>>, expected: Option<&Value>) {
    match (found, expected) {
        (None, None) => {}
        (Some(Found::Scalar(text)), Some(v @ (Value::Number(_) | Value::Bool(_)))) => {
            assert_eq!(text, serde_json::to_string(v).unwrap().as_bytes());
        }
        (Some(Found::Text(raw)), Some(Value::String(s))) => {
            assert_eq!(unescape_json(raw).expect("a valid string").as_ref(), s.as_bytes());
        }
        (Some(Found::Other), Some(Value::Object(_) | Value::Array(_) | Value::Null)) => {}
        (found, expected) => panic!("the walk found {found:?}, serde_json {expected:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let (query, body) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b""[..], data),
    };
    let parts = request(&String::from_utf8_lossy(query));
    for source in sources() {
        if let Some(key) = source.of(&parts, body) {
            assert!(key.as_bytes().len() <= hookgate::internals::MAX_KEY);
        }
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else { return };
    let written = serde_json::to_vec(&value).expect("serialisable");
    // Pointers to the members the body itself has, one and two levels down.
    let mut pointers: Vec<Vec<String>> = vec![vec!["id".into()], vec!["update_id".into()]];
    if let Value::Object(members) = &value {
        for (name, inner) in members.iter().take(8) {
            pointers.push(vec![name.clone()]);
            if let Value::Object(inner) = inner {
                pointers.extend(inner.keys().take(4).map(|k| vec![name.clone(), k.clone()]));
            }
            if let Value::Array(items) = inner {
                pointers.extend((0..items.len().min(3)).map(|i| vec![name.clone(), i.to_string()]));
            }
        }
    }
    for pointer in pointers {
        let rfc6901: String = pointer.iter().map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1"))).collect();
        agrees(find_json(&written, &pointer), value.pointer(&rfc6901));
    }
});

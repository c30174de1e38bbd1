//! Every vector in `tests/data/verify/*.jsonl` through `Verifier::check`:
//! `generic.jsonl` from the senders' libraries and documentation
//! (`make_generic.py`), `xboard.jsonl` from PHP (`make_xboard.php`).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use http::HeaderName;

use super::{at, headers};
use crate::verify::{Encoding, Keys, Refused, Scheme, Signed, Verifier, VerifyMode};

#[derive(serde::Deserialize)]
struct Vector {
    name: String,
    scheme: String,
    #[serde(default)]
    secrets: Vec<String>,
    public_key: Option<String>,
    header: Option<String>,
    encoding: Option<String>,
    prefix: Option<String>,
    /// POST when absent (the generic vectors).
    method: Option<String>,
    query: Option<String>,
    content_type: Option<String>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: String,
    body_b64: Option<String>,
    now: u64,
    tolerance: Option<u64>,
    expect: String,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/verify")
}

fn scheme(vector: &Vector) -> Scheme {
    match vector.scheme.as_str() {
        "hmac_sha256" => Scheme::HmacSha256 {
            header: HeaderName::from_bytes(vector.header.as_deref().unwrap_or_default().as_bytes()).expect("header"),
            encoding: match vector.encoding.as_deref() {
                Some("base64") => Encoding::Base64,
                _ => Encoding::Hex,
            },
            prefix: vector.prefix.clone().unwrap_or_default(),
        },
        other => Scheme::by_name(other).unwrap_or_else(|| panic!("{}: unknown scheme {other}", vector.name)),
    }
}

fn verdict(result: Result<(), Refused>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(Refused::Missing) => "missing",
        Err(Refused::Malformed) => "malformed",
        Err(Refused::BadSignature) => "bad_signature",
        Err(Refused::Stale) => "stale",
    }
}

fn run(vector: &Vector) -> &'static str {
    let scheme = scheme(vector);
    let keys = match &vector.public_key {
        Some(file) => Keys::public_key(&std::fs::read(dir().join(file)).expect("the key file")),
        None => Keys::secrets(&scheme, vector.secrets.iter().map(|s| s.as_bytes().to_vec()).collect()),
    }
    .unwrap_or_else(|e| panic!("{}: {e}", vector.name));
    let tolerance = vector.tolerance.map_or(Scheme::DEFAULT_TOLERANCE, std::time::Duration::from_secs);
    let verifier = Verifier::new(scheme, keys, tolerance, VerifyMode::Enforce);
    let mut pairs: Vec<(&str, &str)> = vector.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    if let Some(content_type) = &vector.content_type {
        pairs.push(("content-type", content_type));
    }
    let headers = headers(&pairs);
    let body = match &vector.body_b64 {
        Some(b64) => base64::engine::general_purpose::STANDARD.decode(b64).expect("body_b64"),
        None => vector.body.as_bytes().to_vec(),
    };
    let method = http::Method::from_bytes(vector.method.as_deref().unwrap_or("POST").as_bytes()).expect("method");
    let signed = Signed { method: &method, headers: &headers, query: vector.query.as_deref(), body: &body };
    verdict(verifier.check(&signed, at(vector.now)))
}

/// Every vector of `file`, and how many there were: a file that shrank
/// would otherwise pass.
fn check_file(file: &str, at_least: usize) {
    let text = std::fs::read_to_string(dir().join(file)).expect("the vectors");
    let vectors: Vec<Vector> = text.lines().map(|line| serde_json::from_str(line).expect("a vector")).collect();
    assert!(vectors.len() >= at_least, "{file}: {} vectors", vectors.len());
    let failures: Vec<String> = vectors
        .iter()
        .filter_map(|v| {
            let got = run(v);
            (got != v.expect).then(|| format!("{} ({}): expected {}, got {got}", v.name, v.scheme, v.expect))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} vectors of {file} fail:\n{}",
        failures.len(),
        vectors.len(),
        failures.join("\n")
    );
}

#[test]
fn xboard_vectors_signed_by_php() {
    check_file("xboard.jsonl", 250);
}

#[test]
fn generic_vectors_from_the_senders_libraries_and_docs() {
    check_file("generic.jsonl", 50);
}

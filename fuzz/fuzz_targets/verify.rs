//! The signature schemes on hostile requests: the input is split into header
//! lines, a query and a body, and every scheme checks it with a fixed secret
//! (Alipay's with the checked-in test key). That drives the signature-header
//! parsers, the form, query and JSON parsers and the PHP encoders behind the
//! XBoard schemes. Invariants: no panic, and the same verdict twice.
#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use hookgate::internals::{Encoding, Keys, Scheme, Signed, Verifier, VerifyMode};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

const ALIPAY_KEY: &[u8] = include_bytes!("../../tests/data/verify/alipay_public.pem");

static VERIFIERS: LazyLock<Vec<Verifier>> = LazyLock::new(|| {
    let schemes = [
        Scheme::Github,
        Scheme::Stripe,
        Scheme::StandardWebhooks,
        Scheme::Shopify,
        Scheme::Slack,
        Scheme::HmacSha256 { header: HeaderName::from_static("x-signature"), encoding: Encoding::Hex, prefix: "sha256=".into() },
        Scheme::HmacSha256 { header: HeaderName::from_static("x-signature"), encoding: Encoding::Base64, prefix: String::new() },
        Scheme::EpayMd5,
        Scheme::MgateMd5,
        Scheme::AlipayRsa2,
        Scheme::Btcpay,
        Scheme::Coinbase,
        Scheme::Coinpayments,
    ];
    schemes
        .into_iter()
        .map(|scheme| {
            let keys = match scheme {
                Scheme::AlipayRsa2 => Keys::public_key(ALIPAY_KEY),
                Scheme::StandardWebhooks => Keys::secrets(&scheme, vec![b"whsec_ZnV6eiBzZWNyZXQ=".to_vec()]),
                _ => Keys::secrets(&scheme, vec![b"fuzz secret".to_vec()]),
            }
            .expect("the fuzz keys load");
            Verifier::new(scheme, keys, Duration::from_secs(300), VerifyMode::Enforce)
        })
        .collect()
});

/// `name: value` lines up to the first NUL byte; lines http refuses are skipped.
fn headers(block: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in block.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let value = line[colon + 1..].strip_prefix(b" ").unwrap_or(&line[colon + 1..]);
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(value)) {
            map.append(name, value);
        }
    }
    map
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let head = headers(parts.next().unwrap_or_default());
    let query = parts.next().map(String::from_utf8_lossy);
    let body = parts.next().unwrap_or_default();
    // A body read as parameters (POST), and the same request as a GET (only the query).
    let post = Signed { method: &http::Method::POST, headers: &head, query: query.as_deref(), body };
    let get = Signed { method: &http::Method::GET, ..post };
    let now = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    for (verifier, signed) in VERIFIERS.iter().flat_map(|v| [(v, &post), (v, &get)]) {
        let first = verifier.check(signed, now);
        assert_eq!(first, verifier.check(signed, now), "{}: two verdicts", verifier.scheme.name());
    }
});

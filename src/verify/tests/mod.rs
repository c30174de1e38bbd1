//! The schemes' tests: the reference vectors of `tests/data/verify/` (signed
//! by each sender's own library or by PHP), each scheme's refusals, and the
//! PHP emulation piece by piece.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use ring::hmac;

use super::{Keys, Refused, Scheme, Signed, Verifier, VerifyMode};

mod keys;
mod params;
mod schemes;
mod vectors;
mod xboard;

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn verifier(scheme: Scheme, secrets: &[&str]) -> Verifier {
    let files = secrets.iter().map(|s| s.as_bytes().to_vec()).collect();
    let keys = Keys::secrets(&scheme, files).expect("usable secrets");
    Verifier::new(scheme, keys, Scheme::DEFAULT_TOLERANCE, VerifyMode::Enforce)
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        map.append(name, HeaderValue::from_str(value).expect("a header value"));
    }
    map
}

/// `check` of a request with these headers, query and body.
fn check(
    verifier: &Verifier,
    pairs: &[(&str, &str)],
    query: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Result<(), Refused> {
    let headers = headers(pairs);
    verifier.check(&Signed { method: &http::Method::POST, headers: &headers, query, body }, now)
}

fn hex_mac(algorithm: hmac::Algorithm, key: &[u8], message: &[u8]) -> String {
    String::from_utf8(super::header::to_hex(hmac::sign(&hmac::Key::new(algorithm, key), message).as_ref()))
        .expect("hex")
}

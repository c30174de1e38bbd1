//! Each generic scheme's verdicts: a valid request passes; a changed body, a
//! wrong secret, a missing header, a stale time (both ways), a repeated or
//! malformed signature header are each refused with their `Refused`; any
//! secret of several admits.

use base64::Engine as _;
use http::HeaderName;
use ring::hmac::HMAC_SHA256;

use super::{at, check, hex_mac, verifier};
use crate::verify::{Encoding, Keys, Refused, Scheme, Verifier, VerifyMode};

const BODY: &[u8] = br#"{"id":"evt_1","amount":1000}"#;
const T: u64 = 1_767_225_600;

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn github() {
    let v = verifier(Scheme::Github, &["s3cret"]);
    let good = format!("sha256={}", hex_mac(HMAC_SHA256, b"s3cret", BODY));
    let run = |pairs: &[(&str, &str)], body: &[u8]| check(&v, pairs, None, body, at(T));
    assert_eq!(run(&[("x-hub-signature-256", &good)], BODY), Ok(()));
    assert_eq!(run(&[("x-hub-signature-256", &good.to_uppercase().replace("SHA256=", "sha256="))], BODY), Ok(()));
    assert_eq!(run(&[("x-hub-signature-256", &good)], b"{}"), Err(Refused::BadSignature));
    assert_eq!(run(&[], BODY), Err(Refused::Missing));
    assert_eq!(run(&[("x-hub-signature-256", "")], BODY), Err(Refused::Missing));
    assert_eq!(run(&[("x-hub-signature-256", &good), ("x-hub-signature-256", &good)], BODY), Err(Refused::Malformed));
    assert_eq!(run(&[("x-hub-signature-256", &good[7..])], BODY), Err(Refused::Malformed));
    assert_eq!(run(&[("x-hub-signature-256", "sha256=zz")], BODY), Err(Refused::Malformed));
    let wrong = verifier(Scheme::Github, &["other"]);
    assert_eq!(check(&wrong, &[("x-hub-signature-256", &good)], None, BODY, at(T)), Err(Refused::BadSignature));
    let rotated = verifier(Scheme::Github, &["old", "s3cret"]);
    assert_eq!(check(&rotated, &[("x-hub-signature-256", &good)], None, BODY, at(T)), Ok(()));
}

#[test]
fn stripe() {
    let secret = "whsec_abc";
    let v = verifier(Scheme::Stripe, &[secret]);
    let sig =
        |t: u64, body: &[u8]| hex_mac(HMAC_SHA256, secret.as_bytes(), &[format!("{t}.").as_bytes(), body].concat());
    let good = format!("t={T},v1={}", sig(T, BODY));
    let run = |value: &str, now: u64| check(&v, &[("stripe-signature", value)], None, BODY, at(now));
    assert_eq!(run(&good, T), Ok(()));
    assert_eq!(run(&good, T + 300), Ok(()));
    assert_eq!(run(&good, T + 301), Err(Refused::Stale));
    assert_eq!(run(&good, T - 301), Err(Refused::Stale));
    assert_eq!(run(&format!("t={T},v1={}", sig(T, b"{}")), T), Err(Refused::BadSignature));
    assert_eq!(run(&format!("t={},v1={}", T - 9_999, sig(T, BODY)), T), Err(Refused::BadSignature), "forged and stale");
    assert_eq!(run(&format!("t=0{T},v1={}", sig(T, BODY)), T), Ok(()), "the time re-written in decimal");
    assert_eq!(run(&format!("v0=00,t={T},v1=zz,v1={},x=1", sig(T, BODY)), T), Ok(()));
    assert_eq!(run(&format!("v1={}", sig(T, BODY)), T), Err(Refused::Malformed));
    assert_eq!(run(&format!("t={T},v0={}", sig(T, BODY)), T), Err(Refused::Malformed));
    assert_eq!(run(&format!("t=soon,v1={}", sig(T, BODY)), T), Err(Refused::Malformed));
    assert_eq!(run(&format!("t={T},v1"), T), Err(Refused::Malformed));
    let twice = check(&v, &[("stripe-signature", &good), ("stripe-signature", &good)], None, BODY, at(T));
    assert_eq!(twice, Err(Refused::Malformed));
    assert_eq!(check(&v, &[], None, BODY, at(T)), Err(Refused::Missing));
    let rotated = verifier(Scheme::Stripe, &["whsec_old", secret]);
    assert_eq!(check(&rotated, &[("stripe-signature", &good)], None, BODY, at(T)), Ok(()));
    let wrong = verifier(Scheme::Stripe, &["whsec_other"]);
    assert_eq!(check(&wrong, &[("stripe-signature", &good)], None, BODY, at(T)), Err(Refused::BadSignature));
}

#[test]
fn standard_webhooks() {
    let key = b"a standard webhooks key";
    let file = format!("whsec_{}", base64(key));
    let v = verifier(Scheme::StandardWebhooks, &[&file]);
    let sign = |id: &str, t: u64| {
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(HMAC_SHA256, key),
            &[format!("{id}.{t}.").as_bytes(), BODY].concat(),
        );
        format!("v1,{}", base64(tag.as_ref()))
    };
    let good = sign("msg_1", T);
    let at_text = T.to_string();
    let request = |id: &str, ts: &str, sig: &str| {
        vec![
            ("webhook-id", id.to_string()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", sig.to_string()),
        ]
    };
    let run = |pairs: Vec<(&str, String)>, now: u64| {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
        check(&v, &pairs, None, BODY, at(now))
    };
    assert_eq!(run(request("msg_1", &at_text, &good), T), Ok(()));
    assert_eq!(run(request("msg_1", &at_text, &format!("v1a,AAAA {good}")), T), Ok(()));
    assert_eq!(run(request("msg_1", &at_text, &good), T + 301), Err(Refused::Stale));
    assert_eq!(run(request("msg_1", &at_text, &good), T - 301), Err(Refused::Stale));
    assert_eq!(run(request("msg_2", &at_text, &good), T), Err(Refused::BadSignature));
    assert_eq!(run(request("msg_1", &at_text, &sign("msg_1", T + 1)), T), Err(Refused::BadSignature));
    assert_eq!(run(request("msg_1", &at_text, "v1"), T), Err(Refused::Malformed));
    assert_eq!(run(request("msg_1", "soon", &good), T), Err(Refused::Malformed));
    assert_eq!(run(request("msg_1", &at_text, &good)[1..].to_vec(), T), Err(Refused::Missing));
    let mut twice = request("msg_1", &at_text, &good);
    twice.push(("webhook-id", "msg_1".into()));
    assert_eq!(run(twice, T), Err(Refused::Malformed));
    let other = format!("whsec_{}", base64(b"old"));
    let rotated = verifier(Scheme::StandardWebhooks, &[&other, &file]);
    let pairs =
        [("webhook-id", "msg_1"), ("webhook-timestamp", at_text.as_str()), ("webhook-signature", good.as_str())];
    assert_eq!(check(&rotated, &pairs, None, BODY, at(T)), Ok(()));
    assert_eq!(
        check(&verifier(Scheme::StandardWebhooks, &[&other]), &pairs, None, BODY, at(T)),
        Err(Refused::BadSignature)
    );
}

#[test]
fn shopify() {
    let v = verifier(Scheme::Shopify, &["shpss"]);
    let tag = ring::hmac::sign(&ring::hmac::Key::new(HMAC_SHA256, b"shpss"), BODY);
    let good = base64(tag.as_ref());
    let run = |pairs: &[(&str, &str)], body: &[u8]| check(&v, pairs, None, body, at(T));
    assert_eq!(run(&[("x-shopify-hmac-sha256", &good)], BODY), Ok(()));
    assert_eq!(run(&[("x-shopify-hmac-sha256", &good)], b"{}"), Err(Refused::BadSignature));
    assert_eq!(run(&[("x-shopify-hmac-sha256", "!!")], BODY), Err(Refused::Malformed));
    assert_eq!(run(&[("x-shopify-hmac-sha256", &good[..40])], BODY), Err(Refused::Malformed));
    assert_eq!(
        run(&[("x-shopify-hmac-sha256", &good), ("x-shopify-hmac-sha256", &good)], BODY),
        Err(Refused::Malformed)
    );
    assert_eq!(run(&[], BODY), Err(Refused::Missing));
}

#[test]
fn slack() {
    let v = verifier(Scheme::Slack, &["slack"]);
    let good = format!("v0={}", hex_mac(HMAC_SHA256, b"slack", &[format!("v0:{T}:").as_bytes(), BODY].concat()));
    let ts = T.to_string();
    let run = |pairs: &[(&str, &str)], now: u64| check(&v, pairs, None, BODY, at(now));
    let both = [("x-slack-signature", good.as_str()), ("x-slack-request-timestamp", ts.as_str())];
    assert_eq!(run(&both, T), Ok(()));
    assert_eq!(run(&both, T + 301), Err(Refused::Stale));
    assert_eq!(run(&both, T - 301), Err(Refused::Stale));
    assert_eq!(run(&[both[0], ("x-slack-request-timestamp", "1767225601")], T), Err(Refused::BadSignature));
    assert_eq!(run(&[both[0], ("x-slack-request-timestamp", "soon")], T), Err(Refused::Malformed));
    assert_eq!(run(&[("x-slack-signature", &good[3..]), both[1]], T), Err(Refused::Malformed));
    assert_eq!(run(&[both[0], both[1], both[1]], T), Err(Refused::Malformed));
    assert_eq!(run(&both[..1], T), Err(Refused::Missing));
    assert_eq!(run(&both[1..], T), Err(Refused::Missing));
}

#[test]
fn hmac_sha256() {
    let header = HeaderName::from_static("x-signature");
    let scheme =
        |encoding, prefix: &str| Scheme::HmacSha256 { header: header.clone(), encoding, prefix: prefix.into() };
    let tag = ring::hmac::sign(&ring::hmac::Key::new(HMAC_SHA256, b"k"), BODY);
    let hex = String::from_utf8(crate::verify::header::to_hex(tag.as_ref())).expect("hex");
    let hex_v = verifier(scheme(Encoding::Hex, "sha256="), &["k"]);
    let run = |v, value: &str| check(v, &[("x-signature", value)], None, BODY, at(T));
    assert_eq!(run(&hex_v, &format!("sha256={hex}")), Ok(()));
    assert_eq!(run(&hex_v, &format!("sha256={}", hex.to_uppercase())), Ok(()));
    assert_eq!(run(&hex_v, &hex), Err(Refused::Malformed));
    assert_eq!(run(&hex_v, &format!("sha256={}", &hex[2..])), Err(Refused::Malformed));
    let b64_v = verifier(scheme(Encoding::Base64, ""), &["k"]);
    assert_eq!(run(&b64_v, &base64(tag.as_ref())), Ok(()));
    assert_eq!(run(&b64_v, &base64(&[0; 32])), Err(Refused::BadSignature));
    assert_eq!(check(&b64_v, &[], None, BODY, at(T)), Err(Refused::Missing));
}

#[test]
fn a_secret_scheme_wired_with_a_public_key_admits_nothing() {
    let keys = Keys::PublicKey(Box::new([]));
    let v = Verifier::new(Scheme::Github, keys, Scheme::DEFAULT_TOLERANCE, VerifyMode::Enforce);
    let good = format!("sha256={}", hex_mac(HMAC_SHA256, b"k", BODY));
    assert_eq!(check(&v, &[("x-hub-signature-256", &good)], None, BODY, at(T)), Err(Refused::BadSignature));
}

#[test]
fn labels_count_a_malformed_signature_as_a_bad_one() {
    let labels: Vec<_> =
        [Refused::Missing, Refused::BadSignature, Refused::Malformed, Refused::Stale].map(Refused::label).into();
    assert_eq!(labels, ["missing", "bad_signature", "bad_signature", "stale"]);
}

//! XBoard's schemes' verdicts on hand-made notifies (the PHP-signed ones are
//! in the vectors): what each removes before signing, where the sign may be,
//! what counts as missing or malformed, and rotation.

use md5::{Digest, Md5};
use ring::hmac::{HMAC_SHA256, HMAC_SHA512};

use super::{at, check, hex_mac, verifier};
use crate::verify::{Refused, Scheme};

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

fn md5_hex(text: &str) -> String {
    String::from_utf8(crate::verify::header::to_hex(&Md5::digest(text.as_bytes()))).expect("hex")
}

#[test]
fn epay_signs_the_sorted_decoded_parameters_then_the_key() {
    let v = verifier(Scheme::EpayMd5, &["key"]);
    // Sorted, `a b` decoded from `a+b`, `sign` and `sign_type` left out, then the key.
    let sign = md5_hex("money=1.00&name=a b&pid=7key");
    let query = format!("pid=7&name=a+b&money=1.00&sign_type=MD5&sign={sign}");
    assert_eq!(check(&v, &[], Some(&query), b"", at(0)), Ok(()));
    assert_eq!(check(&v, &[FORM], None, query.as_bytes(), at(0)), Ok(()));
    assert_eq!(check(&v, &[], Some(&query.replace("1.00", "2.00")), b"", at(0)), Err(Refused::BadSignature));
    assert_eq!(
        check(&v, &[], Some(&format!("{query}&extra=%20")), b"", at(0)),
        Ok(()),
        "an empty field is null, left out"
    );
    assert_eq!(check(&v, &[], Some(&format!("{query}&extra=1")), b"", at(0)), Err(Refused::BadSignature));
    assert_eq!(check(&v, &[], Some("pid=7&name=a+b&money=1.00"), b"", at(0)), Err(Refused::Missing));
    assert_eq!(check(&v, &[], Some(&query.replace(&sign, &sign.to_uppercase())), b"", at(0)), Err(Refused::Malformed));
    let later_wins = format!("sign=00000000000000000000000000000000&{query}");
    assert_eq!(check(&v, &[], Some(&later_wins), b"", at(0)), Ok(()), "PHP keeps the last duplicate");
    let in_body = format!("sign={sign}");
    assert_eq!(check(&v, &[FORM], Some("pid=7&name=a+b&money=1.00"), in_body.as_bytes(), at(0)), Ok(()));
    let wrong = verifier(Scheme::EpayMd5, &["other"]);
    assert_eq!(check(&wrong, &[], Some(&query), b"", at(0)), Err(Refused::BadSignature));
    let rotated = verifier(Scheme::EpayMd5, &["old", "key"]);
    assert_eq!(check(&rotated, &[], Some(&query), b"", at(0)), Ok(()));
}

#[test]
fn epay_refuses_what_it_cannot_read_as_php_does() {
    let v = verifier(Scheme::EpayMd5, &["key"]);
    let many: String = (0..1001).map(|n| format!("k{n}=v&")).collect();
    assert_eq!(check(&v, &[], Some(&many), b"", at(0)), Err(Refused::Malformed));
    let multipart = ("content-type", "multipart/form-data; boundary=x");
    assert_eq!(check(&v, &[multipart], Some("sign=x"), b"--x--", at(0)), Err(Refused::Malformed));
    let two = [FORM, FORM];
    assert_eq!(check(&v, &two, None, b"sign=x", at(0)), Err(Refused::Malformed));
    let circle = format!("9=a&10=b&1a=c&sign={}", md5_hex("x"));
    assert_eq!(check(&v, &[], Some(&circle), b"", at(0)), Err(Refused::Malformed), "ksort would depend on PHP's steps");
    let float = ("content-type", "application/json");
    assert_eq!(
        check(&v, &[float], Some(&format!("sign={}", md5_hex("x"))), b"{\"money\":1.5}", at(0)),
        Err(Refused::Malformed)
    );
}

#[test]
fn mgate_keeps_sign_type_and_encodes() {
    let v = verifier(Scheme::MgateMd5, &["app-secret"]);
    let sign = md5_hex("note=a+b&sign_type=MD5&total_amount=100app-secret");
    let body = format!("total_amount=100&note=a%20b&sign_type=MD5&sign={sign}");
    assert_eq!(check(&v, &[FORM], None, body.as_bytes(), at(0)), Ok(()));
    let without_type = md5_hex("note=a+b&total_amount=100app-secret");
    let body = format!("total_amount=100&note=a%20b&sign_type=MD5&sign={without_type}");
    assert_eq!(check(&v, &[FORM], None, body.as_bytes(), at(0)), Err(Refused::BadSignature));
    assert_eq!(check(&v, &[FORM], None, b"total_amount=100", at(0)), Err(Refused::Missing));
    assert_eq!(check(&v, &[FORM], None, b"total_amount=100&sign[]=x", at(0)), Err(Refused::Malformed));
}

#[test]
fn btcpay_and_coinbase_sign_the_trimmed_body() {
    let body = b"{\"invoiceId\":\"I1\"}\n";
    let sig = hex_mac(HMAC_SHA256, b"hook", &body[..body.len() - 1]);
    let btcpay = verifier(Scheme::Btcpay, &["hook"]);
    let with = format!("sha256={sig}");
    assert_eq!(check(&btcpay, &[("btcpay-sig", &with)], None, body, at(0)), Ok(()));
    assert_eq!(check(&btcpay, &[("btcpay-sig", &with)], None, b"{}", at(0)), Err(Refused::BadSignature));
    assert_eq!(check(&btcpay, &[("btcpay-sig", &sig)], None, body, at(0)), Err(Refused::Malformed));
    assert_eq!(
        check(&btcpay, &[("btcpay-sig", &with), ("btcpay-sig", &with)], None, body, at(0)),
        Err(Refused::Malformed)
    );
    assert_eq!(check(&btcpay, &[], None, body, at(0)), Err(Refused::Missing));
    let coinbase = verifier(Scheme::Coinbase, &["old", "hook"]);
    assert_eq!(check(&coinbase, &[("x-cc-webhook-signature", &sig)], None, body, at(0)), Ok(()));
    let upper = sig.to_uppercase();
    assert_eq!(check(&coinbase, &[("x-cc-webhook-signature", &upper)], None, body, at(0)), Err(Refused::Malformed));
    let wrong = verifier(Scheme::Coinbase, &["other"]);
    assert_eq!(check(&wrong, &[("x-cc-webhook-signature", &sig)], None, body, at(0)), Err(Refused::BadSignature));
}

#[test]
fn coinpayments_signs_the_sorted_parameters_with_the_trimmed_secret() {
    let v = verifier(Scheme::Coinpayments, &[" ipn \n"]);
    let body = b"status=100&merchant=m1&note=O%5C%27B&empty=";
    // Sorted, the empty field left out; stripslashes finds no `\` in what
    // http_build_query wrote (it writes `%5C`).
    let sig = hex_mac(HMAC_SHA512, b"ipn", b"merchant=m1&note=O%5C%27B&status=100");
    assert_eq!(check(&v, &[FORM, ("hmac", &sig)], None, body, at(0)), Ok(()));
    let raw = hex_mac(HMAC_SHA512, b"ipn", body);
    assert_eq!(check(&v, &[FORM, ("hmac", &raw)], None, body, at(0)), Err(Refused::BadSignature));
    assert_eq!(check(&v, &[FORM], None, body, at(0)), Err(Refused::Missing));
    assert_eq!(check(&v, &[FORM, ("hmac", &sig[..64])], None, body, at(0)), Err(Refused::Malformed));
}

#[test]
fn alipay_with_secrets_instead_of_a_key_admits_nothing() {
    let v = crate::verify::Verifier::new(
        Scheme::AlipayRsa2,
        crate::verify::Keys::Secrets(vec![crate::secret::Secret::new(b"k")]),
        Scheme::DEFAULT_TOLERANCE,
        crate::verify::VerifyMode::Enforce,
    );
    assert_eq!(check(&v, &[FORM], None, b"a=1&sign=AAAA", at(0)), Err(Refused::BadSignature));
}

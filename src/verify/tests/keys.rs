//! Key files: the forms Alipay's public key comes in, the secrets each
//! scheme takes, and errors that say what is wrong without showing a secret.

use std::path::Path;

use crate::verify::{KeyError, Keys, Scheme};

fn data(file: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/verify").join(file)).expect("a key file")
}

fn der(keys: Keys) -> Box<[u8]> {
    match keys {
        Keys::PublicKey(der) => der,
        Keys::Secrets(_) => panic!("secrets, not a key"),
    }
}

fn error(result: Result<Keys, KeyError>) -> String {
    match result {
        Ok(_) => panic!("a key was accepted"),
        Err(KeyError(text)) => text,
    }
}

const RSA_1024: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCcaXcHfj774DIwt3NDxd9V6abP
V0SvRhChlFPRP7HztXLS45zISIJiQpdWVpSgNhXWPtqblPWVwtCHG4hJX88Kc+Pu
S+/d5gZGpPiCDNuwpl9TA9w4EBoA5XIwffIkJopTokYYQobMVUnP3TzN62Bg/V4T
sq3mVMSLrQlYduilNwIDAQAB
-----END PUBLIC KEY-----
";

const EC_P256: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE0tfM8FgxypUTbTQp54n0s1vIj+1Y
Bm2BfdewqYh9FGdWZ3olF+fmudwolSxSzzXTPEqSgjl0t+BaGvRr5pX+Zg==
-----END PUBLIC KEY-----
";

#[test]
fn alipays_key_in_every_form_is_the_same_pkcs1_key() {
    let spki = der(Keys::public_key(&data("alipay_public.pem")).expect("SPKI PEM"));
    let pkcs1 = der(Keys::public_key(&data("alipay_public_pkcs1.pem")).expect("PKCS#1 PEM"));
    let bare = der(Keys::public_key(&data("alipay_public.b64")).expect("bare base64, as XBoard's admin holds it"));
    assert_eq!(spki, pkcs1);
    assert_eq!(spki, bare);
    let crlf = String::from_utf8(data("alipay_public.pem")).expect("text").replace('\n', "\r\n");
    assert_eq!(der(Keys::public_key(crlf.as_bytes()).expect("CRLF")), spki);
    let one_line: String = String::from_utf8(data("alipay_public.b64")).expect("text").split_whitespace().collect();
    assert_eq!(der(Keys::public_key(format!("  {one_line}\n").as_bytes()).expect("one line")), spki);
}

#[test]
fn key_errors_say_what_is_wrong() {
    let cases: [(&[u8], &str); 7] = [
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "a PEM `CERTIFICATE`, not a public key"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n", "does not end with `-----END PUBLIC KEY-----`"),
        (b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n", "not valid base64"),
        (b"not a key", "nor the base64 of one"),
        (b"\xff\xfe", "not text"),
        (RSA_1024.as_bytes(), "an RSA key of 1024 bits"),
        (EC_P256.as_bytes(), "not RSA"),
    ];
    for (file, expected) in cases {
        let text = error(Keys::public_key(file));
        assert!(text.contains(expected), "{text:?} lacks {expected:?}");
    }
    assert!(error(Keys::public_key(b"AAAA")).contains("not an RSA public key"));
}

#[test]
fn secrets_per_scheme() {
    let secret = |scheme: &Scheme, file: &[u8]| match Keys::secrets(scheme, vec![file.to_vec()]) {
        Ok(Keys::Secrets(secrets)) => secrets[0].expose().to_vec(),
        other => panic!("{:?}", other.err()),
    };
    assert_eq!(secret(&Scheme::StandardWebhooks, b"whsec_aGVsbG8="), b"hello");
    assert_eq!(secret(&Scheme::StandardWebhooks, b"aGVsbG8"), b"hello", "prefix and padding optional");
    assert_eq!(secret(&Scheme::Stripe, b"whsec_aGVsbG8="), b"whsec_aGVsbG8=", "Stripe keys are used as written");
    assert_eq!(secret(&Scheme::Coinpayments, b" ipn secret\t"), b"ipn secret");
    assert_eq!(secret(&Scheme::EpayMd5, b" key "), b" key ");
}

#[test]
fn secret_errors_name_the_file_never_its_bytes() {
    let bad =
        error(Keys::secrets(&Scheme::StandardWebhooks, vec![b"whsec_aGVsbG8=".to_vec(), b"whsec_!!sekrit!!".to_vec()]));
    assert_eq!(bad, "secret 2 of 2 is not a standard_webhooks key: expected `whsec_` and base64");
    assert_eq!(error(Keys::secrets(&Scheme::Github, vec![Vec::new()])), "the secret is empty");
    assert_eq!(error(Keys::secrets(&Scheme::Coinpayments, vec![b" \n".to_vec()])), "the secret is empty");
    let alipay = error(Keys::secrets(&Scheme::AlipayRsa2, vec![b"k".to_vec()]));
    assert_eq!(alipay, "alipay_rsa2 checks with a public key (public_key_file), not secrets");
}

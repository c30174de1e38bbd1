//! XBoard's payment gateways, each checked as its plugin checks it, so that
//! hookgate admits what XBoard admits and nothing the key's holder did not
//! sign. Read in `plugins-core/<Plugin>/Plugin.php` of cedar2025/Xboard (the
//! versions the code index holds: Epay 6f4f6b7, AlipayF2f 1591664, Btcpay and
//! CoinPayments a057604, Coinbase a9cae6d; Mgate only in forks carrying
//! plugins-core, whose versions differ in the checks after the signature but
//! agree on what is signed). The parameters are those of `params::input()`;
//! the PHP functions are emulated in `php`.
//!
//! - `epay_md5` (`Epay/Plugin.php`, `notify`): `$sign = $params['sign']`;
//!   `unset($params['sign'], $params['sign_type'])`; `ksort`;
//!   `md5(stripslashes(urldecode(http_build_query($params))) . key)`, and
//!   `$sign !== md5(...)` refuses: the sign is compared as lower-case hex text.
//! - `mgate_md5` (`Mgate/Plugin.php`, `notify`): only `sign` is removed
//!   (a `sign_type` stays signed); `ksort`;
//!   `md5(http_build_query($params) . mgate_app_secret)`: neither `urldecode`
//!   nor `stripslashes`; compared as `epay_md5`.
//! - `alipay_rsa2` (`AlipayF2f/library/AlipayF2F.php`, `verify`):
//!   `empty($data['sign'])` refuses; the sign is `base64_decode($sign, true)`
//!   (strict: spaces, tabs and line breaks skipped, padding optional, any
//!   other byte refused); `sign` and `sign_type` removed; `ksort`; then
//!   `buildQuery`: `"$key=$value"` joined with `&`, nothing encoded and no
//!   value skipped (a null, which an empty field became, is written
//!   `key=`; an array throws, which the plugin answers as a failure; no
//!   parameters at all throws too); `openssl_verify(..., OPENSSL_ALGO_SHA256)`
//!   with Alipay's public key: RSA PKCS#1 v1.5 SHA-256. ring checks keys of
//!   2048 to 8192 bits (Alipay's are 2048) and a signature as long as the key.
//!   The plugin's `trade_status === 'TRADE_SUCCESS'` test is the order
//!   logic's, not the signature's: not checked here.
//! - `btcpay` (`Btcpay/Plugin.php`): `Btcpay-Sig` against
//!   `"sha256=" . hash_hmac('sha256', trim($body), btcpay_webhook_key)` with
//!   `hash_equals`: the body is PHP-`trim`med first, the hex lower case.
//! - `coinbase` (`Coinbase/Plugin.php`): `X-Cc-Webhook-Signature` against
//!   `hash_hmac('sha256', trim($body), coinbase_webhook_key)`, as `btcpay`.
//! - `coinpayments` (`CoinPayments/Plugin.php`): not the raw form body but
//!   the parameters: `ksort`, then
//!   `hash_hmac('sha512', stripslashes(http_build_query($params)), trim(coinpayments_ipn_secret))`
//!   against the `Hmac` header with `hash_equals` (`Keys::secrets` trims the
//!   secret as the plugin does). Its merchant-id test is the order logic's.
//!
//! None of them signs a time: a captured notify verifies forever (dedupe is
//! the answer to replays). A signature of the wrong shape (not 32 or 64 or
//! 128 lower-case hex digits, a non-string `sign`) is `Malformed`; a missing
//! `sign` or signature header `Missing`.

use md5::{Digest, Md5};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

use super::header::{equal, mac, one, secrets, to_hex};
use super::php::{Array, Value, http_build_query, stripslashes, trim, urldecode};
use super::{Keys, Refused, Signed, Verifier, params};

pub(super) fn epay(verifier: &Verifier, signed: &Signed<'_>) -> Result<(), Refused> {
    let mut params = params::input(signed)?;
    let sign = take_sign(&mut params)?;
    params.remove(b"sign_type");
    params.ksort()?;
    let text = stripslashes(&urldecode(&http_build_query(&params)?));
    md5_matches(verifier, &text, &sign)
}

pub(super) fn mgate(verifier: &Verifier, signed: &Signed<'_>) -> Result<(), Refused> {
    let mut params = params::input(signed)?;
    let sign = take_sign(&mut params)?;
    params.ksort()?;
    md5_matches(verifier, &http_build_query(&params)?, &sign)
}

/// `$params['sign']`, removed from the parameters.
fn take_sign(params: &mut Array) -> Result<Vec<u8>, Refused> {
    match params.remove(b"sign") {
        None | Some(Value::Null) => Err(Refused::Missing),
        Some(Value::Str(sign)) => Ok(sign),
        Some(_) => Err(Refused::Malformed),
    }
}

/// `$sign !== md5($text . $key)` for any of the route's keys.
fn md5_matches(verifier: &Verifier, text: &[u8], sign: &[u8]) -> Result<(), Refused> {
    lower_hex(sign, 32)?;
    let matched = secrets(&verifier.keys)?.iter().any(|secret| {
        let mut md5 = Md5::new();
        md5.update(text);
        md5.update(secret.expose());
        equal(&to_hex(&md5.finalize()), sign)
    });
    match matched {
        true => Ok(()),
        false => Err(Refused::BadSignature),
    }
}

/// `Malformed` unless `text` is `digits` lower-case hex digits, as PHP writes a digest.
fn lower_hex(text: &[u8], digits: usize) -> Result<(), Refused> {
    match text.len() == digits && text.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        true => Ok(()),
        false => Err(Refused::Malformed),
    }
}

pub(super) fn alipay(verifier: &Verifier, signed: &Signed<'_>) -> Result<(), Refused> {
    let Keys::PublicKey(key) = &verifier.keys else { return Err(Refused::BadSignature) };
    let mut params = params::input(signed)?;
    let signature = strict_base64(&take_sign(&mut params)?).ok_or(Refused::Malformed)?;
    params.remove(b"sign_type");
    if params.is_empty() {
        return Err(Refused::BadSignature);
    }
    params.ksort()?;
    let text = alipay_query(&params)?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key)
        .verify(&text, &signature)
        .map_err(|_| Refused::BadSignature)
}

/// PHP's `base64_decode($text, true)`.
fn strict_base64(text: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const PHP: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let compact: Vec<u8> = text.iter().copied().filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n')).collect();
    PHP.decode(compact).ok().filter(|bytes| !bytes.is_empty())
}

/// `AlipayF2F::buildQuery`: `"$key=$value"` joined with `&`, as PHP makes
/// the values strings.
fn alipay_query(params: &Array) -> Result<Vec<u8>, Refused> {
    let mut out = Vec::new();
    for (key, value) in params.iter() {
        if !out.is_empty() {
            out.push(b'&');
        }
        out.extend_from_slice(&key.text());
        out.push(b'=');
        match value {
            Value::Null | Value::Bool(false) => {}
            Value::Bool(true) => out.push(b'1'),
            Value::Int(int) => out.extend_from_slice(int.to_string().as_bytes()),
            Value::Str(text) => out.extend_from_slice(text),
            Value::Float | Value::Array(_) => return Err(Refused::Malformed),
        }
    }
    Ok(out)
}

pub(super) fn btcpay(verifier: &Verifier, signed: &Signed<'_>) -> Result<(), Refused> {
    let value = one(signed.headers, "btcpay-sig")?.as_bytes();
    lower_hex(value.strip_prefix(b"sha256=").ok_or(Refused::Malformed)?, 64)?;
    body_hex_mac(verifier, signed, b"sha256=", value)
}

pub(super) fn coinbase(verifier: &Verifier, signed: &Signed<'_>) -> Result<(), Refused> {
    let value = one(signed.headers, "x-cc-webhook-signature")?.as_bytes();
    lower_hex(value, 64)?;
    body_hex_mac(verifier, signed, b"", value)
}

/// `hash_equals($prefix . hash_hmac('sha256', trim($body), $key), $value)`.
fn body_hex_mac(verifier: &Verifier, signed: &Signed<'_>, prefix: &[u8], value: &[u8]) -> Result<(), Refused> {
    let body = trim(signed.body);
    let matched = verifier.macs().iter().any(|key| {
        let expected = [prefix, &to_hex(mac(key, &[body]).as_ref())].concat();
        equal(&expected, value)
    });
    match matched {
        true => Ok(()),
        false => Err(Refused::BadSignature),
    }
}

pub(super) fn coinpayments(verifier: &Verifier, signed: &Signed<'_>) -> Result<(), Refused> {
    let value = one(signed.headers, "hmac")?.as_bytes();
    lower_hex(value, 128)?;
    let mut params = params::input(signed)?;
    params.ksort()?;
    let text = stripslashes(&http_build_query(&params)?);
    let matched = verifier.macs().iter().any(|key| equal(&to_hex(mac(key, &[&text]).as_ref()), value));
    match matched {
        true => Ok(()),
        false => Err(Refused::BadSignature),
    }
}

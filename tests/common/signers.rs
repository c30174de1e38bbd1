//! Webhook signatures as each sender computes them (from their documentation),
//! for tests that send signed requests through hookgate's `verify`.

use base64::Engine;
use md5::{Digest, Md5};
use ring::hmac;

/// A request as a sender signs it: query, headers and body.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message).as_ref().to_vec()
}

fn hmac_sha512(key: &[u8], message: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA512, key), message).as_ref().to_vec()
}

/// What a route's secret file holds for `scheme` when the key is `key`.
pub fn secret_file_text(scheme: &str, key: &[u8]) -> String {
    match scheme {
        "standard_webhooks" => format!("whsec_{}", b64(key)),
        _ => String::from_utf8(key.to_vec()).unwrap(),
    }
}

/// The header that carries `scheme`'s signature (`None`: a `sign` parameter).
pub fn signature_header(scheme: &str) -> Option<&'static str> {
    Some(match scheme {
        "github" => "X-Hub-Signature-256",
        "stripe" => "Stripe-Signature",
        "standard_webhooks" => "webhook-signature",
        "shopify" => "X-Shopify-Hmac-SHA256",
        "slack" => "X-Slack-Signature",
        "hmac_sha256" => "X-Signature",
        "btcpay" => "Btcpay-Sig",
        "coinbase" => "X-Cc-Webhook-Signature",
        "coinpayments" => "Hmac",
        _ => return None,
    })
}

/// A body for `scheme` with `amount` in it: JSON for the generic schemes,
/// a form for the ones that post forms.
pub fn body(scheme: &str, amount: &str) -> Vec<u8> {
    match scheme {
        "epay_md5" | "mgate_md5" => {
            format!("money={amount}&out_trade_no=T1001&trade_no=2026120612&trade_status=TRADE_SUCCESS&type=alipay")
        }
        "coinpayments" => format!("amount1={amount}&ipn_type=api&merchant=m1&status=100&txn_id=CP1"),
        _ => format!(r#"{{"id":"evt_1","amount":{amount},"type":"charge.succeeded"}}"#),
    }
    .into_bytes()
}

/// `body` signed for `scheme` with `key` at unix time `at` (timestamped schemes).
pub fn sign(scheme: &str, key: &[u8], body: &[u8], at: u64) -> SignedRequest {
    let text = String::from_utf8_lossy(body);
    let header = |name: &str, value: String| vec![(name.to_string(), value)];
    let headers = match scheme {
        "github" => header("X-Hub-Signature-256", format!("sha256={}", hex(&hmac_sha256(key, body)))),
        "stripe" => {
            let v1 = hex(&hmac_sha256(key, format!("{at}.{text}").as_bytes()));
            header("Stripe-Signature", format!("t={at},v1={v1}"))
        }
        "standard_webhooks" => {
            let signature = b64(&hmac_sha256(key, format!("msg_1.{at}.{text}").as_bytes()));
            vec![
                ("webhook-id".into(), "msg_1".into()),
                ("webhook-timestamp".into(), at.to_string()),
                ("webhook-signature".into(), format!("v1,{signature}")),
            ]
        }
        "shopify" => header("X-Shopify-Hmac-SHA256", b64(&hmac_sha256(key, body))),
        "slack" => {
            let v0 = hex(&hmac_sha256(key, format!("v0:{at}:{text}").as_bytes()));
            vec![("X-Slack-Request-Timestamp".into(), at.to_string()), ("X-Slack-Signature".into(), format!("v0={v0}"))]
        }
        "hmac_sha256" => header("X-Signature", format!("sha256={}", b64(&hmac_sha256(key, body)))),
        "btcpay" => header("Btcpay-Sig", format!("sha256={}", hex(&hmac_sha256(key, body)))),
        "coinbase" => header("X-Cc-Webhook-Signature", hex(&hmac_sha256(key, body))),
        "coinpayments" => header("Hmac", hex(&hmac_sha512(key, body))),
        "epay_md5" | "mgate_md5" => return sign_params(scheme, key, body),
        other => panic!("no signer for {other}"),
    };
    let mut headers = headers;
    let form = matches!(scheme, "coinpayments");
    let content_type = if form { "application/x-www-form-urlencoded" } else { "application/json" };
    headers.push(("Content-Type".into(), content_type.into()));
    SignedRequest { query: String::new(), headers, body: body.to_vec() }
}

/// EPay's and Mgate's notify: `sign` = md5 of the key-sorted `k=v&...` (plain
/// ASCII values need no PHP encoding) followed by the key, added to the form
/// with `sign_type`, which Mgate signs too and EPay leaves out.
fn sign_params(scheme: &str, key: &[u8], body: &[u8]) -> SignedRequest {
    let text = String::from_utf8_lossy(body);
    let mut pairs: Vec<&str> = text.split('&').collect();
    if scheme == "mgate_md5" {
        pairs.push("sign_type=MD5");
    }
    pairs.sort_unstable();
    let signed = format!("{}{}", pairs.join("&"), String::from_utf8_lossy(key));
    let sign = hex(&Md5::digest(signed.as_bytes()));
    let body = format!("{text}&sign={sign}&sign_type=MD5").into_bytes();
    let headers = vec![("Content-Type".into(), "application/x-www-form-urlencoded".into())];
    SignedRequest { query: String::new(), headers, body }
}

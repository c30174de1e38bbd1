//! Signatures checked at the edge (`verify` on a route): a request whose
//! signature does not hold is refused with 401 before it is forwarded,
//! stored or counted as a dedupe key (`mode = "log"`: forwarded, and the
//! verdict logged and counted).
//!
//! A `Verifier` is one route's validated `verify` setting: its `Scheme`, its
//! keys (shared secrets, any one of which may verify, or an RSA public key)
//! and the `tolerance` of timestamped schemes. `check` is a pure function of
//! the request's headers, query and whole body and the time now; it compares
//! in constant time. The schemes follow each sender's own documentation or
//! code (see each scheme's module).
//!
//! The order of the verdicts: a signature header (or `sign` parameter) that
//! is absent is `Missing`; one that is repeated or cannot be read is
//! `Malformed`; then the signature is checked (`BadSignature`), and only a
//! request it admits has its time checked (`Stale`), so a forger learns
//! nothing from the clock.
//!
//! # Layout
//! - `header`: reading signature headers, digests, HMAC, the time window
//! - `generic`: github, stripe, standard_webhooks, shopify, slack, hmac_sha256
//! - `xboard`: XBoard's payment plugins (epay_md5 ... coinpayments)
//! - `params`: the parameters Laravel hands those plugins (query, form, JSON, middleware)
//! - `php`: PHP's array, `ksort`, `http_build_query`, `urldecode`, `stripslashes`
//! - `keys`: secrets and the RSA public key from their files

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, Method};
use ring::hmac;

use crate::secret::Secret;

mod generic;
mod header;
mod keys;
mod params;
mod php;
#[cfg(test)]
mod tests;
mod xboard;

/// How a signature is computed and carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
    Github,
    /// `Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]` over `"{t}.{body}"`.
    Stripe,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64> ...`
    /// over `"{id}.{timestamp}.{body}"`, `whsec_` base64 keys.
    StandardWebhooks,
    /// `X-Shopify-Hmac-SHA256: <base64 HMAC-SHA256 of the body>`.
    Shopify,
    /// `X-Slack-Signature: v0=<hex>` over `"v0:{X-Slack-Request-Timestamp}:{body}"`.
    Slack,
    /// Any other sender: an HMAC-SHA256 of the body in `header`.
    HmacSha256 { header: HeaderName, encoding: Encoding, prefix: String },
    /// XBoard's EPay plugin: md5 of the key-sorted parameters (PHP encoding) and the key.
    EpayMd5,
    /// XBoard's Mgate plugin: md5 of `http_build_query` of the key-sorted
    /// parameters without `sign` (no `urldecode`, no `stripslashes`) and the key.
    MgateMd5,
    /// XBoard's AlipayF2F plugin: SHA256withRSA over the key-sorted `k=v&...`, Alipay's public key.
    AlipayRsa2,
    /// XBoard's BTCPay plugin: `Btcpay-Sig: sha256=<hex HMAC-SHA256 of the trimmed body>`.
    Btcpay,
    /// XBoard's Coinbase plugin: `X-Cc-Webhook-Signature: <hex HMAC-SHA256 of the trimmed body>`.
    Coinbase,
    /// XBoard's CoinPayments plugin: `Hmac: <hex HMAC-SHA512>` of the key-sorted
    /// parameters as `stripslashes(http_build_query(...))` writes them.
    Coinpayments,
}

/// How `hmac_sha256` writes the digest in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Hex,
    Base64,
}

/// `enforce` refuses what fails; `log` forwards it and counts the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyMode {
    #[default]
    Enforce,
    Log,
}

impl VerifyMode {
    /// As the file writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyMode::Enforce => "enforce",
            VerifyMode::Log => "log",
        }
    }
}

/// What a scheme checks with.
#[derive(Debug, Clone)]
pub enum Keys {
    /// Shared secrets (rotation): any one that verifies admits the request.
    Secrets(Vec<Secret>),
    /// An RSA public key (`alipay_rsa2`), as PKCS#1 `RSAPublicKey` DER.
    PublicKey(Box<[u8]>),
}

/// One route's validated `verify`.
#[derive(Debug, Clone)]
pub struct Verifier {
    pub scheme: Scheme,
    pub keys: Keys,
    /// How far a timestamped scheme's time may be from now, both ways.
    pub tolerance: Duration,
    pub mode: VerifyMode,
    /// The secrets as HMAC keys of the scheme's digest, made once at load
    /// (none for the schemes that do not HMAC).
    macs: Vec<hmac::Key>,
}

/// The parts of a request a signature covers.
pub struct Signed<'a> {
    /// A GET or HEAD form body is not read as parameters (Laravel reads only
    /// the query for those, a JSON body aside).
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    /// The query string as the client sent it (without the `?`).
    pub query: Option<&'a str>,
    /// The whole body, as it arrived.
    pub body: &'a [u8],
}

impl<'a> Signed<'a> {
    /// A request with head `parts` (as it arrived) and `body` (whole).
    pub fn of(parts: &'a http::request::Parts, body: &'a [u8]) -> Signed<'a> {
        Signed { method: &parts.method, headers: &parts.headers, query: parts.uri.query(), body }
    }

    /// A body the parameter schemes (those that do not `needs_body`) leave
    /// unread: its `Content-Type` is neither a form nor JSON, or missing.
    pub fn body_unread_as_parameters(&self) -> bool {
        params::body_unread(self)
    }

    /// The top-level field `name` of Laravel's `$request->input()` (the JSON
    /// or form body over the query, names as PHP makes them) as the backend
    /// reads it as text: a string, or an integer's digits. `None` for another
    /// value, a missing one, one the form text it comes from gives twice, or a
    /// request PHP would not parse whole.
    pub fn input_field(&self, name: &str) -> Option<Vec<u8>> {
        params::field(self, name, false).ok().flatten()
    }

    /// The same of `$request->query()`.
    pub fn query_field(&self, name: &str) -> Option<Vec<u8>> {
        params::field(self, name, true).ok().flatten()
    }
}

/// The top-level name PHP registers a query or form pair's raw (encoded)
/// name under (`%61ccess.token[]` is `access_token`); `None` for a name PHP
/// drops.
pub fn php_name(raw: &[u8]) -> Option<Vec<u8>> {
    params::top_level_name(raw)
}

/// Why a request was refused. `label` is the metric's `result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no signature")]
    Missing,
    #[error("the signature does not match")]
    BadSignature,
    #[error("the signature is malformed or repeated")]
    Malformed,
    #[error("the signed timestamp is outside the tolerance")]
    Stale,
}

/// A key file that cannot be used for its scheme.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

impl Refused {
    /// `hookgate_verify_total{result}`: a malformed signature counts as a bad one.
    pub fn label(self) -> &'static str {
        match self {
            Refused::Missing => "missing",
            Refused::BadSignature | Refused::Malformed => "bad_signature",
            Refused::Stale => "stale",
        }
    }
}

impl Scheme {
    pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

    /// The schemes `verify.scheme` accepts, as the file writes them.
    pub const NAMES: [&str; 12] = [
        "github",
        "stripe",
        "standard_webhooks",
        "shopify",
        "slack",
        "hmac_sha256",
        "epay_md5",
        "mgate_md5",
        "alipay_rsa2",
        "btcpay",
        "coinbase",
        "coinpayments",
    ];

    /// As the file writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Scheme::Github => "github",
            Scheme::Stripe => "stripe",
            Scheme::StandardWebhooks => "standard_webhooks",
            Scheme::Shopify => "shopify",
            Scheme::Slack => "slack",
            Scheme::HmacSha256 { .. } => "hmac_sha256",
            Scheme::EpayMd5 => "epay_md5",
            Scheme::MgateMd5 => "mgate_md5",
            Scheme::AlipayRsa2 => "alipay_rsa2",
            Scheme::Btcpay => "btcpay",
            Scheme::Coinbase => "coinbase",
            Scheme::Coinpayments => "coinpayments",
        }
    }

    /// The scheme named `name`, of those that take no settings: every one
    /// but `hmac_sha256` (which needs its header).
    pub fn by_name(name: &str) -> Option<Scheme> {
        Some(match name {
            "github" => Scheme::Github,
            "stripe" => Scheme::Stripe,
            "standard_webhooks" => Scheme::StandardWebhooks,
            "shopify" => Scheme::Shopify,
            "slack" => Scheme::Slack,
            "epay_md5" => Scheme::EpayMd5,
            "mgate_md5" => Scheme::MgateMd5,
            "alipay_rsa2" => Scheme::AlipayRsa2,
            "btcpay" => Scheme::Btcpay,
            "coinbase" => Scheme::Coinbase,
            "coinpayments" => Scheme::Coinpayments,
            _ => return None,
        })
    }

    /// The HMAC a scheme computes with its secrets, if it computes one.
    fn mac_algorithm(&self) -> Option<hmac::Algorithm> {
        match self {
            Scheme::EpayMd5 | Scheme::MgateMd5 | Scheme::AlipayRsa2 => None,
            Scheme::Coinpayments => Some(hmac::HMAC_SHA512),
            _ => Some(hmac::HMAC_SHA256),
        }
    }

    /// Checked with a public key (`public_key_file`) rather than secrets.
    pub fn uses_public_key(&self) -> bool {
        matches!(self, Scheme::AlipayRsa2)
    }

    /// Signs a timestamp, so `tolerance` applies.
    pub fn is_timestamped(&self) -> bool {
        matches!(self, Scheme::Stripe | Scheme::StandardWebhooks | Scheme::Slack)
    }

    /// Signs the body only: a GET (no body) can never pass. The XBoard
    /// parameter schemes also read the query, which a GET notify carries.
    pub fn needs_body(&self) -> bool {
        !matches!(self, Scheme::EpayMd5 | Scheme::MgateMd5 | Scheme::AlipayRsa2 | Scheme::Coinpayments)
    }
}

impl Verifier {
    pub fn new(scheme: Scheme, keys: Keys, tolerance: Duration, mode: VerifyMode) -> Verifier {
        let macs = match (&keys, scheme.mac_algorithm()) {
            (Keys::Secrets(secrets), Some(algorithm)) => {
                secrets.iter().map(|secret| hmac::Key::new(algorithm, secret.expose())).collect()
            }
            _ => Vec::new(),
        };
        Verifier { scheme, keys, tolerance, mode, macs }
    }

    /// The secrets as HMAC keys (empty for the schemes that do not HMAC).
    fn macs(&self) -> &[hmac::Key] {
        &self.macs
    }

    /// Checks `signed` at `now`.
    pub fn check(&self, signed: &Signed<'_>, now: SystemTime) -> Result<(), Refused> {
        match &self.scheme {
            Scheme::Github => generic::github(self, signed),
            Scheme::Stripe => generic::stripe(self, signed, now),
            Scheme::StandardWebhooks => generic::standard_webhooks(self, signed, now),
            Scheme::Shopify => generic::shopify(self, signed),
            Scheme::Slack => generic::slack(self, signed, now),
            Scheme::HmacSha256 { header, encoding, prefix } => {
                generic::hmac_sha256(self, signed, header, *encoding, prefix)
            }
            Scheme::EpayMd5 => xboard::epay(self, signed),
            Scheme::MgateMd5 => xboard::mgate(self, signed),
            Scheme::AlipayRsa2 => xboard::alipay(self, signed),
            Scheme::Btcpay => xboard::btcpay(self, signed),
            Scheme::Coinbase => xboard::coinbase(self, signed),
            Scheme::Coinpayments => xboard::coinpayments(self, signed),
        }
    }
}

//! The generic senders' schemes, each as the sender's own documentation or
//! library defines it. All are HMAC-SHA256; any one of the route's secrets
//! may verify (rotation), and a secret is the bytes of its file except for
//! Standard Webhooks (`Keys::secrets` decodes its `whsec_` keys).
//!
//! - `github`: `X-Hub-Signature-256: sha256=<hex>` over the raw body (GitHub's
//!   "Validating webhook deliveries").
//! - `stripe`: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=...][,v0=...]` over
//!   `"{t}.{body}"`, the secret being the whole `whsec_...` string. Read as
//!   stripe-python's `WebhookSignature` does: items split at `,`, the first
//!   `t` is the time (re-written in decimal for the signed payload, as its
//!   `"%d.%s"` does), every `v1` a candidate, other schemes (`v0`) ignored; no
//!   `t`, a `t` that is not a number, or no `v1` at all is `Malformed`.
//! - `standard_webhooks`: `webhook-id`, `webhook-timestamp` and
//!   `webhook-signature` (space-separated `v1,<base64>` entries; other
//!   versions such as `v1a` are ignored) over `"{id}.{timestamp}.{body}"`,
//!   as the `standardwebhooks` library signs. The spec names no `svix-*`
//!   headers, so none are read.
//! - `shopify`: `X-Shopify-Hmac-SHA256: <base64>` over the raw body.
//! - `slack`: `X-Slack-Signature: v0=<hex>` over
//!   `"v0:{X-Slack-Request-Timestamp}:{body}"`, the timestamp as sent.
//! - `hmac_sha256`: the route's `header`, an optional `prefix` that must be
//!   there and is stripped, then the digest in hex or base64.
//!
//! Hex is read in either case and the digests compared as bytes: a receiver
//! that also takes upper case admits nothing the secret's holder did not sign.
//!
//! Timestamped schemes (stripe, standard_webhooks, slack) check the
//! signature first and the time second, as stripe-python does: `Stale` then
//! only ever answers a request signed with the secret, so a forger learns
//! nothing from it, while an unsigned one is `BadSignature` whatever its
//! time. The window is `tolerance` both ways (the libraries differ: Stripe's
//! checks only the past, Standard Webhooks' both), its bounds inside. A
//! timestamp must be decimal digits; anything else is `Malformed`.

use std::time::SystemTime;

use http::HeaderName;

use super::header::{all_present, any_mac, digest256, fresh, from_base64, from_hex, one, unix_seconds};
use super::{Encoding, Refused, Signed, Verifier};

// The senders' header names, made once: looked up by a `&str`, each request
// would parse the name again.
const X_HUB_SIGNATURE_256: HeaderName = HeaderName::from_static("x-hub-signature-256");
const X_SHOPIFY_HMAC_SHA256: HeaderName = HeaderName::from_static("x-shopify-hmac-sha256");
const STRIPE_SIGNATURE: HeaderName = HeaderName::from_static("stripe-signature");
const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
const X_SLACK_SIGNATURE: HeaderName = HeaderName::from_static("x-slack-signature");
const X_SLACK_REQUEST_TIMESTAMP: HeaderName = HeaderName::from_static("x-slack-request-timestamp");

pub(super) fn github(verifier: &Verifier, signed: &Signed<'_>) -> Result<(), Refused> {
    let value = one(signed.headers, &X_HUB_SIGNATURE_256)?;
    let digest = digest256(value.strip_prefix("sha256=").and_then(from_hex))?;
    body_mac(verifier, signed, digest)
}

pub(super) fn shopify(verifier: &Verifier, signed: &Signed<'_>) -> Result<(), Refused> {
    let digest = digest256(from_base64(one(signed.headers, &X_SHOPIFY_HMAC_SHA256)?))?;
    body_mac(verifier, signed, digest)
}

pub(super) fn hmac_sha256(
    verifier: &Verifier,
    signed: &Signed<'_>,
    header: &HeaderName,
    encoding: Encoding,
    prefix: &str,
) -> Result<(), Refused> {
    let value = one(signed.headers, header)?.strip_prefix(prefix).ok_or(Refused::Malformed)?;
    let digest = digest256(match encoding {
        Encoding::Hex => from_hex(value),
        Encoding::Base64 => from_base64(value),
    })?;
    body_mac(verifier, signed, digest)
}

fn body_mac(verifier: &Verifier, signed: &Signed<'_>, digest: Vec<u8>) -> Result<(), Refused> {
    match any_mac(verifier.macs(), &[signed.body], &[digest]) {
        true => Ok(()),
        false => Err(Refused::BadSignature),
    }
}

pub(super) fn stripe(verifier: &Verifier, signed: &Signed<'_>, now: SystemTime) -> Result<(), Refused> {
    let (at, candidates) = stripe_header(one(signed.headers, &STRIPE_SIGNATURE)?)?;
    let at_text = at.to_string();
    let parts: [&[u8]; 3] = [at_text.as_bytes(), b".", signed.body];
    if !any_mac(verifier.macs(), &parts, &candidates) {
        return Err(Refused::BadSignature);
    }
    fresh(at, now, verifier.tolerance)
}

/// The time and the `v1` candidates of a `Stripe-Signature`. A `v1` that is
/// not hex cannot match (stripe-python compares it as text and fails).
fn stripe_header(value: &str) -> Result<(u64, Vec<Vec<u8>>), Refused> {
    let mut at = None;
    let mut candidates = Vec::new();
    let mut any_v1 = false;
    for item in value.split(',') {
        // stripe-python: `item.split("=", 2)`, the value being the second piece.
        let mut pieces = item.split('=');
        let (name, text) = (pieces.next(), pieces.next());
        match (name, text) {
            (Some("t"), Some(text)) if at.is_none() => at = Some(unix_seconds(text).ok_or(Refused::Malformed)?),
            (Some("v1"), Some(text)) => {
                any_v1 = true;
                candidates.extend(from_hex(text));
            }
            (Some("t" | "v1"), None) => return Err(Refused::Malformed),
            _ => {}
        }
    }
    match (at, any_v1) {
        (Some(at), true) => Ok((at, candidates)),
        _ => Err(Refused::Malformed),
    }
}

pub(super) fn standard_webhooks(verifier: &Verifier, signed: &Signed<'_>, now: SystemTime) -> Result<(), Refused> {
    let headers = signed.headers;
    all_present(headers, &[WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE])?;
    let id = one(headers, &WEBHOOK_ID)?;
    let at_text = one(headers, &WEBHOOK_TIMESTAMP)?;
    let candidates = standard_signatures(one(headers, &WEBHOOK_SIGNATURE)?)?;
    let at = unix_seconds(at_text).ok_or(Refused::Malformed)?;
    // The library signs the time it parsed, re-written in decimal.
    let at_text = at.to_string();
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", at_text.as_bytes(), b".", signed.body];
    if !any_mac(verifier.macs(), &parts, &candidates) {
        return Err(Refused::BadSignature);
    }
    fresh(at, now, verifier.tolerance)
}

/// The `v1` signatures of a `webhook-signature`: `Malformed` when no entry has
/// the `<version>,<signature>` shape; a `v1` entry that is not base64 cannot
/// match (the library compares the entry as text).
fn standard_signatures(value: &str) -> Result<Vec<Vec<u8>>, Refused> {
    let mut shaped = false;
    let mut candidates = Vec::new();
    for entry in value.split(' ') {
        let Some((version, signature)) = entry.split_once(',') else { continue };
        shaped = true;
        if version == "v1" {
            candidates.extend(from_base64(signature));
        }
    }
    match shaped {
        true => Ok(candidates),
        false => Err(Refused::Malformed),
    }
}

pub(super) fn slack(verifier: &Verifier, signed: &Signed<'_>, now: SystemTime) -> Result<(), Refused> {
    let headers = signed.headers;
    all_present(headers, &[X_SLACK_SIGNATURE, X_SLACK_REQUEST_TIMESTAMP])?;
    let value = one(headers, &X_SLACK_SIGNATURE)?;
    let at_text = one(headers, &X_SLACK_REQUEST_TIMESTAMP)?;
    let digest = digest256(value.strip_prefix("v0=").and_then(from_hex))?;
    let at = unix_seconds(at_text).ok_or(Refused::Malformed)?;
    let parts: [&[u8]; 4] = [b"v0:", at_text.as_bytes(), b":", signed.body];
    if !any_mac(verifier.macs(), &parts, &[digest]) {
        return Err(Refused::BadSignature);
    }
    fresh(at, now, verifier.tolerance)
}

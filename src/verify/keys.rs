//! A route's keys from the bytes of its key files: the shared secrets of the
//! HMAC and MD5 schemes and Alipay's RSA public key. Read at start-up and on
//! reload, so every error names what is wrong with the file and never shows
//! a secret's bytes.
//!
//! - `standard_webhooks`: a `whsec_` key is its base64 (the prefix optional,
//!   padding optional, as the `standardwebhooks` library reads it).
//! - `coinpayments`: the secret PHP-`trim`med, as XBoard's plugin uses it.
//! - Every other scheme: the bytes as they are.
//! - `alipay_rsa2`: PEM `PUBLIC KEY` (SubjectPublicKeyInfo) or
//!   `RSA PUBLIC KEY` (PKCS#1), or the bare base64 of either, line breaks and
//!   spaces allowed, which is how XBoard's admin holds Alipay's key (the
//!   plugin's `loadKey` accepts the same). Held as the PKCS#1 `RSAPublicKey`
//!   DER that ring reads; 2048 to 8192 bits with an odd exponent of 3 up to
//!   2^33 - 1, what ring verifies.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::RSAPublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::{KeyError, Keys, Scheme, php};
use crate::secret::Secret;

/// Standard base64, its padding optional.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl Keys {
    /// The secrets of `scheme` from the bytes of its secret files (a
    /// trailing newline already removed): `standard_webhooks` takes `whsec_`
    /// base64 keys, `coinpayments` trims, every other scheme takes the bytes
    /// as they are.
    pub fn secrets(scheme: &Scheme, files: Vec<Vec<u8>>) -> Result<Keys, KeyError> {
        if scheme.uses_public_key() {
            return Err(KeyError(format!("{} checks with a public key (public_key_file), not secrets", scheme.name())));
        }
        let secrets = files.iter().enumerate().map(|(n, file)| secret(scheme, file, n + 1, files.len()));
        Ok(Keys::Secrets(secrets.collect::<Result<_, _>>()?))
    }

    /// An RSA public key from a file: PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`)
    /// or the bare base64 of the `PUBLIC KEY` that XBoard's admin holds.
    pub fn public_key(file: &[u8]) -> Result<Keys, KeyError> {
        let text = std::str::from_utf8(file)
            .map_err(|_| KeyError("the public key file is not text: expected PEM or base64".into()))?
            .trim();
        let der = match text.starts_with("-----BEGIN") {
            true => pem(text)?,
            false => bare_base64(text)?,
        };
        Ok(Keys::PublicKey(rsa_pkcs1(&der)?.into_boxed_slice()))
    }
}

fn secret(scheme: &Scheme, file: &[u8], n: usize, of: usize) -> Result<Secret, KeyError> {
    let which = || if of > 1 { format!("secret {n} of {of}") } else { "the secret".into() };
    let bytes = match scheme {
        Scheme::StandardWebhooks => {
            let text = file.strip_prefix(b"whsec_").unwrap_or(file);
            LENIENT.decode(text).map_err(|_| {
                KeyError(format!("{} is not a standard_webhooks key: expected `whsec_` and base64", which()))
            })?
        }
        Scheme::Coinpayments => php::trim(file).to_vec(),
        _ => file.to_vec(),
    };
    match bytes.is_empty() {
        true => Err(KeyError(format!("{} is empty", which()))),
        false => Ok(Secret::new(&bytes)),
    }
}

/// The DER inside one PEM block labelled `PUBLIC KEY` or `RSA PUBLIC KEY`.
fn pem(text: &str) -> Result<Vec<u8>, KeyError> {
    let first = text.lines().next().unwrap_or_default().trim();
    let label = first
        .strip_prefix("-----BEGIN ")
        .and_then(|rest| rest.strip_suffix("-----"))
        .ok_or_else(|| KeyError("the PEM's first line is not `-----BEGIN <label>-----`".into()))?;
    if label != "PUBLIC KEY" && label != "RSA PUBLIC KEY" {
        return Err(KeyError(format!(
            "a PEM `{label}`, not a public key: give Alipay's public key (`PUBLIC KEY` or `RSA PUBLIC KEY`)"
        )));
    }
    let end = format!("-----END {label}-----");
    let body = text
        .strip_prefix(first)
        .and_then(|rest| rest.trim_end().strip_suffix(end.as_str()))
        .ok_or_else(|| KeyError(format!("the PEM does not end with `{end}`")))?;
    decode(body).ok_or_else(|| KeyError(format!("the PEM `{label}` is not valid base64")))
}

fn bare_base64(text: &str) -> Result<Vec<u8>, KeyError> {
    decode(text).ok_or_else(|| {
        KeyError(
            "not a PEM `PUBLIC KEY` or `RSA PUBLIC KEY`, nor the base64 of one (as XBoard's admin holds it)".into(),
        )
    })
}

/// Base64 with any whitespace in it, as PEM bodies and pasted keys have.
fn decode(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    LENIENT.decode(compact).ok().filter(|der| !der.is_empty())
}

/// The PKCS#1 `RSAPublicKey` of a SubjectPublicKeyInfo or of itself, checked
/// for what ring can verify with.
fn rsa_pkcs1(der: &[u8]) -> Result<Vec<u8>, KeyError> {
    let pkcs1 = match SubjectPublicKeyInfo::from_der(der) {
        Ok(([], spki)) => {
            if spki.algorithm.algorithm != x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION {
                return Err(KeyError(format!("a {} key, not RSA", spki.algorithm.algorithm)));
            }
            spki.subject_public_key.data.to_vec()
        }
        _ => der.to_vec(),
    };
    let (rest, key) = RSAPublicKey::from_der(&pkcs1)
        .map_err(|_| KeyError("not an RSA public key (neither SubjectPublicKeyInfo nor PKCS#1)".into()))?;
    if !rest.is_empty() {
        return Err(KeyError("trailing bytes after the RSA public key".into()));
    }
    let bits = bit_length(key.modulus);
    if !(2048..=8192).contains(&bits) {
        return Err(KeyError(format!("an RSA key of {bits} bits: alipay_rsa2 takes 2048 to 8192 (Alipay's are 2048)")));
    }
    match key.try_exponent() {
        Ok(e) if e >= 3 && e % 2 == 1 && e < 1 << 33 => Ok(pkcs1),
        _ => Err(KeyError("an RSA public exponent that is not odd and from 3 to 2^33 - 1".into())),
    }
}

/// Bits of a big-endian unsigned integer, leading zeros not counted.
fn bit_length(bytes: &[u8]) -> usize {
    let significant = bytes.iter().skip_while(|&&b| b == 0);
    let mut rest = significant.clone();
    match rest.next() {
        Some(&first) => 8 * significant.count() - first.leading_zeros() as usize,
        None => 0,
    }
}

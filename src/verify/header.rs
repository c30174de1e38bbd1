//! The pieces every scheme is built from: reading a signature header, the
//! digest encodings senders write, the HMACs over a request's parts compared
//! in constant time, and the time window of timestamped schemes.
//!
//! A signature header must appear once: two values give two readings, and a
//! proxy and the application behind it may not pick the same one, so a repeated
//! one is `Malformed`. A header that is absent or empty is `Missing` (the
//! Standard Webhooks and Stripe libraries treat an empty one as absent). A value
//! that is not visible ASCII is `Malformed`.
//!
//! Not here: what each scheme signs (`generic`, `xboard`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http::header::AsHeaderName;
use http::{HeaderMap, HeaderName};
use ring::hmac;
use subtle::ConstantTimeEq;

use super::{Keys, Refused};
use crate::secret::Secret;

/// `Missing` unless every one of `names` is present: a request without one of
/// a scheme's headers is unsigned, whatever the others hold.
pub(super) fn all_present(headers: &HeaderMap, names: &[HeaderName]) -> Result<(), Refused> {
    match names.iter().all(|name| headers.contains_key(name)) {
        true => Ok(()),
        false => Err(Refused::Missing),
    }
}

/// The one value of `name`, as text.
pub(super) fn one<K: AsHeaderName>(headers: &HeaderMap, name: K) -> Result<&str, Refused> {
    let mut values = headers.get_all(name).into_iter();
    let value = values.next().ok_or(Refused::Missing)?;
    if values.next().is_some() {
        return Err(Refused::Malformed);
    }
    match value.to_str() {
        Ok("") => Err(Refused::Missing),
        Ok(text) => Ok(text),
        Err(_) => Err(Refused::Malformed),
    }
}

/// The secrets of a shared-secret scheme; a verifier wired with a public key
/// instead verifies nothing.
pub(super) fn secrets(keys: &Keys) -> Result<&[Secret], Refused> {
    match keys {
        Keys::Secrets(secrets) => Ok(secrets),
        Keys::PublicKey(_) => Err(Refused::BadSignature),
    }
}

/// HMAC of the concatenation of `parts`, without copying the body to join them.
pub(super) fn mac(key: &hmac::Key, parts: &[&[u8]]) -> hmac::Tag {
    let mut context = hmac::Context::with_key(key);
    for part in parts {
        context.update(part);
    }
    context.sign()
}

/// Whether the HMAC of `parts` under any of `secrets` (rotation) equals any of
/// `candidates` (Stripe and Standard Webhooks may send several).
pub(super) fn any_mac(keys: &[hmac::Key], parts: &[&[u8]], candidates: &[Vec<u8>]) -> bool {
    keys.iter().any(|key| {
        let tag = mac(key, parts);
        candidates.iter().any(|candidate| equal(tag.as_ref(), candidate))
    })
}

/// Constant time for equal lengths; a length says nothing about a digest.
pub(super) fn equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Hex in either case, as bytes; `None` for anything else.
pub(super) fn from_hex(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    // No branch per digit: the marks of bad digits are gathered and looked at once.
    let mut out = vec![0; bytes.len() / 2];
    let mut marks = 0;
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let (high, low) = (NIBBLES[usize::from(pair[0])], NIBBLES[usize::from(pair[1])]);
        marks |= high | low;
        *byte = high << 4 | low;
    }
    // Each is 0-15 or `NOT_HEX`, whose bit survives the `|`.
    (marks & NOT_HEX == 0).then_some(out)
}

/// Marks a byte that is not a hex digit in `NIBBLES`.
const NOT_HEX: u8 = 0x80;

/// The value of each byte as a hex digit, or `NOT_HEX`: a table rather than a
/// `match`, since every signed request decodes 64 digits (a third of what the
/// check cost besides the HMAC, by the branches).
const NIBBLES: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Lower-case hex, as PHP's `md5()` and `hash_hmac()` write a digest.
pub(super) fn to_hex(bytes: &[u8]) -> Vec<u8> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]).collect()
}

/// Standard base64 with its padding (RFC 4648 §4), as Shopify and Standard
/// Webhooks write a digest.
pub(super) fn from_base64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// A 32-byte (SHA-256) digest in `text`, or `Malformed`.
pub(super) fn digest256(decoded: Option<Vec<u8>>) -> Result<Vec<u8>, Refused> {
    decoded.filter(|digest| digest.len() == 32).ok_or(Refused::Malformed)
}

/// Unix seconds written as decimal digits only (no sign, space or fraction).
pub(super) fn unix_seconds(text: &str) -> Option<u64> {
    match !text.is_empty() && text.len() <= 19 && text.bytes().all(|b| b.is_ascii_digit()) {
        true => text.parse().ok(),
        false => None,
    }
}

/// `Stale` when `at` is more than `tolerance` before or after `now`; the bound
/// itself is inside, as in the Standard Webhooks library.
pub(super) fn fresh(at: u64, now: SystemTime, tolerance: Duration) -> Result<(), Refused> {
    let Some(at) = UNIX_EPOCH.checked_add(Duration::from_secs(at)) else { return Err(Refused::Stale) };
    let distance = match now.duration_since(at) {
        Ok(age) => age,
        Err(ahead) => ahead.duration(),
    };
    match distance <= tolerance {
        true => Ok(()),
        false => Err(Refused::Stale),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_reads_either_case_and_refuses_the_rest() {
        assert_eq!(from_hex("00fFaB"), Some(vec![0, 255, 171]));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("+1"), None);
        assert_eq!(to_hex(&[0, 255, 171]), b"00ffab");
    }

    #[test]
    fn hex_table_agrees_with_the_standard_library_for_every_byte() {
        for byte in 0..=127u8 {
            let want = char::from(byte).to_digit(16).map(|d| d as u8);
            let high = String::from_utf8(vec![byte, b'0']).unwrap();
            let low = String::from_utf8(vec![b'0', byte]).unwrap();
            assert_eq!(from_hex(&high).map(|bytes| bytes[0] >> 4), want, "{byte:#04x} first");
            assert_eq!(from_hex(&low).map(|bytes| bytes[0]), want, "{byte:#04x} second");
        }
        // Bytes of a multi-byte character are never digits.
        assert_eq!(from_hex("\u{e9}"), None);
        assert_eq!(from_hex("0\u{e9}0"), None);
    }

    #[test]
    fn seconds_are_digits_only() {
        assert_eq!(unix_seconds("1700000000"), Some(1_700_000_000));
        for bad in ["", "+5", "-5", " 5", "5.0", "1e9", "99999999999999999999"] {
            assert_eq!(unix_seconds(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_window_holds_both_ways_with_its_bounds_inside() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let five = Duration::from_secs(300);
        assert_eq!(fresh(700, now, five), Ok(()));
        assert_eq!(fresh(1_300, now, five), Ok(()));
        assert_eq!(fresh(699, now, five), Err(Refused::Stale));
        assert_eq!(fresh(1_301, now, five), Err(Refused::Stale));
        assert_eq!(fresh(u64::MAX, now, five), Err(Refused::Stale));
    }
}

//! Form fields for the `form:` and `query:` dedupe keys: a field of a query
//! string or urlencoded body, read as PHP reads it (percent-decoded, `+` as a
//! space), without parsing the rest of the form.

use http::header;
use http::request::Parts;

/// Whether the request body is a form (`application/x-www-form-urlencoded`),
/// which is what PHP parses into `$_POST`.
pub(super) fn is_urlencoded(parts: &Parts) -> bool {
    let Some(value) = parts.headers.get(header::CONTENT_TYPE) else { return false };
    let media = value.as_bytes().split(|&b| b == b';').next().unwrap_or_default();
    media.trim_ascii().eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
}

/// A field looked up in `a=1&b=2` form.
pub(super) enum Field {
    Absent,
    /// Given once: its value, decoded.
    Once(Vec<u8>),
    /// Given more than once: no key (PHP would keep the last, another reader the first).
    Repeated,
}

impl Field {
    /// The value of a field given once.
    pub(super) fn once(self) -> Option<Vec<u8>> {
        match self {
            Field::Once(value) => Some(value),
            Field::Absent | Field::Repeated => None,
        }
    }
}

/// The field `name` of `form` (a query string or urlencoded body), names and
/// values compared and returned percent-decoded, `+` as a space.
pub(super) fn field(form: &[u8], name: &[u8]) -> Field {
    let mut found = Field::Absent;
    for pair in form.split(|&b| b == b'&') {
        let (raw_name, raw_value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        if !decodes_to(raw_name, name) {
            continue;
        }
        if !matches!(found, Field::Absent) {
            return Field::Repeated;
        }
        found = Field::Once(decode(raw_value));
    }
    found
}

/// Whether `raw` percent-decodes to `want`, without allocating.
fn decodes_to(raw: &[u8], want: &[u8]) -> bool {
    let mut decoded = Decoded { raw, at: 0 };
    want.iter().all(|&b| decoded.next() == Some(b)) && decoded.next().is_none()
}

fn decode(raw: &[u8]) -> Vec<u8> {
    Decoded { raw, at: 0 }.collect()
}

/// The bytes of a form component, percent-decoded, `+` as a space. A `%`
/// not followed by two hex digits stays as it is (as PHP's `urldecode` leaves it).
struct Decoded<'a> {
    raw: &'a [u8],
    at: usize,
}

impl Iterator for Decoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let b = *self.raw.get(self.at)?;
        self.at += 1;
        match b {
            b'+' => Some(b' '),
            b'%' => {
                let hex = |i: usize| self.raw.get(i).and_then(|&d| (d as char).to_digit(16));
                match (hex(self.at), hex(self.at + 1)) {
                    (Some(high), Some(low)) => {
                        self.at += 2;
                        Some((high * 16 + low) as u8)
                    }
                    _ => Some(b'%'),
                }
            }
            b => Some(b),
        }
    }
}

//! PHP's array and the PHP functions XBoard's payment plugins sign with,
//! emulated byte for byte for the inputs a notify can carry (PHP 8, checked
//! against Debian's php-cli 8.2 by the vectors in `tests/data/verify/`).
//!
//! - The array: ordered; a key is an integer or a byte string, and a string
//!   that is a canonical decimal integer (`"7"`, `"-3"`, not `"07"` or
//!   `"-0"`) becomes an integer key, as every PHP array store does. Writing an
//!   existing key keeps its place; `$a[] = v` takes one more than the largest
//!   integer key so far (0 at first), and is dropped when that slot is taken.
//! - `ksort` (PHP 8, `SORT_REGULAR`): two integer keys compare as numbers, two
//!   strings as bytes unless both are numeric strings, an integer and a
//!   non-numeric string as the integer's decimal text against the string.
//!   With one numeric key or none, or with integer keys only, that is a total
//!   order and any sort gives PHP's result. Other mixes (`9`, `10` and `"1a"`
//!   compare in a circle) depend on the steps of PHP's own sort, which is not
//!   reproduced: such parameters are refused (`Malformed`). No gateway sends
//!   numeric parameter names.
//! - `http_build_query` (RFC 1738 `urlencode`: letters, digits and `-._` kept,
//!   space as `+`, every other byte `%XX` in upper case; `&` between pairs):
//!   null values are left out, `true`/`false` are written `1`/`0`, integers in
//!   decimal, nested arrays as `a%5Bb%5D=v` (nothing for an empty one). Floats,
//!   which only a JSON body can carry, are not written here: refused.
//! - `urldecode` (`+` is a space, `%XX` with two hex digits a byte, any other
//!   `%` kept) and `stripslashes` (`\x` becomes `x`, `\0` a NUL byte, a last
//!   lone `\` goes).
//!
//! Not here: which parameters a request has (`params`) or how a plugin
//! combines them (`xboard`).

use indexmap::IndexMap;

use super::Refused;

/// An array key after PHP's numeric-string conversion.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Key {
    Int(i64),
    Str(Vec<u8>),
}

/// The values `$request->input()` can hold.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    /// Only from JSON; never signed here (see the module header).
    Float,
    Str(Vec<u8>),
    Array(Array),
}

/// A PHP array: insertion-ordered, with PHP's next free integer key.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Array {
    entries: IndexMap<Key, Value>,
    /// PHP's `nNextFreeElement`: `None` until an integer key is stored.
    next: Option<i64>,
}

impl Key {
    /// The key PHP stores `bytes` under (`ZEND_HANDLE_NUMERIC_STR`).
    pub(super) fn from_bytes(bytes: &[u8]) -> Key {
        let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
        let canonical = match digits {
            [b'0'] => bytes.len() == 1,
            [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
            _ => false,
        };
        let parsed = canonical.then(|| std::str::from_utf8(bytes).ok()?.parse::<i64>().ok()).flatten();
        match parsed {
            Some(int) => Key::Int(int),
            None => Key::Str(bytes.to_vec()),
        }
    }

    /// The key as PHP writes it in a string.
    pub(super) fn text(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            Key::Int(int) => int.to_string().into_bytes().into(),
            Key::Str(bytes) => bytes.as_slice().into(),
        }
    }

    fn is_numeric(&self) -> bool {
        match self {
            Key::Int(_) => true,
            Key::Str(bytes) => is_numeric_string(bytes),
        }
    }
}

impl Array {
    pub(super) fn iter(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.entries.iter()
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&Key, &mut Value)> {
        self.entries.iter_mut()
    }

    pub(super) fn get(&self, key: &Key) -> Option<&Value> {
        self.entries.get(key)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `unset($a[$key])`; the others keep their order.
    pub(super) fn remove(&mut self, key: &[u8]) -> Option<Value> {
        self.entries.shift_remove(&Key::from_bytes(key))
    }

    /// `$a[$key] = $value`.
    pub(super) fn set(&mut self, key: Key, value: Value) {
        if let Key::Int(int) = key {
            self.saw_int(int);
        }
        self.entries.insert(key, value);
    }

    /// `$a[] = $value`: false (nothing stored) when the next slot is taken.
    pub(super) fn push(&mut self, value: Value) -> bool {
        let key = Key::Int(self.next.unwrap_or(0));
        if self.entries.contains_key(&key) {
            return false;
        }
        self.set(key, value);
        true
    }

    /// The array at `$a[$key]`, made (or put in the place of a scalar) first.
    pub(super) fn array_at(&mut self, key: Key) -> Option<&mut Array> {
        if let Key::Int(int) = key {
            self.saw_int(int);
        }
        let slot = self.entries.entry(key).or_insert(Value::Null);
        if !matches!(slot, Value::Array(_)) {
            *slot = Value::Array(Array::default());
        }
        match slot {
            Value::Array(array) => Some(array),
            _ => None,
        }
    }

    /// `$a[] = []`, returning the new array; `None` when the next slot is taken.
    pub(super) fn push_array(&mut self) -> Option<&mut Array> {
        let key = Key::Int(self.next.unwrap_or(0));
        if self.entries.contains_key(&key) {
            return None;
        }
        self.array_at(key)
    }

    /// `$a + $b`: `a`'s entries, then those of `b` whose keys `a` lacks.
    pub(super) fn union(mut self, other: Array) -> Array {
        for (key, value) in other.entries {
            if !self.entries.contains_key(&key) {
                self.set(key, value);
            }
        }
        self
    }

    fn saw_int(&mut self, int: i64) {
        if self.next.is_none_or(|next| int >= next) {
            self.next = Some(int.saturating_add(1));
        }
    }

    /// `ksort($a)`, or `Malformed` where PHP's order is not a total one (see
    /// the module header).
    pub(super) fn ksort(&mut self) -> Result<(), Refused> {
        if self.entries.keys().all(|key| matches!(key, Key::Int(_))) {
            let int = |key: &Key| match key {
                Key::Int(int) => *int,
                Key::Str(_) => 0,
            };
            self.entries.sort_by(|a, _, b, _| int(a).cmp(&int(b)));
            return Ok(());
        }
        if self.entries.keys().filter(|key| key.is_numeric()).count() > 1 {
            return Err(Refused::Malformed);
        }
        self.entries.sort_by(|a, _, b, _| a.text().cmp(&b.text()));
        Ok(())
    }
}

/// PHP 8's `is_numeric_string`: optional leading and trailing whitespace
/// around a decimal number with an optional sign, fraction and exponent.
fn is_numeric_string(bytes: &[u8]) -> bool {
    const SPACE: &[u8] = b" \t\n\r\x0b\x0c";
    let start = bytes.iter().position(|b| !SPACE.contains(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !SPACE.contains(b)).map_or(start, |i| i + 1);
    let mut rest = bytes.get(start..end).unwrap_or_default();
    rest = rest.strip_prefix(b"+").or_else(|| rest.strip_prefix(b"-")).unwrap_or(rest);
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    let whole = digits(rest);
    rest = &rest[whole..];
    let mut fraction = 0;
    if let Some(after) = rest.strip_prefix(b".") {
        fraction = digits(after);
        rest = &after[fraction..];
    }
    if whole + fraction == 0 {
        return false;
    }
    if let Some(after) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let after = after.strip_prefix(b"+").or_else(|| after.strip_prefix(b"-")).unwrap_or(after);
        let exponent = digits(after);
        if exponent > 0 {
            rest = &after[exponent..];
        }
    }
    rest.is_empty()
}

/// `http_build_query($a)`, or `Malformed` for a float (see the module header).
pub(super) fn http_build_query(array: &Array) -> Result<Vec<u8>, Refused> {
    let mut out = Vec::new();
    build_query(&mut out, array, None)?;
    Ok(out)
}

fn build_query(out: &mut Vec<u8>, array: &Array, prefix: Option<&[u8]>) -> Result<(), Refused> {
    for (key, value) in array.iter() {
        let mut name = Vec::new();
        if let Some(prefix) = prefix {
            name.extend_from_slice(prefix);
        }
        urlencode_into(&mut name, &key.text());
        if prefix.is_some() {
            name.extend_from_slice(b"%5D");
        }
        let scalar: std::borrow::Cow<'_, [u8]> = match value {
            Value::Null => continue,
            Value::Float => return Err(Refused::Malformed),
            Value::Array(inner) => {
                name.extend_from_slice(b"%5B");
                build_query(out, inner, Some(&name))?;
                continue;
            }
            Value::Bool(flag) => (if *flag { &b"1"[..] } else { &b"0"[..] }).into(),
            Value::Int(int) => int.to_string().into_bytes().into(),
            Value::Str(bytes) => bytes.as_slice().into(),
        };
        if !out.is_empty() {
            out.push(b'&');
        }
        out.extend_from_slice(&name);
        out.push(b'=');
        urlencode_into(out, &scalar);
    }
    Ok(())
}

/// PHP's `urlencode` (RFC 1738).
fn urlencode_into(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => out.push(b),
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]),
        }
    }
}

/// PHP's `urldecode` (and the decoding of names and values by `parse_str`).
pub(super) fn urldecode(bytes: &[u8]) -> Vec<u8> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = match (b, bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => Some(high << 4 | low),
            _ => None,
        };
        match (b, escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// PHP's `stripslashes`.
pub(super) fn stripslashes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes.iter();
    while let Some(&b) = rest.next() {
        match (b, b == b'\\') {
            (_, true) => match rest.next() {
                Some(b'0') => out.push(0),
                Some(&next) => out.push(next),
                None => {}
            },
            (b, false) => out.push(b),
        }
    }
    out
}

/// PHP's `trim` with its default characters (` \t\n\r\0\x0B`).
pub(super) fn trim(bytes: &[u8]) -> &[u8] {
    const TRIMMED: &[u8] = b" \t\n\r\0\x0b";
    let start = bytes.iter().position(|b| !TRIMMED.contains(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !TRIMMED.contains(b)).map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

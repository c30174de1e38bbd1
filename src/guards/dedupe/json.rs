//! One value of a JSON body, found by an RFC 6901 pointer without building
//! the document (`json:/pointer` and `telegram_update_id` keys).
//!
//! The walk follows the pointer and skips everything before the value it
//! names: strings with a vectorised search for their closing quote,
//! containers by counting brackets (every string must end and every bracket
//! close). It stops at that value: what follows it is not read, so a body's
//! cost is what comes before its key (Telegram's `update_id` comes first).
//! So it is not a validator, and when an object names the member twice, the
//! first is the key (PHP's `json_decode` keeps the last): a sender that can
//! get such a body past the route's guards could as well send the other key
//! itself, and Telegram and the gateways never write one. Nothing here
//! allocates, except to decode a member name or string that has escapes.

/// What the pointer found.
#[derive(Debug, PartialEq, Eq)]
pub enum Found<'a> {
    /// A number, `true` or `false`, as written.
    Scalar(&'a [u8]),
    /// A string: what is written between its quotes, escapes not decoded.
    Text(&'a [u8]),
    /// An object, an array or `null`.
    Other,
}

/// The body is not JSON, as far as the walk read it.
#[derive(Debug)]
struct Malformed;

/// The value `pointer` (its reference tokens, unescaped) names in `body`:
/// `None` when there is none, or when the body is malformed before it.
pub fn find<'a, T: AsRef<str>>(body: &'a [u8], pointer: &[T]) -> Option<Found<'a>> {
    Scanner { b: body, i: 0 }.value(pointer).ok()?
}

/// A string's content (as `Found::Text` gives it) with its escapes decoded;
/// `None` if an escape is invalid. Borrowed when there is nothing to decode.
pub fn unescape(raw: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    if !raw.contains(&b'\\') {
        return Some(std::borrow::Cow::Borrowed(raw));
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    let text: String = serde_json::from_slice(&quoted).ok()?;
    Some(std::borrow::Cow::Owned(text.into_bytes()))
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// At a value (whitespace before it allowed): the value `pointer` names within it.
    fn value<T: AsRef<str>>(&mut self, pointer: &[T]) -> Result<Option<Found<'a>>, Malformed> {
        self.ws();
        let Some((token, rest)) = pointer.split_first() else { return self.target().map(Some) };
        match self.peek() {
            Some(b'{') => self.object(token, rest),
            Some(b'[') => self.array(token, rest),
            _ => self.skip().map(|()| None),
        }
    }

    /// The value the pointer ends at. A number or literal must end where
    /// the value does (`12abc` is no `12`).
    fn target(&mut self) -> Result<Found<'a>, Malformed> {
        let start = self.i;
        let scalar = match self.peek() {
            Some(b'"') => return self.string().map(Found::Text),
            Some(b'{' | b'[') => return self.container().map(|()| Found::Other),
            Some(b'n') => return self.literal(b"null").map(|()| Found::Other),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(Malformed),
        };
        match (scalar, self.peek()) {
            (Ok(()), None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')) => {
                Ok(Found::Scalar(&self.b[start..self.i]))
            }
            _ => Err(Malformed),
        }
    }

    /// An object (at its `{`): the member named `token`, followed by `rest`.
    fn object<T: AsRef<str>>(&mut self, token: &T, rest: &[T]) -> Result<Option<Found<'a>>, Malformed> {
        self.i += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(None);
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(Malformed);
            }
            let name = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(Malformed);
            }
            self.i += 1;
            if is_named(name, token.as_ref()) {
                return self.value(rest);
            }
            self.skip()?;
            if self.close(b'}')? {
                return Ok(None);
            }
        }
    }

    /// An array (at its `[`): the element `token` indexes, followed by `rest`.
    fn array<T: AsRef<str>>(&mut self, token: &T, rest: &[T]) -> Result<Option<Found<'a>>, Malformed> {
        let index = array_index(token.as_ref());
        self.i += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(None);
        }
        for n in 0usize.. {
            if Some(n) == index {
                return self.value(rest);
            }
            self.skip()?;
            if self.close(b']')? {
                break;
            }
        }
        Ok(None)
    }

    /// After a member or element: `true` at the container's end (`close`),
    /// `false` at a comma.
    fn close(&mut self, close: u8) -> Result<bool, Malformed> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(false)
            }
            Some(b) if b == close => {
                self.i += 1;
                Ok(true)
            }
            _ => Err(Malformed),
        }
    }

    /// Skips one value.
    fn skip(&mut self) -> Result<(), Malformed> {
        self.ws();
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'{' | b'[') => self.container(),
            Some(_) => self.bare(),
            None => Err(Malformed),
        }
    }

    /// A number or literal skipped: the bytes up to the next delimiter (at least one).
    fn bare(&mut self) -> Result<(), Malformed> {
        let start = self.i;
        while let Some(b) = self.peek() {
            if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'{' | b'[' | b':') {
                break;
            }
            self.i += 1;
        }
        if self.i == start { Err(Malformed) } else { Ok(()) }
    }

    /// An object or array skipped (at its bracket): brackets counted, strings skipped whole.
    fn container(&mut self) -> Result<(), Malformed> {
        let mut depth = 0usize;
        while let Some(&b) = self.b.get(self.i) {
            match b {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.i += 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        Err(Malformed)
    }

    /// A string (at its opening quote): what is between the quotes.
    fn string(&mut self) -> Result<&'a [u8], Malformed> {
        let start = self.i + 1;
        let mut at = start;
        loop {
            let rest = self.b.get(at..).ok_or(Malformed)?;
            at += memchr::memchr2(b'"', b'\\', rest).ok_or(Malformed)?;
            if self.b[at] == b'"' {
                self.i = at + 1;
                return Ok(&self.b[start..at]);
            }
            // A backslash: the byte after it is escaped (a `\uXXXX`'s digits need no care).
            at += 2;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Malformed> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    /// A number, checked against JSON's grammar (RFC 8259 §6).
    fn number(&mut self) -> Result<(), Malformed> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits()?,
            _ => return Err(Malformed),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.digits()?;
        }
        Ok(())
    }

    /// One or more digits.
    fn digits(&mut self) -> Result<(), Malformed> {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        if self.i == start { Err(Malformed) } else { Ok(()) }
    }
}

/// Whether a member name (as written, escapes and all) is `token`.
fn is_named(raw: &[u8], token: &str) -> bool {
    let token = token.as_bytes();
    if raw.len() < token.len() {
        return false; // Decoding never lengthens a name.
    }
    if raw.contains(&b'\\') { unescape(raw).is_some_and(|name| *name == *token) } else { raw == token }
}

/// The array index a reference token names: `0`, or digits without a leading zero.
fn array_index(token: &str) -> Option<usize> {
    let digits = token.bytes().all(|b| b.is_ascii_digit());
    if token.is_empty() || !digits || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<'a>(body: &'a str, pointer: &[&str]) -> Option<Found<'a>> {
        find(body.as_bytes(), pointer)
    }

    #[test]
    fn a_pointer_finds_scalars_strings_and_nested_values() {
        let body = r#" {"id": "evt_1", "n": -12.5e3, "ok": true, "data": {"object": {"ids": [7, {"x": "a\"b"}]}}, "nil": null} "#;
        assert_eq!(at(body, &["id"]), Some(Found::Text(b"evt_1")));
        assert_eq!(at(body, &["n"]), Some(Found::Scalar(b"-12.5e3")));
        assert_eq!(at(body, &["ok"]), Some(Found::Scalar(b"true")));
        assert_eq!(at(body, &["data", "object", "ids", "0"]), Some(Found::Scalar(b"7")));
        assert_eq!(at(body, &["data", "object", "ids", "1", "x"]), Some(Found::Text(br#"a\"b"#)));
        assert_eq!(at(body, &["data"]), Some(Found::Other));
        assert_eq!(at(body, &["nil"]), Some(Found::Other));
        assert_eq!(at(body, &["missing"]), None);
        assert_eq!(at(body, &["data", "object", "ids", "2"]), None);
        assert_eq!(at(body, &["data", "object", "ids", "01"]), None, "no leading zeros in an index");
        assert_eq!(at(body, &["data", "object", "ids", "-"]), None);
        assert_eq!(at(body, &["id", "x"]), None, "a string has no members");
    }

    #[test]
    fn member_names_with_escapes_are_decoded_before_they_are_compared() {
        assert_eq!(at(r#"{"a\/b": 1, "\u0069d": 2}"#, &["a/b"]), Some(Found::Scalar(b"1")));
        assert_eq!(at(r#"{"a\/b": 1, "\u0069d": 2}"#, &["id"]), Some(Found::Scalar(b"2")));
        assert_eq!(at(r#"{"a\/b": 1}"#, &["a\\/b"]), None, "the name is a/b, not what it is written as");
        assert_eq!(at(r#"{"a\\/b": 1}"#, &["a\\/b"]), Some(Found::Scalar(b"1")));
    }

    #[test]
    fn the_walk_stops_at_the_key() {
        assert_eq!(at(r#"{"id": 1, "id": 2}"#, &["id"]), Some(Found::Scalar(b"1")), "the first of two");
        assert_eq!(at(r#"{"a": {"id": 1}, "a": {"x": 2}}"#, &["a", "id"]), Some(Found::Scalar(b"1")));
        assert_eq!(at(r#"{"id": 1, "rest": [not read"#, &["id"]), Some(Found::Scalar(b"1")));
        assert_eq!(at(r#"{"x": [1, 2], "id": 1} what follows is not read"#, &["id"]), Some(Found::Scalar(b"1")));
    }

    #[test]
    fn malformed_bodies_have_no_key() {
        for body in [
            "",
            "{",
            r#"{"id" 1}"#,
            r#"{"id": 01}"#,
            r#"{"id": 1.}"#,
            r#"{"id": 1e}"#,
            r#"{"id": tru}"#,
            r#"{"id": 12abc}"#,
            r#"{"id": true1}"#,
            r#"{"x": "unterminated, "id": 1"#,
            r#"{"x": {"y": [1, 2}, "id": 1"#,
            r#"{"x": 1,, "id": 1}"#,
            r#"{"x": 1 "id": 1}"#,
            r#"{id: 1}"#,
            "not json",
        ] {
            assert_eq!(at(body, &["id"]), None, "{body:?}");
        }
    }

    #[test]
    fn hostile_shapes_neither_panic_nor_recurse() {
        let deep = "[".repeat(100_000);
        assert_eq!(at(&format!(r#"{{"x": {deep}, "id": 1}}"#), &["id"]), None);
        let closed = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(at(&format!(r#"{{"x": {closed}, "id": 1}}"#), &["id"]), Some(Found::Scalar(b"1")));
        for body in ["\"", "\"\\", "{\"\\", "[", "]", "}", "-", "\u{0}"] {
            assert_eq!(at(body, &["id"]), None, "{body:?}");
            assert_eq!(at(body, &[]), None, "{body:?}");
        }
        assert_eq!(at("{\"id\":-}", &["id"]), None);
    }

    #[test]
    fn the_empty_pointer_is_the_whole_body() {
        assert_eq!(at("42", &[]), Some(Found::Scalar(b"42")));
        assert_eq!(at(r#" "x" "#, &[]), Some(Found::Text(b"x")));
    }

    #[test]
    fn escapes_decode_to_the_same_bytes_as_plain_text() {
        assert_eq!(&*unescape(br"caf\u00e9 \ud83d\ude00").unwrap(), "café 😀".as_bytes());
        assert_eq!(&*unescape(b"plain").unwrap(), b"plain");
        assert!(unescape(br"\x").is_none());
        assert!(unescape(br"\ud800").is_none(), "a lone surrogate is not text");
    }
}

//! The parameters XBoard's `PaymentController::notify` hands a payment plugin:
//! Laravel's `$request->input()` after XBoard's global middleware, rebuilt
//! from the raw query, `Content-Type` and body.
//!
//! - `input()` is `$inputSource->all() + $query->all()` (Laravel 12
//!   `InteractsWithInput::input`): body keys win over query keys. The input
//!   source is the JSON body when `Content-Type` contains `/json` or `+json`
//!   (`Request::isJson`); otherwise the form body, which PHP parses when the
//!   media type (lower-cased, up to `;`, `,` or a space) is
//!   `application/x-www-form-urlencoded`; any other body adds nothing.
//!   Laravel reads the query instead for a GET or HEAD; `Signed` carries no
//!   method, so a GET with a form body would be read with it. Gateways send
//!   none. A `multipart/form-data` body is not parsed here: `Malformed`. A
//!   repeated `Content-Type` is ambiguous: `Malformed`.
//! - Query and form: PHP's `parse_str` rules (`php_default_treat_data`,
//!   `php_register_variable_ex`): pairs split at `&` (empty ones skipped), a
//!   pair without `=` has the empty value; name and value `urldecode`d; the
//!   name ends at a NUL, loses its leading spaces, and has ` ` and `.` made
//!   `_` up to its first `[`; `a[b][]` nests (`[]`, or `[` one space
//!   character `]`, appends; text after a `]`
//!   that is not `[` is ignored); a first `[` without its `]` is made `_`
//!   along with the ` `, `.` and `[` after it, a later one ends the name; an
//!   empty name is dropped; more than 64 levels (`max_input_nesting_level`)
//!   drop the whole variable; a later duplicate wins in the first one's place.
//!   More than 1,000 variables (`max_input_vars`, past which PHP silently
//!   drops the rest) are refused: `Malformed`.
//! - JSON: `(array) json_decode($content ?: '[]', true)` (Laravel 12
//!   `Request::json`): an object or array becomes an array (numeric-string
//!   keys become integers, a duplicate key wins in the first one's place), a
//!   scalar `[0 => scalar]`, `null` or invalid JSON nothing, and a body of
//!   `0` nothing (PHP reads it as false). Floats, and integers past 64 bits
//!   (PHP makes them floats), are not signed here (see `php`). Nesting past
//!   100 levels (PHP allows 512) or more than 10,000 values are refused: `Malformed`.
//! - `TrimStrings` (XBoard's subclass: `password`, `password_confirmation`,
//!   `encrypted_data` and `signature` are not trimmed, matched against the
//!   top-level key only, as Laravel joins nested keys with `.`) then
//!   `ConvertEmptyStringsToNull`, on every string at every depth of the query
//!   and the input source. Laravel 12 trims with `Str::trim`: for valid UTF-8
//!   the characters PCRE's Unicode `\s` matches, Laravel's
//!   `INVISIBLE_CHARACTERS` and ` \n\r\t\v\0` (the set `LARAVEL_TRIMMED`
//!   below, as PHP's own PCRE reports it); for other bytes PHP's `trim`.
//!   XBoard with plugins-core requires laravel/framework ^12; Laravel before
//!   11.x of 2025-01 trimmed fewer invisible characters, and before 2024-09 no NUL.
//!
//! Not here: what a plugin signs from them (`xboard`).

use http::Method;
use http::header::CONTENT_TYPE;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};

use super::php::{Array, Key, Value, trim, urldecode};
use super::{Refused, Signed};

const MAX_VARS: usize = 1000;
const MAX_NESTING: usize = 64;
const MAX_JSON_DEPTH: usize = 100;
const MAX_JSON_VALUES: usize = 10_000;

/// `$request->input()` as XBoard's plugins see it: `getInputSource()` (the
/// JSON body, else the form body, which GET and HEAD do not have) merged over
/// the query.
pub(super) fn input(signed: &Signed<'_>) -> Result<Array, Refused> {
    let (body, _) = input_source(signed)?;
    Ok(body.union(query(signed)?))
}

/// `getInputSource()`, cleaned, and the form text it was parsed from (none
/// for JSON or no body).
fn input_source<'a>(signed: &Signed<'a>) -> Result<(Array, Option<&'a [u8]>), Refused> {
    let bodiless = matches!(*signed.method, Method::GET | Method::HEAD);
    let (mut body, form) = match content_type(signed)? {
        Source::Json => (json(signed.body)?, None),
        Source::Form | Source::Multipart if bodiless => (Array::default(), None),
        Source::Form => {
            let mut form = Array::default();
            parse_str(signed.body, &mut form)?;
            (form, Some(signed.body))
        }
        Source::Multipart => return Err(Refused::Malformed),
        Source::None => (Array::default(), None),
    };
    clean(&mut body, true);
    Ok((body, form))
}

/// `$request->query()`: the query string as `input` reads it.
fn query(signed: &Signed<'_>) -> Result<Array, Refused> {
    let mut query = Array::default();
    if let Some(raw) = signed.query {
        parse_str(raw.as_bytes(), &mut query)?;
    }
    clean(&mut query, true);
    Ok(query)
}

/// The top-level `name` of `input` (or of `query` alone, `query_only`) as a
/// plugin reads it as text: a string's bytes, an integer's digits. Nothing
/// for any other value, nor when the form text it comes from gives the name
/// twice: PHP reads the last, a reader that takes the first another.
pub(super) fn field(signed: &Signed<'_>, name: &str, query_only: bool) -> Result<Option<Vec<u8>>, Refused> {
    let key = Key::from_bytes(name.as_bytes());
    let (body, form) = if query_only { (Array::default(), None) } else { input_source(signed)? };
    let (array, raw) = match body.get(&key) {
        Some(_) => (body, form),
        None => (query(signed)?, signed.query.map(str::as_bytes)),
    };
    if raw.is_some_and(|raw| occurrences(raw, name.as_bytes()) > 1) {
        return Ok(None);
    }
    Ok(match array.get(&key) {
        Some(Value::Str(text)) => Some(text.clone()),
        Some(Value::Int(int)) => Some(int.to_string().into_bytes()),
        _ => None,
    })
}

/// How many pairs of `input` PHP registers under the top-level `name`.
fn occurrences(input: &[u8], name: &[u8]) -> usize {
    let named = |pair: &&[u8]| {
        let raw = pair.split(|&b| b == b'=').next().unwrap_or_default();
        top_level_name(raw).is_some_and(|base| base == name)
    };
    input.split(|&b| b == b'&').filter(named).count()
}

/// The top-level name a pair's raw name is registered under (`place`).
pub(super) fn top_level_name(raw: &[u8]) -> Option<Vec<u8>> {
    match place(&urldecode(raw)) {
        Place::At(base, _) | Place::TooDeep(base) => Some(base),
        Place::Nowhere => None,
    }
}

/// Whether `signed` has a body that `input` does not read (see `Source::None`).
pub(super) fn body_unread(signed: &Signed<'_>) -> bool {
    !signed.body.is_empty() && matches!(content_type(signed), Ok(Source::None))
}

enum Source {
    Json,
    Form,
    Multipart,
    None,
}

fn content_type(signed: &Signed<'_>) -> Result<Source, Refused> {
    let mut values = signed.headers.get_all(CONTENT_TYPE).into_iter();
    let Some(value) = values.next() else { return Ok(Source::None) };
    if values.next().is_some() {
        return Err(Refused::Malformed);
    }
    let value = value.as_bytes();
    let contains = |needle: &[u8]| value.windows(needle.len()).any(|w| w == needle);
    if contains(b"/json") || contains(b"+json") {
        return Ok(Source::Json);
    }
    let end = value.iter().position(|b| matches!(b, b';' | b',' | b' ')).unwrap_or(value.len());
    let media = value.get(..end).unwrap_or_default().to_ascii_lowercase();
    Ok(match media.as_slice() {
        b"application/x-www-form-urlencoded" => Source::Form,
        b"multipart/form-data" => Source::Multipart,
        _ => Source::None,
    })
}

/// PHP's `parse_str($input, $array)` (see the module header).
pub(super) fn parse_str(input: &[u8], array: &mut Array) -> Result<(), Refused> {
    for (count, pair) in input.split(|&b| b == b'&').filter(|pair| !pair.is_empty()).enumerate() {
        if count >= MAX_VARS {
            return Err(Refused::Malformed);
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        register(array, &urldecode(name), urldecode(value));
    }
    Ok(())
}

/// `php_register_variable_ex`: stores `value` under the decoded `name`.
fn register(array: &mut Array, name: &[u8], value: Vec<u8>) {
    match place(name) {
        Place::Nowhere => {}
        Place::TooDeep(base) => {
            array.remove(&base);
        }
        Place::At(base, indices) => store(array, &base, indices, value),
    }
}

/// Where a decoded name puts its value.
enum Place<'a> {
    /// An empty name: dropped.
    Nowhere,
    /// Nested past `max_input_nesting_level`: PHP deletes the whole variable.
    TooDeep(Vec<u8>),
    /// The variable's name and the indices below it (`None` for `[]`).
    At(Vec<u8>, Vec<Option<&'a [u8]>>),
}

fn place(name: &[u8]) -> Place<'_> {
    let name = name.split(|&b| b == 0).next().unwrap_or_default();
    let name = &name[name.iter().take_while(|&&b| b == b' ').count()..];
    let open = name.iter().position(|&b| b == b'[').unwrap_or(name.len());
    let mut base: Vec<u8> = name[..open].iter().map(|&b| if b == b' ' || b == b'.' { b'_' } else { b }).collect();
    if base.is_empty() {
        return Place::Nowhere;
    }
    let mut indices = Vec::new();
    let mut rest = &name[open..];
    while let Some(inner) = rest.strip_prefix(b"[") {
        if indices.len() >= MAX_NESTING {
            return Place::TooDeep(base);
        }
        // One space character before the `]` still makes `[]`, as PHP skips it there.
        let space = usize::from(inner.first().is_some_and(|b| b" \t\n\x0b\x0c\r".contains(b)));
        if inner.get(space) == Some(&b']') {
            indices.push(None);
            rest = &inner[space + 1..];
            continue;
        }
        let Some(close) = inner.iter().position(|&b| b == b']') else {
            if indices.is_empty() {
                // Not an index: the `[` and what follows stay in the name.
                base.push(b'_');
                base.extend(inner.iter().map(|&b| if matches!(b, b' ' | b'.' | b'[') { b'_' } else { b }));
            }
            break;
        };
        indices.push(Some(&inner[..close]));
        rest = &inner[close + 1..];
    }
    Place::At(base, indices)
}

/// `$array[base][index]... = value`, making the arrays on the way.
fn store(array: &mut Array, base: &[u8], indices: Vec<Option<&[u8]>>, value: Vec<u8>) {
    let mut target = array;
    let mut key = Some(Key::from_bytes(base));
    for index in indices {
        let next = match key {
            Some(key) => target.array_at(key),
            None => target.push_array(),
        };
        let Some(next) = next else { return };
        target = next;
        key = index.map(Key::from_bytes);
    }
    match key {
        Some(key) => target.set(key, Value::Str(value)),
        None => {
            target.push(Value::Str(value));
        }
    }
}

/// The JSON body as Laravel's `Request::json()` holds it.
fn json(body: &[u8]) -> Result<Array, Refused> {
    if body.is_empty() || body == b"0" {
        return Ok(Array::default());
    }
    if !json_within_limits(body) {
        return Err(Refused::Malformed);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = match deserializer.deserialize_any(JsonVisitor).and_then(|value| deserializer.end().map(|()| value)) {
        Ok(value) => value,
        Err(_) => return Ok(Array::default()), // json_decode gives null
    };
    Ok(match value {
        Value::Array(array) => array,
        Value::Null => Array::default(),
        scalar => {
            let mut array = Array::default();
            array.set(Key::Int(0), scalar);
            array
        }
    })
}

/// Depth and value count, counted outside strings before parsing, so that
/// neither the parser's recursion nor the array built can grow past them.
fn json_within_limits(body: &[u8]) -> bool {
    let (mut depth, mut values, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in body {
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, false, _) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'[' | b'{') => {
                depth += 1;
                values += 1;
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            (false, _, b',' | b':') => values += 1,
            _ => {}
        }
        if depth > MAX_JSON_DEPTH || values > MAX_JSON_VALUES {
            return false;
        }
    }
    true
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, flag: bool) -> Result<Value, E> {
        Ok(Value::Bool(flag))
    }
    fn visit_i64<E>(self, int: i64) -> Result<Value, E> {
        Ok(Value::Int(int))
    }
    fn visit_u64<E>(self, int: u64) -> Result<Value, E> {
        Ok(i64::try_from(int).map_or(Value::Float, Value::Int))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Float)
    }
    fn visit_str<E>(self, text: &str) -> Result<Value, E> {
        Ok(Value::Str(text.as_bytes().to_vec()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut array = Array::default();
        while let Some(Json(value)) = seq.next_element()? {
            array.push(value);
        }
        Ok(Value::Array(array))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut array = Array::default();
        while let Some((key, Json(value))) = map.next_entry::<String, Json>()? {
            array.set(Key::from_bytes(key.as_bytes()), value);
        }
        Ok(Value::Array(array))
    }
}

struct Json(Value);

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor).map(Json)
    }
}

/// XBoard's `TrimStrings` keeps these top-level keys as sent.
const UNTRIMMED: [&[u8]; 4] = [b"password", b"password_confirmation", b"encrypted_data", b"signature"];

/// `TrimStrings` then `ConvertEmptyStringsToNull` on every string.
fn clean(array: &mut Array, top: bool) {
    for (key, value) in array.iter_mut() {
        match value {
            Value::Str(text) => {
                let keep = top && matches!(key, Key::Str(name) if UNTRIMMED.contains(&name.as_slice()));
                if !keep {
                    let trimmed = laravel_trim(text);
                    if trimmed.len() != text.len() {
                        *text = trimmed.to_vec();
                    }
                }
                if text.is_empty() {
                    *value = Value::Null;
                }
            }
            Value::Array(inner) => clean(inner, false),
            _ => {}
        }
    }
}

/// What Laravel 12's `Str::trim` removes from both ends of valid UTF-8.
const LARAVEL_TRIMMED: &[char] = &[
    '\0',
    '\t',
    '\n',
    '\x0b',
    '\x0c',
    '\r',
    ' ',
    '\u{85}',
    '\u{a0}',
    '\u{ad}',
    '\u{34f}',
    '\u{61c}',
    '\u{115f}',
    '\u{1160}',
    '\u{1680}',
    '\u{17b4}',
    '\u{17b5}',
    '\u{180e}',
    '\u{2000}',
    '\u{2001}',
    '\u{2002}',
    '\u{2003}',
    '\u{2004}',
    '\u{2005}',
    '\u{2006}',
    '\u{2007}',
    '\u{2008}',
    '\u{2009}',
    '\u{200a}',
    '\u{200b}',
    '\u{200c}',
    '\u{200d}',
    '\u{200e}',
    '\u{200f}',
    '\u{2028}',
    '\u{2029}',
    '\u{202f}',
    '\u{205f}',
    '\u{2060}',
    '\u{2061}',
    '\u{2062}',
    '\u{2063}',
    '\u{2064}',
    '\u{2065}',
    '\u{206a}',
    '\u{206b}',
    '\u{206c}',
    '\u{206d}',
    '\u{206e}',
    '\u{206f}',
    '\u{2800}',
    '\u{3000}',
    '\u{3164}',
    '\u{feff}',
    '\u{ffa0}',
    '\u{1d159}',
    '\u{1d173}',
    '\u{1d174}',
    '\u{1d175}',
    '\u{1d176}',
    '\u{1d177}',
    '\u{1d178}',
    '\u{1d179}',
    '\u{1d17a}',
    '\u{e0020}',
];

/// Laravel 12's `Str::trim($value)`.
fn laravel_trim(bytes: &[u8]) -> &[u8] {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.trim_matches(LARAVEL_TRIMMED).as_bytes(),
        Err(_) => trim(bytes),
    }
}

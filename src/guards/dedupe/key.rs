//! What identifies a repeat on a `dedupe` route: the key sources a route's
//! `key` names, and the key each one reads from a request.
//!
//! Every source reads only what the request path already holds (the head, and
//! the body read whole). A request without its key, or with one that is
//! ambiguous (a header named twice) or longer than `MAX_KEY` bytes, has no key
//! and is forwarded without dedupe. `form:` and `query:` read the request as
//! the backend's PHP does (`verify`'s parameter reader), so the key is the
//! value the backend acts on. An empty value is no key either. HEAD requests
//! have no key: their answer has no body to remember.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use http::header::HeaderName;
use http::request::Parts;

use super::json::{self, Found};
use crate::verify::Signed;

/// The longest key remembered, in bytes; a longer one is no key.
pub const MAX_KEY: usize = 256;

/// A route's `dedupe` `key`, as validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `telegram_update_id`: the top-level integer `update_id` of a JSON body.
    TelegramUpdateId,
    /// `json:/pointer`: the value an RFC 6901 pointer names in a JSON body
    /// (its reference tokens, unescaped).
    Json(Vec<String>),
    /// `form:NAME`: a field of a urlencoded body, or else of the query string.
    Form(String),
    /// `query:NAME`: a field of the query string.
    Query(String),
    /// `header:NAME`: a request header given once.
    Header(HeaderName),
}

/// One request's key: bytes, at most `MAX_KEY` of them, with their hash.
/// Cheap to clone (the table holds it twice: in its map and in its answer
/// order), and hashed once: the table's map uses the hash made here (`KeyHasher`).
#[derive(Clone)]
pub struct Key {
    /// SipHash with this process's random keys (`SEED`), as `HashMap` would
    /// hash it: clients choose keys, so their hashes must not be predictable.
    hash: u64,
    bytes: Bytes,
}

/// Keys up to this long (update ids, trade numbers, most event ids) are held
/// inline, without an allocation of their own.
const INLINE_KEY: usize = 30;

#[derive(Clone)]
enum Bytes {
    Inline(u8, [u8; INLINE_KEY]),
    Shared(Arc<[u8]>),
}

static SEED: LazyLock<RandomState> = LazyLock::new(RandomState::new);

impl Key {
    /// `None` when `bytes` is empty or longer than `MAX_KEY`.
    pub fn new(bytes: &[u8]) -> Option<Key> {
        if bytes.is_empty() || bytes.len() > MAX_KEY {
            return None;
        }
        let held = match bytes.len() {
            len @ ..=INLINE_KEY => {
                let mut inline = [0; INLINE_KEY];
                inline[..len].copy_from_slice(bytes);
                Bytes::Inline(len as u8, inline)
            }
            _ => Bytes::Shared(Arc::from(bytes)),
        };
        Some(Key { hash: SEED.hash_one(bytes), bytes: held })
    }

    pub fn as_bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Inline(len, inline) => &inline[..*len as usize],
            Bytes::Shared(bytes) => bytes,
        }
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.hash == other.hash && self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// The table's hasher: a `Key` brings its hash along, so hashing it again
/// (twice per request: the claim and the answer) would only cost time.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }

    /// Only `Key`s are hashed with this, and they write one `u64`; anything
    /// else still gets a hash (FNV-1a), if a poor one.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// The key as text for log lines: invalid UTF-8 replaced, control characters escaped.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(self.as_bytes()).escape_debug())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(\"{self}\")")
    }
}

impl KeySource {
    /// The key of a request with head `parts` and `body` (read whole; empty
    /// when there is none).
    pub fn of(&self, parts: &Parts, body: &[u8]) -> Option<Key> {
        if parts.method == http::Method::HEAD {
            return None;
        }
        match self {
            KeySource::TelegramUpdateId => match json::find(body, &["update_id"])? {
                Found::Scalar(text) if is_i64(text) => Key::new(text),
                _ => None,
            },
            KeySource::Json(pointer) => match json::find(body, pointer)? {
                Found::Scalar(text) => Key::new(text),
                Found::Text(raw) => Key::new(&json::unescape(raw)?),
                Found::Other => None,
            },
            // As the backend reads them (PHP's names, last duplicate, JSON
            // over the query): a key read otherwise lets one validly signed
            // notify take another trade's key (found by a hostile probe).
            KeySource::Form(name) => Key::new(&Signed::of(parts, body).input_field(name)?),
            KeySource::Query(name) => Key::new(&Signed::of(parts, body).query_field(name)?),
            KeySource::Header(name) => {
                let mut values = parts.headers.get_all(name).iter();
                match (values.next(), values.next()) {
                    (Some(value), None) => Key::new(value.as_bytes()),
                    _ => None,
                }
            }
        }
    }
}

/// Whether `text` (a JSON number as written) is an integer that fits an `i64`,
/// as Telegram's `update_id` is.
fn is_i64(text: &[u8]) -> bool {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    match digits.len() {
        0 => false,
        // Fewer than 19 digits always fit; 19 may not.
        1..=18 => digits.iter().all(u8::is_ascii_digit),
        _ => std::str::from_utf8(text).is_ok_and(|text| text.parse::<i64>().is_ok()),
    }
}

/// Why a `key` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySourceError {
    #[error(
        "unknown key {0:?}: write \"telegram_update_id\", \"json:/pointer\", \"form:NAME\", \"query:NAME\" or \"header:NAME\""
    )]
    Unknown(String),
    #[error("a json: pointer must start with / (RFC 6901), got {0:?}")]
    PointerStart(String),
    #[error("invalid ~ escape in json pointer {0:?}: write ~0 for ~ and ~1 for /")]
    PointerEscape(String),
    #[error("{0}: needs a name after the colon")]
    NoName(&'static str),
    #[error("invalid header name {0:?}")]
    HeaderName(String),
}

impl FromStr for KeySource {
    type Err = KeySourceError;

    fn from_str(text: &str) -> Result<Self, KeySourceError> {
        if text == "telegram_update_id" {
            return Ok(KeySource::TelegramUpdateId);
        }
        let Some((kind, rest)) = text.split_once(':') else { return Err(KeySourceError::Unknown(text.to_string())) };
        let named = |kind: &'static str| if rest.is_empty() { Err(KeySourceError::NoName(kind)) } else { Ok(rest) };
        match kind {
            "json" => pointer(rest).map(KeySource::Json),
            "form" => named("form").map(|name| KeySource::Form(name.to_string())),
            "query" => named("query").map(|name| KeySource::Query(name.to_string())),
            // A name with `_` is refused: such request headers are dropped before any rule reads them.
            "header" => named("header").and_then(|name| match name.contains('_') {
                true => Err(KeySourceError::HeaderName(name.to_string())),
                false => HeaderName::from_bytes(name.as_bytes())
                    .map(KeySource::Header)
                    .map_err(|_| KeySourceError::HeaderName(name.to_string())),
            }),
            _ => Err(KeySourceError::Unknown(text.to_string())),
        }
    }
}

/// An RFC 6901 pointer's reference tokens, unescaped (`~1` is `/`, `~0` is `~`).
fn pointer(text: &str) -> Result<Vec<String>, KeySourceError> {
    let Some(tokens) = text.strip_prefix('/') else { return Err(KeySourceError::PointerStart(text.to_string())) };
    tokens
        .split('/')
        .map(|token| {
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => out.push('~'),
                    Some('1') => out.push('/'),
                    _ => return Err(KeySourceError::PointerEscape(text.to_string())),
                }
            }
            Ok(out)
        })
        .collect()
}

/// As the file writes it (`check` prints it back).
impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::TelegramUpdateId => f.write_str("telegram_update_id"),
            KeySource::Json(tokens) => {
                f.write_str("json:")?;
                for token in tokens {
                    write!(f, "/{}", token.replace('~', "~0").replace('/', "~1"))?;
                }
                Ok(())
            }
            KeySource::Form(name) => write!(f, "form:{name}"),
            KeySource::Query(name) => write!(f, "query:{name}"),
            KeySource::Header(name) => write!(f, "header:{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    fn key(source: &str, parts: &Parts, body: &str) -> Option<String> {
        let source: KeySource = source.parse().unwrap();
        source.of(parts, body.as_bytes()).map(|key| String::from_utf8(key.as_bytes().to_vec()).unwrap())
    }

    const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded; charset=utf-8");

    #[test]
    fn telegram_update_ids_are_top_level_integers() {
        let post = parts("POST", "/hook", &[]);
        assert_eq!(
            key("telegram_update_id", &post, r#"{"update_id":42,"message":{"update_id":7}}"#).as_deref(),
            Some("42")
        );
        let twice = key("telegram_update_id", &post, r#"{"update_id":1,"update_id":2}"#);
        assert_eq!(twice.as_deref(), Some("1"), "the first of two");
        for body in [
            r#"{"message":{"update_id":7}}"#,
            r#"{"update_id":"42"}"#,
            r#"{"update_id":4.5}"#,
            r#"{"update_id":99999999999999999999}"#,
            "not json",
            "",
        ] {
            assert_eq!(key("telegram_update_id", &post, body), None, "{body}");
        }
    }

    #[test]
    fn update_ids_must_fit_an_i64() {
        for (text, fits) in [
            ("0", true),
            ("-7", true),
            ("123456789012345678", true),
            ("9223372036854775807", true),
            ("-9223372036854775808", true),
            ("9223372036854775808", false),
            ("-", false),
            ("", false),
            ("1.5", false),
            ("1e3", false),
        ] {
            assert_eq!(is_i64(text.as_bytes()), fits, "{text}");
        }
    }

    #[test]
    fn json_pointers_give_number_text_and_string_content() {
        let post = parts("POST", "/hook", &[]);
        let stripe =
            r#"{"id":"evt_1Nq","type":"checkout.session.completed","data":{"object":{"id":"cs_1","amount":1200}}}"#;
        assert_eq!(key("json:/id", &post, stripe).as_deref(), Some("evt_1Nq"));
        assert_eq!(key("json:/data/object/amount", &post, stripe).as_deref(), Some("1200"));
        assert_eq!(key("json:/data", &post, stripe), None, "an object is no key");
        assert_eq!(key("json:/id", &post, r#"{"id":"caf\u00e9"}"#).as_deref(), Some("café"));
        assert_eq!(key("json:/id", &post, r#"{"id":""}"#), None, "an empty string is no key");
        assert_eq!(key("json:/id", &post, r#"{"id":null}"#), None);
        assert_eq!(key("json:/a~1b/c~0d", &post, r#"{"a/b":{"c~d":true}}"#).as_deref(), Some("true"));
        let long = format!(r#"{{"id":"{}"}}"#, "x".repeat(MAX_KEY + 1));
        assert_eq!(key("json:/id", &post, &long), None, "a key over MAX_KEY bytes is no key");
        let longest = format!(r#"{{"id":"{}"}}"#, "x".repeat(MAX_KEY));
        assert_eq!(key("json:/id", &post, &longest).map(|k| k.len()), Some(MAX_KEY));
    }

    #[test]
    fn form_keys_read_a_urlencoded_body_or_else_the_query() {
        let body = "money=1.00&out_trade_no=2026%2012+x&sign=abc";
        let post = parts("POST", "/notify/EPay/u?out_trade_no=from-query", &[FORM]);
        assert_eq!(key("form:out_trade_no", &post, body).as_deref(), Some("2026 12 x"), "the body wins, decoded");
        assert_eq!(key("form:out_trade_no", &post, "money=1").as_deref(), Some("from-query"));
        let get = parts("GET", "/notify/EPay/u?pid=1&out_trade_no=20261206&sign=x", &[]);
        assert_eq!(key("form:out_trade_no", &get, "").as_deref(), Some("20261206"));
        let json = parts("POST", "/notify/EPay/u", &[("content-type", "application/json")]);
        assert_eq!(key("form:out_trade_no", &json, body), None, "only a form body is read as a form");
        let encoded_name = parts("GET", "/n?out%5Ftrade%5Fno=7", &[]);
        assert_eq!(key("form:out_trade_no", &encoded_name, "").as_deref(), Some("7"));
        let twice = parts("GET", "/n?out_trade_no=1&out_trade_no=2", &[]);
        assert_eq!(key("form:out_trade_no", &twice, ""), None, "a repeated field is no key");
        let empty = parts("GET", "/n?out_trade_no=&x=1", &[]);
        assert_eq!(key("form:out_trade_no", &empty, ""), None);
        let bad_escape = parts("GET", "/n?out_trade_no=%zz%4", &[]);
        assert_eq!(key("form:out_trade_no", &bad_escape, "").as_deref(), Some("%zz%4"));
        let head = parts("HEAD", "/n?out_trade_no=1", &[]);
        assert_eq!(key("form:out_trade_no", &head, ""), None, "HEAD is never deduplicated");
    }

    /// The key is the trade the backend reads, however the request spells
    /// it (a hostile probe made a notify signed for B take A's key with each
    /// of these: PHP and `verify` read B, the key was A).
    #[test]
    fn form_keys_read_the_request_as_php_does() {
        let post = parts("POST", "/notify/EPay/u", &[FORM]);
        assert_eq!(key("form:out_trade_no", &post, "money=1.00&out.trade.no=B").as_deref(), Some("B"), "`.` is `_`");
        assert_eq!(key("form:out_trade_no", &post, "out+trade_no=B").as_deref(), Some("B"), "so is a space");
        let dotted = "out_trade_no=A&money=1.00&out.trade.no=B";
        assert_eq!(key("form:out_trade_no", &post, dotted), None, "given twice, as PHP reads the names");
        assert_eq!(key("form:out_trade_no", &post, "out_trade_no=A&out_trade_no[x]=B"), None);
        let json = parts("POST", "/n?out_trade_no=A", &[("content-type", "application/json")]);
        assert_eq!(key("form:out_trade_no", &json, r#"{"out_trade_no":"B"}"#).as_deref(), Some("B"), "JSON wins");
        assert_eq!(key("form:out_trade_no", &json, r#"{"out_trade_no":7}"#).as_deref(), Some("7"));
        let get = parts("GET", "/n?out_trade_no=B", &[FORM]);
        assert_eq!(key("form:out_trade_no", &get, "out_trade_no=A").as_deref(), Some("B"), "a GET's form is unread");
        assert_eq!(key("form:out_trade_no", &post, "out_trade_no[]=A"), None, "an array is no key");
        assert_eq!(key("form:out_trade_no", &post, "out_trade_no=+A+").as_deref(), Some("A"), "trimmed");
        let queried = parts("GET", "/n?out.trade.no=B", &[]);
        assert_eq!(key("query:out_trade_no", &queried, "").as_deref(), Some("B"));
    }

    #[test]
    fn query_and_header_keys() {
        let get = parts("GET", "/x?id=abc&b=2", &[("x-request-id", "r-1"), ("x-twice", "1"), ("x-twice", "2")]);
        assert_eq!(key("query:id", &get, "").as_deref(), Some("abc"));
        assert_eq!(key("query:b", &parts("POST", "/x?b=2", &[FORM]), "b=3").as_deref(), Some("2"), "query only");
        assert_eq!(key("query:missing", &get, ""), None);
        assert_eq!(key("query:id", &parts("GET", "/x", &[]), ""), None);
        assert_eq!(key("header:X-Request-Id", &get, "").as_deref(), Some("r-1"));
        assert_eq!(key("header:x-twice", &get, ""), None, "a repeated header is no key");
        assert_eq!(key("header:x-missing", &get, ""), None);
    }

    #[test]
    fn sources_parse_and_print_back_as_written() {
        for text in [
            "telegram_update_id",
            "json:/id",
            "json:/data/object/id",
            "json:/a~1b/c~0d",
            "json:/",
            "form:out_trade_no",
            "query:id",
            "header:x-request-id",
        ] {
            assert_eq!(text.parse::<KeySource>().unwrap().to_string(), text);
        }
        let refused = |text: &str| text.parse::<KeySource>().unwrap_err().to_string();
        assert!(refused("message_id").starts_with("unknown key \"message_id\""));
        assert!(refused("body:x").starts_with("unknown key \"body:x\""));
        assert_eq!(refused("json:id"), "a json: pointer must start with / (RFC 6901), got \"id\"");
        assert_eq!(refused("json:"), "a json: pointer must start with / (RFC 6901), got \"\"");
        assert!(refused("json:/a~2").starts_with("invalid ~ escape"));
        assert_eq!(refused("form:"), "form: needs a name after the colon");
        assert_eq!(refused("header:"), "header: needs a name after the colon");
        assert_eq!(refused("header:bad name"), "invalid header name \"bad name\"");
    }
}

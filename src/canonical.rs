//! The one canonical form of a request's path and host.
//!
//! Routing, `respond` rules and forwarding all use what this module returns, so
//! the upstream can never see a different path from the one the rules saw.
//! The policy (PRODUCT.md, "Semantics"):
//! - `%XX` escapes of unreserved bytes (`A-Z a-z 0-9 - . _ ~`) are decoded; other
//!   escapes are kept, with upper-case hex.
//! - Runs of `/` collapse into one, so `//admin` is `/admin`.
//! - Ambiguous targets are refused: dot segments (`.`/`..`, raw or encoded, also
//!   `..;x`), encoded `/` `\` and NUL, raw `\`, malformed escapes, and bytes that
//!   are not UTF-8 once decoded.
//! - `;params` stay in the forwarded path but are cut from each segment for
//!   matching, so `/admin;x` meets the rules for `/admin` (as a Java upstream
//!   would read it); a segment they leave empty merges as `//` does, so
//!   `/;x/admin` meets them too.
//! - Raw bytes outside ASCII are refused: a request target is ASCII (RFC 3986
//!   §2, RFC 9112 §3.2), and percent-escapes are the one spelling rules match.
//!
//! No IO here; this is pure string work with table-driven tests.

use std::borrow::Cow;

/// Why a request target was refused with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("path must start with /")]
    NotOriginForm,
    #[error("malformed percent-escape")]
    MalformedEscape,
    #[error("encoded slash (%2F)")]
    EncodedSlash,
    #[error("encoded backslash (%5C)")]
    EncodedBackslash,
    #[error("encoded NUL (%00)")]
    EncodedNul,
    #[error("backslash in path")]
    Backslash,
    #[error("dot segment in path")]
    DotSegment,
    #[error("path is not UTF-8 once decoded")]
    InvalidUtf8,
    #[error("raw non-ASCII byte in path (percent-encode it)")]
    NotAscii,
}

/// A canonical path: what is forwarded, and the key routes are matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalPath<'a> {
    path: Cow<'a, str>,
    /// The path with `;params` cut from each segment; `None` when there are none.
    key: Option<String>,
}

impl CanonicalPath<'_> {
    /// The path to forward.
    pub fn as_str(&self) -> &str {
        &self.path
    }

    /// The path that routes match against.
    pub fn match_key(&self) -> &str {
        self.key.as_deref().unwrap_or(&self.path)
    }

    /// True when the canonical path is the raw path unchanged.
    pub fn is_unchanged(&self) -> bool {
        matches!(self.path, Cow::Borrowed(_))
    }
}

const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Canonicalises the path part of a request target (no query).
pub fn canonicalize(raw: &str) -> Result<CanonicalPath<'_>, TargetError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(TargetError::NotOriginForm);
    }
    if !raw.is_ascii() {
        return Err(TargetError::NotAscii);
    }
    // One pass: an escape, a backslash or a run of slashes means a rewrite.
    let mut prev = 0;
    let needs_rewrite = bytes.iter().any(|&b| {
        let rewrite = b == b'%' || b == b'\\' || (b == b'/' && prev == b'/');
        prev = b;
        rewrite
    });
    let path: Cow<'_, str> = if needs_rewrite { Cow::Owned(rewrite(bytes)?) } else { Cow::Borrowed(raw) };
    // One pass over the bytes (`/` and `;` are ASCII): each segment's name
    // (up to its first `;`) must not be `.` or `..`.
    let is_dots = |name: &[u8]| name == b"." || name == b"..";
    let mut has_params = false;
    let (mut start, mut name_end) = (0, None);
    for (i, &b) in path.as_bytes().iter().enumerate() {
        match b {
            b'/' => {
                if is_dots(&path.as_bytes()[start..name_end.unwrap_or(i)]) {
                    return Err(TargetError::DotSegment);
                }
                (start, name_end) = (i + 1, None);
            }
            b';' if name_end.is_none() => {
                has_params = true;
                name_end = Some(i);
            }
            _ => {}
        }
    }
    if is_dots(&path.as_bytes()[start..name_end.unwrap_or(path.len())]) {
        return Err(TargetError::DotSegment);
    }
    let key = has_params.then(|| match_key_without_params(&path));
    Ok(CanonicalPath { path, key })
}

/// `path` with each segment's `;params` cut, and the slashes of a segment
/// left empty merged as `//` is: `/;x/admin` is matched as `/admin`, not as
/// `//admin`, which no prefix rule for `/admin` would meet.
fn match_key_without_params(path: &str) -> String {
    let mut key = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 && !key.ends_with('/') {
            key.push('/');
        }
        key.push_str(segment.split(';').next().unwrap_or(""));
    }
    key
}

/// Decodes unreserved escapes, upper-cases the rest, merges slashes and checks UTF-8.
fn rewrite(bytes: &[u8]) -> Result<String, TargetError> {
    let mut out = Vec::with_capacity(bytes.len());
    // Every escape decoded, only to check that the result is UTF-8.
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(TargetError::MalformedEscape);
                };
                let v = hi << 4 | lo;
                match v {
                    b'/' => return Err(TargetError::EncodedSlash),
                    b'\\' => return Err(TargetError::EncodedBackslash),
                    0 => return Err(TargetError::EncodedNul),
                    _ if is_unreserved(v) => out.push(v),
                    _ => out.extend_from_slice(&[b'%', HEX[(v >> 4) as usize], HEX[(v & 15) as usize]]),
                }
                decoded.push(v);
                i += 3;
                continue;
            }
            b'\\' => return Err(TargetError::Backslash),
            b'/' if out.last() == Some(&b'/') => {}
            _ => {
                out.push(b);
                decoded.push(b);
            }
        }
        i += 1;
    }
    if std::str::from_utf8(&decoded).is_err() {
        return Err(TargetError::InvalidUtf8);
    }
    // `out` holds only ASCII: raw bytes were ASCII (a parsed URI) and escapes stay escaped.
    String::from_utf8(out).map_err(|_| TargetError::InvalidUtf8)
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// `unreserved / sub-delims` (RFC 3986 §3.2.2). Percent-escapes are refused:
/// DNS names have none, and a decoded name could differ from what rules match.
const fn is_reg_name_byte(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=')
}

/// `is_reg_name_byte` as a table: every request's Host goes through it.
static REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_reg_name_byte(b as u8);
        b += 1;
    }
    table
};

/// Normalises a `Host` value (or absolute-form authority) for matching:
/// lower case, no port, no trailing dot. `None` when it is not a valid host
/// (RFC 9110 §7.2, RFC 3986 §3.2.2): a registered name or IPv4 address, or an
/// IP literal in brackets, then an optional `:` and a port of digits only. No
/// userinfo (`@`), no path, no spaces.
pub fn normalize_host(value: &str) -> Option<Cow<'_, str>> {
    let bytes = value.as_bytes();
    let host_len = if bytes.first() == Some(&b'[') {
        let close = bytes.iter().position(|&b| b == b']')?;
        // An IPv6 address: no IPvFuture or zone ID, which no client sends in a Host.
        let literal = std::str::from_utf8(&bytes[1..close]).ok()?;
        literal.parse::<std::net::Ipv6Addr>().is_ok().then_some(close + 1)?
    } else {
        // The name runs to its first byte that cannot be in one; only a port may follow.
        let len = bytes.iter().position(|&b| !REG_NAME[usize::from(b)]).unwrap_or(bytes.len());
        (len > 0).then_some(len)?
    };
    match &bytes[host_len..] {
        [] => {}
        [b':', port @ ..] if port.iter().all(u8::is_ascii_digit) => {}
        _ => return None,
    }
    // A slice of `value` when nothing changes: no allocation per request.
    let host = &value[..host_len];
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(host.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths() {
        let cases: &[(&str, &str)] = &[
            ("/", "/"),
            ("/api/v1/guest/telegram/webhook", "/api/v1/guest/telegram/webhook"),
            ("//admin", "/admin"),
            ("/api//v1///x", "/api/v1/x"),
            ("/%61dmin", "/admin"),
            ("/%77ebhook", "/webhook"),
            ("/a%2db%5fc%7Ed%2E", "/a-b_c~d."),
            ("/a%20b", "/a%20b"),
            ("/a%2a", "/a%2A"),
            ("/a%3fb", "/a%3Fb"),
            ("/caf%c3%a9", "/caf%C3%A9"),
            ("/...", "/..."),
            ("/.well-known/x", "/.well-known/x"),
            ("/a;b=c/d", "/a;b=c/d"),
        ];
        for (raw, want) in cases {
            let got = canonicalize(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(got.as_str(), *want, "canonical form of {raw}");
        }
    }

    #[test]
    fn ambiguous_targets_are_refused() {
        use TargetError::*;
        let cases: &[(&str, TargetError)] = &[
            ("/a/../b", DotSegment),
            ("/a/./b", DotSegment),
            ("/..", DotSegment),
            ("/a/..", DotSegment),
            ("/a/%2e%2e/b", DotSegment),
            ("/a/%2E./b", DotSegment),
            ("/a/.%2e", DotSegment),
            ("/a/%2e/b", DotSegment),
            ("/a/..;x/b", DotSegment),
            ("/a/.;/b", DotSegment),
            ("/a%2fb", EncodedSlash),
            ("/a%2Fb", EncodedSlash),
            ("/a%5cb", EncodedBackslash),
            ("/a%5Cb", EncodedBackslash),
            ("/a%00b", EncodedNul),
            ("/a\\b", Backslash),
            ("/a%ff", InvalidUtf8),
            ("/a%c3", InvalidUtf8),
            ("/a%zz", MalformedEscape),
            ("/a%2", MalformedEscape),
            ("/a%", MalformedEscape),
            ("a/b", NotOriginForm),
            ("*", NotOriginForm),
            ("", NotOriginForm),
            // Found by a probe on 2026-12-07: a second spelling of `/caf%C3%A9` that rules did not meet.
            ("/caf\u{e9}/x", NotAscii),
            ("/\u{ff41}dmin", NotAscii),
        ];
        for (raw, want) in cases {
            assert_eq!(canonicalize(raw), Err(*want), "{raw}");
        }
    }

    #[test]
    fn params_are_cut_for_matching_only() {
        let c = canonicalize("/admin;jsessionid=1/x;y").unwrap();
        assert_eq!(c.as_str(), "/admin;jsessionid=1/x;y");
        assert_eq!(c.match_key(), "/admin/x");
        let plain = canonicalize("/admin").unwrap();
        assert_eq!(plain.match_key(), "/admin");
        assert!(plain.is_unchanged());
        // A segment its params leave empty merges as `//` does (found by a probe on
        // 2026-12-07: `/;x/admin` was matched as `//admin` and passed a block on `/admin`).
        let cases = [
            ("/;x/admin", "/admin"),
            ("/;/admin", "/admin"),
            ("/;x;y/;/admin/q", "/admin/q"),
            ("/admin/;x", "/admin/"),
            ("/a;x/;y/b;z/", "/a/b/"),
            ("/;x", "/"),
        ];
        for (raw, key) in cases {
            assert_eq!(canonicalize(raw).unwrap().match_key(), key, "{raw}");
        }
    }

    #[test]
    fn hosts() {
        let cases: &[(&str, Option<&str>)] = &[
            ("example.com", Some("example.com")),
            ("Example.COM:8080", Some("example.com")),
            ("api.example.com.", Some("api.example.com")),
            ("127.0.0.1:80", Some("127.0.0.1")),
            ("[::1]:80", Some("[::1]")),
            ("user@example.com", None),
            ("exa mple.com", None),
            ("", None),
            ("a/b", None),
            ("example.com:", Some("example.com")),
            ("example.com:80x", None),
            ("example.com:80:81", None),
            ("[::1", None),
            ("[]:80", None),
            ("[::1]x", None),
            (":80", None),
            ("a\"b", None),
            ("a?b", None),
            ("a%2eb", None),
            ("xn--bcher-kva.example", Some("xn--bcher-kva.example")),
            // Not IPv6 addresses (a probe of 2026-12-07 found them accepted).
            ("[evil.example]", None),
            ("[%2e%2e]", None),
            ("[a]:80", None),
            ("[v1.x]", None),
            ("[fe80::1%25eth0]", None),
            ("[2001:DB8::1]:443", Some("[2001:db8::1]")),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_host(raw).as_deref(), *want, "{raw:?}");
        }
    }
}

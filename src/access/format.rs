//! The access line, formatted by hand into a reused buffer.
//!
//! One line per request is the hottest log output there is, and
//! `tracing`'s formatting machinery (a visitor per field, a `String` per event)
//! cost about a tenth of the proxy's CPU per request. This writes the same two
//! formats `logging` sets up for everything else, byte for byte: text
//! (`<time>  INFO hookgate::access: client=… …`) and flattened JSON
//! (`{"timestamp":…,"level":"INFO",<fields>,"target":"hookgate::access"}`).
//! Whether a line is written at all is still `tracing`'s decision: the
//! `[log] level` filter (for example `hookgate::access=off`) applies as before.
//! Colour is not written; access lines are for the journal and collectors.

use std::cell::RefCell;
use std::io::Write;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use super::output;
use crate::config::LogFormat;

/// Set once at start-up by `logging::init`; text until then.
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Chooses the format access lines are written in.
pub fn set_format(format: LogFormat) {
    let _ = FORMAT.set(format);
}

/// A field's value: written bare in text, as a string or a number in JSON.
pub enum Value<'a> {
    Text(&'a str),
    Ip(IpAddr),
    Number(u64),
}

/// One access line: its level (`INFO`, or `WARN` for a response that did not
/// reach the client whole) and its fields in order.
pub struct Line<'a> {
    pub warn: bool,
    /// When the response ended (the timestamp written).
    pub at: SystemTime,
    pub fields: &'a [(&'static str, Value<'a>)],
}

thread_local! {
    /// The last second written and its `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: RefCell<(u64, Vec<u8>)> = const { RefCell::new((0, Vec::new())) };
}

/// Writes `line` (through `output`) if the log filter lets access lines of its level through.
pub fn emit(line: &Line<'_>) {
    let enabled = if line.warn {
        tracing::enabled!(target: "hookgate::access", tracing::Level::WARN)
    } else {
        tracing::enabled!(target: "hookgate::access", tracing::Level::INFO)
    };
    if !enabled {
        return;
    }
    let format = FORMAT.get().copied().unwrap_or(LogFormat::Text);
    output::append(line.at, |out| match format {
        LogFormat::Text => text(out, line),
        LogFormat::Json => json(out, line),
    });
}

fn text(out: &mut Vec<u8>, line: &Line<'_>) {
    timestamp(out, line.at);
    out.extend_from_slice(if line.warn { b"  WARN" } else { b"  INFO" });
    out.extend_from_slice(b" hookgate::access:");
    for (name, value) in line.fields {
        out.push(b' ');
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        match value {
            Value::Text(text) => out.extend_from_slice(text.as_bytes()),
            Value::Ip(ip) => ip_addr(out, *ip),
            Value::Number(n) => number(out, *n),
        }
    }
    out.push(b'\n');
}

fn json(out: &mut Vec<u8>, line: &Line<'_>) {
    out.extend_from_slice(b"{\"timestamp\":\"");
    timestamp(out, line.at);
    out.extend_from_slice(if line.warn { b"\",\"level\":\"WARN\"" } else { b"\",\"level\":\"INFO\"" });
    for (name, value) in line.fields {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        match value {
            Value::Text(text) => {
                out.push(b'"');
                let start = out.len();
                out.extend_from_slice(text.as_bytes());
                escape_tail(out, start);
                out.push(b'"');
            }
            Value::Ip(ip) => {
                out.push(b'"');
                ip_addr(out, *ip);
                out.push(b'"');
            }
            Value::Number(n) => number(out, *n),
        }
    }
    out.extend_from_slice(b",\"target\":\"hookgate::access\"}\n");
}

/// JSON-escapes `out[start..]` in place (quotes, backslashes, control bytes).
fn escape_tail(out: &mut Vec<u8>, start: usize) {
    if !out[start..].iter().any(|b| matches!(b, b'"' | b'\\') || *b < 0x20) {
        return;
    }
    let raw = out.split_off(start);
    for byte in raw {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b if b < 0x20 => {
                let _ = write!(out, "\\u{b:04x}");
            }
            b => out.push(b),
        }
    }
}

fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `n` in exactly `width` digits, zero-padded (higher digits are dropped).
fn padded(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    for digit in digits[..width].iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits[..width]);
}

/// An IPv4 address by hand (the common case); IPv6 through `Display`.
fn ip_addr(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                number(out, u64::from(octet));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// RFC 3339 in UTC with microseconds, as `tracing-subscriber` writes it:
/// `2026-11-28T09:44:27.647941Z`. The part up to the seconds is kept per
/// thread and made again only when the second changes.
fn timestamp(out: &mut Vec<u8>, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with(|second| {
        let mut second = second.borrow_mut();
        if second.0 != secs || second.1.is_empty() {
            second.0 = secs;
            second.1.clear();
            date_time(&mut second.1, secs);
        }
        out.extend_from_slice(&second.1);
    });
    out.push(b'.');
    padded(out, u64::from(since.subsec_micros()), 6);
    out.push(b'Z');
}

/// `YYYY-MM-DDTHH:MM:SS` for `secs` since the epoch.
fn date_time(out: &mut Vec<u8>, secs: u64) {
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    padded(out, year.max(0) as u64, 4);
    out.push(b'-');
    padded(out, u64::from(month), 2);
    out.push(b'-');
    padded(out, u64::from(day), 2);
    out.push(b'T');
    padded(out, of_day / 3600, 2);
    out.push(b':');
    padded(out, of_day / 60 % 60, 2);
    out.push(b':');
    padded(out, of_day % 60, 2);
}

/// The proleptic Gregorian date of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_match_rfc_3339_with_microseconds() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400, 5, "2000-02-29T00:00:00.000005Z"),
            // The same second again: the kept date and time.
            (951_782_400, 6, "2000-02-29T00:00:00.000006Z"),
            (1_795_858_467, 647_941, "2026-11-28T09:34:27.647941Z"),
            (4_107_542_399, 999_999, "2100-02-28T23:59:59.999999Z"),
        ];
        for (secs, micros, want) in cases {
            let mut out = Vec::new();
            timestamp(&mut out, UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros));
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn both_formats_write_every_field() {
        let fields = [
            ("host", Value::Text("a\"b")),
            ("client", Value::Ip("192.0.2.10".parse().unwrap())),
            ("peer", Value::Ip("2001:db8::1".parse().unwrap())),
            ("status", Value::Number(200)),
            ("bytes", Value::Number(0)),
        ];
        let line = Line { warn: true, at: SystemTime::now(), fields: &fields };
        let mut out = Vec::new();
        text(&mut out, &line);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with(
                "Z  WARN hookgate::access: host=a\"b client=192.0.2.10 peer=2001:db8::1 status=200 bytes=0\n"
            ),
            "{text}"
        );

        let mut out = Vec::new();
        json(&mut out, &line);
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["level"], "WARN");
        assert_eq!(value["host"], "a\"b");
        assert_eq!(value["client"], "192.0.2.10");
        assert_eq!(value["peer"], "2001:db8::1");
        assert_eq!(value["status"], 200);
        assert_eq!(value["target"], "hookgate::access");
        let json = String::from_utf8(out).unwrap();
        assert!(
            json.starts_with("{\"timestamp\":\"") && json.ends_with("\"target\":\"hookgate::access\"}\n"),
            "{json}"
        );
    }
}

//! A kept request as an operator is shown it (`hookgate spool show`, `GET
//! /spool/ID`, and the targets `list` prints): the values of credential
//! headers replaced by `[redacted]`, XBoard's `access_token` hidden in the
//! target, the body in full as text (escaped when it is not UTF-8), and the
//! answer that made it a dead letter. Not for delivering it: the deliverer
//! sends the head and body as they were kept (`read::stored`).

use serde::{Deserialize, Serialize};

use super::{Stored, Summary};

/// What a redacted value reads as.
pub const REDACTED: &str = "[redacted]";

/// Headers whose values are credentials on any route (lower case). A
/// route's own `secret_header` is added by the caller, who has the config.
const SECRET_HEADERS: [&str; 4] = ["authorization", "cookie", "proxy-authorization", "x-telegram-bot-api-secret-token"];

/// Query parameters whose values are credentials: XBoard authenticates the
/// Telegram webhook with `access_token` (the MD5 of the bot token).
const SECRET_PARAMS: [&str; 1] = ["access_token"];

/// One kept request, whole and redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shown {
    #[serde(flatten)]
    pub summary: Summary,
    /// The request line and header lines as they go upstream, one per line.
    pub head: String,
    pub body: Text,
    /// The start of the answer that made it a dead letter (empty otherwise).
    pub last_answer: Text,
}

/// Bytes as text: as they are when UTF-8, else escaped (`\xNN`, `\n`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    pub text: String,
    pub utf8: bool,
}

impl Text {
    pub fn of(bytes: &[u8]) -> Text {
        match std::str::from_utf8(bytes) {
            Ok(text) => Text { text: text.to_string(), utf8: true },
            Err(_) => Text { text: bytes.escape_ascii().to_string(), utf8: false },
        }
    }
}

impl Shown {
    /// `stored` as an operator sees it; `secret_header` is its route's own, if any.
    pub fn of(stored: &Stored, secret_header: Option<&str>) -> Shown {
        Shown {
            summary: redacted(stored.summary.clone()),
            head: head(&stored.head, secret_header),
            body: Text::of(&stored.body),
            last_answer: Text::of(&stored.last_answer),
        }
    }
}

/// A summary whose target hides credentials in its query.
pub fn redacted(summary: Summary) -> Summary {
    Summary { target: target(&summary.target), ..summary }
}

/// The head's lines, each credential header's value redacted.
fn head(head: &[u8], secret_header: Option<&str>) -> String {
    let is_secret = |name: &str| {
        let name = name.trim();
        SECRET_HEADERS.iter().any(|s| s.eq_ignore_ascii_case(name))
            || secret_header.is_some_and(|s| s.eq_ignore_ascii_case(name))
    };
    let mut lines = head.split(|&b| b == b'\n').map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let request_line = Text::of(lines.next().unwrap_or_default()).text;
    let request_line = match request_line.split_once(' ') {
        Some((method, rest)) => match rest.rsplit_once(' ') {
            Some((target_text, version)) => format!("{method} {} {version}", target(target_text)),
            None => format!("{method} {}", target(rest)),
        },
        None => request_line,
    };
    let mut out = vec![request_line];
    for line in lines.filter(|line| !line.is_empty()) {
        let text = Text::of(line).text;
        match text.split_once(':') {
            Some((name, _)) if is_secret(name) => out.push(format!("{name}: {REDACTED}")),
            _ => out.push(text),
        }
    }
    out.join("\n")
}

/// `target` with the value of each credential query parameter redacted.
fn target(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else { return target.to_string() };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, _)) if is_secret_param(name) => format!("{name}={REDACTED}"),
            _ => param.to_string(),
        })
        .collect();
    format!("{path}?{}", params.join("&"))
}

/// Whether PHP reads the parameter named `raw` as a secret one, however it
/// is spelt (`%61ccess_token`, `access.token` and `access_token[]` are all
/// `access_token` to it).
fn is_secret_param(raw: &str) -> bool {
    crate::verify::php_name(raw.as_bytes()).is_some_and(|name| SECRET_PARAMS.iter().any(|s| s.as_bytes() == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(head: &[u8], body: &[u8]) -> Stored {
        let summary = Summary {
            id: 7,
            route: "telegram".into(),
            upstream: "backend".into(),
            queue: String::new(),
            method: "POST".into(),
            target: "/hook?access_token=abc&x=1".into(),
            received_ms: 0,
            expires_ms: 0,
            size: 0,
            dead: true,
            attempts: 1,
            last_status: Some(404),
            last_error: "backend answered 404".into(),
        };
        Stored { summary, head: head.to_vec(), body: body.to_vec(), last_answer: b"no such order".to_vec() }
    }

    #[test]
    fn credentials_are_redacted_and_the_rest_is_kept() {
        let head = b"POST /hook?access_token=abc&x=1 HTTP/1.1\r\nhost: api.example\r\nAuthorization: Bearer s3cret\r\n\
                     cookie: sid=1\r\nProxy-Authorization: Basic eA==\r\nX-Telegram-Bot-Api-Secret-Token: tg\r\n\
                     X-Hook-Key: k3y\r\nx-forwarded-for: 192.0.2.1\r\n\r\n";
        let shown = Shown::of(&stored(head, b"{\"update_id\":1}"), Some("x-hook-key"));
        let want = "POST /hook?access_token=[redacted]&x=1 HTTP/1.1\nhost: api.example\nAuthorization: [redacted]\n\
                    cookie: [redacted]\nProxy-Authorization: [redacted]\nX-Telegram-Bot-Api-Secret-Token: [redacted]\n\
                    X-Hook-Key: [redacted]\nx-forwarded-for: 192.0.2.1";
        assert_eq!(shown.head, want);
        assert_eq!(shown.summary.target, "/hook?access_token=[redacted]&x=1");
        assert_eq!(shown.body, Text { text: "{\"update_id\":1}".into(), utf8: true });
        assert_eq!(shown.last_answer.text, "no such order");
        // However the name is spelt, PHP reads it as `access_token` (found by a hostile probe).
        for spelt in ["%61ccess_token", "access%5Ftoken", "access.token", "+access+token", "access_token[]"] {
            let target = format!("/hook?a=1&{spelt}=QSECRET");
            let shown = redacted(Summary { target: target.clone(), ..stored(head, b"").summary });
            assert_eq!(shown.target, format!("/hook?a=1&{spelt}=[redacted]"));
        }
        let without_route_secret = Shown::of(&stored(head, b""), None);
        assert!(without_route_secret.head.contains("X-Hook-Key: k3y"), "{}", without_route_secret.head);
    }

    #[test]
    fn a_body_that_is_not_utf8_is_escaped_in_full() {
        let shown = Shown::of(&stored(b"POST / HTTP/1.1\r\n\r\n", b"a\xff\x00\nb"), None);
        assert_eq!(shown.body, Text { text: "a\\xff\\x00\\nb".into(), utf8: false });
        assert_eq!(shown.head, "POST / HTTP/1.1");
    }
}

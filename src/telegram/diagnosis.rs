//! From `getWebhookInfo` to a plain-words diagnosis with the fix.
//!
//! Telegram reports the last delivery error as text, e.g. `Wrong response from
//! the webhook: 404 Not Found` or `Read timeout expired`. The known cases map
//! to causes an XBoard operator can act on.

use std::time::Duration;

use serde::Deserialize;

/// The fields of Telegram's `WebhookInfo` that matter here.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct WebhookInfo {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub pending_update_count: u64,
    pub last_error_date: Option<u64>,
    pub last_error_message: Option<String>,
    pub max_connections: Option<u32>,
    pub allowed_updates: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnosis {
    Healthy,
    NotSet,
    /// The webhook points somewhere else (someone re-set it).
    UrlElsewhere(String),
    /// A 404/405: the request did not reach the webhook handler.
    RouteMismatch(String),
    /// A 401/403: the secret Telegram sends does not match.
    SecretMismatch(String),
    /// Telegram could not verify the certificate.
    Tls(String),
    /// The backend took longer than Telegram's 60 s.
    BackendTimeout,
    /// Any other delivery error.
    Failing(String),
}

impl Diagnosis {
    /// Diagnoses `info` against the URL this config expects. An error counts
    /// only if it is younger than `window` (Telegram keeps the last one forever).
    pub fn of(info: &WebhookInfo, expected_url: &str, now_unix: u64, window: Duration) -> Diagnosis {
        if info.url.is_empty() {
            return Diagnosis::NotSet;
        }
        if info.url != expected_url {
            return Diagnosis::UrlElsewhere(redact(&info.url));
        }
        let current = info.last_error_date.is_some_and(|date| now_unix.saturating_sub(date) <= window.as_secs());
        let Some(message) = info.last_error_message.clone().filter(|_| current) else {
            return Diagnosis::Healthy;
        };
        let lower = message.to_ascii_lowercase();
        if lower.contains("404") || lower.contains("405") {
            Diagnosis::RouteMismatch(message)
        } else if lower.contains("401") || lower.contains("403") {
            Diagnosis::SecretMismatch(message)
        } else if lower.contains("ssl") || lower.contains("certificate") {
            Diagnosis::Tls(message)
        } else if lower.contains("read timeout expired") {
            Diagnosis::BackendTimeout
        } else {
            Diagnosis::Failing(message)
        }
    }

    pub fn is_healthy(&self) -> bool {
        *self == Diagnosis::Healthy
    }

    /// The state in a few words, for repair log lines.
    pub fn label(&self) -> String {
        match self {
            Diagnosis::Healthy => "healthy".to_string(),
            Diagnosis::NotSet => "no webhook set".to_string(),
            Diagnosis::UrlElsewhere(url) => format!("webhook set to {url}"),
            Diagnosis::RouteMismatch(_) => "404/405 from the webhook".to_string(),
            Diagnosis::SecretMismatch(_) => "401/403 from the webhook (secret not sent)".to_string(),
            Diagnosis::Tls(_) => "certificate error".to_string(),
            Diagnosis::BackendTimeout => "backend timeout".to_string(),
            Diagnosis::Failing(_) => "delivery failing".to_string(),
        }
    }

    /// What broke and how to fix it, in one line.
    pub fn explain(&self) -> String {
        match self {
            Diagnosis::Healthy => "healthy: Telegram reports no recent delivery error".to_string(),
            Diagnosis::NotSet => "no webhook is set; run `hookgate telegram set-webhook`".to_string(),
            Diagnosis::UrlElsewhere(url) => format!(
                "the webhook points at {url}, not at this config's URL: someone re-set it (XBoard's button?); \
                 run `hookgate telegram set-webhook`"
            ),
            Diagnosis::RouteMismatch(m) => format!(
                "Telegram got \"{m}\": its POST does not reach the webhook handler (the route does not match, so it \
                 went to the frontend?); check with `hookgate route POST <webhook URL>`"
            ),
            Diagnosis::SecretMismatch(m) => format!(
                "Telegram got \"{m}\": the secret it sends does not match the route's secret header, most likely \
                 because XBoard's Set Webhook button cleared it; run `hookgate telegram set-webhook`. If the route \
                 logged no such refusal, something in front answered it (Cloudflare's challenge: README \
                 \"Behind Cloudflare\")"
            ),
            Diagnosis::Tls(m) => {
                format!("Telegram cannot verify the certificate (\"{m}\"): serve the full chain (leaf + intermediates)")
            }
            Diagnosis::BackendTimeout => {
                "Telegram timed out (\"Read timeout expired\"): the backend took longer than 60 s to answer".to_string()
            }
            Diagnosis::Failing(m) => format!("Telegram cannot deliver: \"{m}\""),
        }
    }
}

/// Hides XBoard's `access_token` (the hash that authenticates the webhook).
pub fn redact(url: &str) -> String {
    match url.split_once("access_token=") {
        Some((before, after)) => {
            let rest = after.find('&').map_or("", |i| &after[i..]);
            format!("{before}access_token=…{rest}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://w.example.com/api/v1/guest/telegram/webhook?access_token=abc";

    fn info(message: Option<&str>, age: u64) -> WebhookInfo {
        WebhookInfo {
            url: URL.to_string(),
            pending_update_count: 3,
            last_error_date: message.map(|_| 10_000 - age),
            last_error_message: message.map(str::to_string),
            ..WebhookInfo::default()
        }
    }

    #[test]
    fn known_errors_get_their_diagnosis() {
        let window = Duration::from_secs(600);
        let cases = [
            (Some("Wrong response from the webhook: 404 Not Found"), "RouteMismatch"),
            (Some("Wrong response from the webhook: 405 Method Not Allowed"), "RouteMismatch"),
            (Some("Wrong response from the webhook: 401 Unauthorized"), "SecretMismatch"),
            (Some("Wrong response from the webhook: 403 Forbidden"), "SecretMismatch"),
            (Some("SSL error {error:0A000086:SSL routines::certificate verify failed}"), "Tls"),
            (Some("Read timeout expired"), "BackendTimeout"),
            (Some("Connection refused"), "Failing"),
            (None, "Healthy"),
        ];
        for (message, want) in cases {
            let got = Diagnosis::of(&info(message, 60), URL, 10_000, window);
            assert!(format!("{got:?}").starts_with(want), "{message:?} → {got:?}");
        }
        // An old error no longer counts.
        let old = Diagnosis::of(&info(Some("Read timeout expired"), 3600), URL, 10_000, window);
        assert_eq!(old, Diagnosis::Healthy);
    }

    #[test]
    fn url_changes_and_missing_webhooks_come_first() {
        let mut other = info(Some("Read timeout expired"), 1);
        other.url = "https://evil.example/hook?access_token=secret123".to_string();
        let d = Diagnosis::of(&other, URL, 10_000, Duration::from_secs(600));
        assert_eq!(d, Diagnosis::UrlElsewhere("https://evil.example/hook?access_token=…".to_string()));
        assert!(!d.explain().contains("secret123"));
        other.url.clear();
        assert_eq!(Diagnosis::of(&other, URL, 10_000, Duration::from_secs(600)), Diagnosis::NotSet);
    }
}

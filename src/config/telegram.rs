//! The `[telegram]` table: its validated form (`TelegramConfig`, `BotToken`)
//! and its validation. What the table is used for (webhook URLs, the checks
//! before `setWebhook`, the Bot API) lives in the top-level `telegram` module.
//!
//! The bot token is read from its file here; no error message ever includes
//! it, only the file's path.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Uri};

use super::Step;
use super::raw::RawTelegram;
use super::upstreams::without_userinfo;
use super::validate::{Checker, child};
use crate::routes::{Action, PathMatch, RouteTable};
use crate::secret::Secret;

/// A bot token. It never appears in `Debug` output, logs or errors.
#[derive(Debug, Clone)]
pub struct BotToken(Secret);

impl BotToken {
    pub fn new(token: &str) -> Self {
        BotToken(Secret::new(token.as_bytes()))
    }

    /// For building Bot API request paths only.
    pub fn expose(&self) -> &str {
        // Made from a `&str`, so always UTF-8.
        std::str::from_utf8(self.0.expose()).unwrap_or_default()
    }
}

/// What the webhook route gives the `[telegram]` table.
struct WebhookRoute {
    index: usize,
    /// `None` after a problem was reported.
    path: Option<String>,
    /// What `setWebhook` registers as `secret_token`, with the header the route checks.
    secret: Option<(HeaderName, Secret)>,
}

/// The validated `[telegram]` table.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub token: BotToken,
    /// Origin Telegram should call, e.g. `https://www.example.com`.
    pub public_url: Uri,
    /// The webhook route's name, index and exact path.
    pub route: Arc<str>,
    pub route_index: usize,
    pub webhook_path: String,
    /// The secret to register (`secret_token`), with the header the route checks.
    pub secret: Option<(HeaderName, Secret)>,
    pub xboard_access_token: bool,
    pub api_url: Uri,
    pub allowed_updates: Option<Vec<String>>,
    pub max_connections: Option<u32>,
    /// Zero disables the monitor.
    pub monitor_interval: Duration,
    /// The monitor re-registers the webhook when it was changed or lost its secret.
    pub repair: bool,
    /// The shortest time between two repairs (with `[cluster]`, across the
    /// hosts); it doubles while repairs keep failing.
    pub repair_gap: Duration,
}

const DEFAULT_API_URL: &str = "https://api.telegram.org";
const DEFAULT_MONITOR_INTERVAL: Duration = Duration::from_secs(300);
const DEFAULT_REPAIR_GAP: Duration = Duration::from_secs(300);

impl Checker<'_> {
    pub(super) fn telegram(&mut self, raw: RawTelegram, routes: &RouteTable) -> Option<TelegramConfig> {
        let at = [Step::Key("telegram".into())];
        let before = self.problems.len();
        let token = self.bot_token(&child(&at, "bot_token_file"), &raw.bot_token_file);
        let public_url = self.public_url(&child(&at, "public_url"), &raw.public_url);
        let api_url = self.api_url(&child(&at, "api_url"), raw.api_url.as_deref().unwrap_or(DEFAULT_API_URL));
        let WebhookRoute { index: route_index, path: webhook_path, secret } = self.webhook_route(&at, &raw, routes)?;
        if raw.max_connections.is_some_and(|n| !(1..=100).contains(&n)) {
            self.problem(&child(&at, "max_connections"), "Telegram accepts 1 to 100");
        }
        let repair_gap = raw.repair_gap.map_or(DEFAULT_REPAIR_GAP, |d| d.0.0);
        if repair_gap.is_zero() {
            self.problem(&child(&at, "repair_gap"), "must be above 0");
        }
        if self.problems.len() > before {
            return None;
        }
        let has_secret = secret.is_some();
        Some(TelegramConfig {
            token: token?,
            public_url: public_url?,
            route: raw.route.into(),
            route_index,
            webhook_path: webhook_path?,
            secret,
            xboard_access_token: raw.xboard_access_token.unwrap_or(true),
            api_url: api_url?,
            allowed_updates: raw.allowed_updates,
            max_connections: raw.max_connections,
            monitor_interval: raw.monitor_interval.map_or(DEFAULT_MONITOR_INTERVAL, |d| d.0.0),
            repair: raw.repair.unwrap_or(has_secret),
            repair_gap,
        })
    }

    /// `public_url`: an origin, `http(s)://host[:port]` with nothing after it.
    fn public_url(&mut self, at: &[Step], text: &str) -> Option<Uri> {
        match text.parse::<Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.host().is_some()
                    && uri.path() == "/"
                    && uri.query().is_none() =>
            {
                Some(uri)
            }
            _ => {
                self.problem(at, format!("{text:?} must be an origin like \"https://www.example.com\""));
                None
            }
        }
    }

    /// The webhook route: its index, its exact path (`None` after a problem)
    /// and the secret `setWebhook` should register. `None` if there is no such route.
    fn webhook_route(&mut self, at: &[Step], raw: &RawTelegram, routes: &RouteTable) -> Option<WebhookRoute> {
        let Some((i, route)) = routes.routes().iter().enumerate().find(|(_, r)| *r.name == *raw.route) else {
            // A route that is there but failed was reported where it is written.
            if !self.defined.broken_routes.contains(&raw.route) {
                let defined = self.defined.routes.join(", ");
                self.problem(&child(at, "route"), format!("no route named {:?} (defined: {defined})", raw.route));
            }
            return None;
        };
        let path = match (&route.matcher.path, &route.action) {
            (Some(PathMatch::Exact(path)), Action::Upstream(_)) => Some(path.clone()),
            _ => {
                let why =
                    format!("route {:?} needs an exact `path` and an `upstream` to build the webhook URL", raw.route);
                self.problem(&child(at, "route"), why);
                None
            }
        };
        let secret = route.guards.secret_header.as_ref().map(|s| (s.name.clone(), s.value.clone()));
        let secret = match (raw.secret_header_from_route, secret) {
            (Some(false), _) => None,
            (Some(true), None) => {
                let why = format!("route {:?} has no secret_header to take the secret from", raw.route);
                self.problem(&child(at, "secret_header_from_route"), why);
                None
            }
            (_, secret) => secret,
        };
        if let Some(why) = secret.as_ref().and_then(|(_, value)| unusable_secret_token(value.expose())) {
            let value_file = [
                Step::Key("routes".into()),
                Step::Index(i),
                Step::Key("secret_header".into()),
                Step::Key("value_file".into()),
            ];
            let why = format!(
                "the secret is registered with Telegram as secret_token, which must be 1 to 256 characters of \
                 A-Z a-z 0-9 _ -, and {why}; use such a secret, or set telegram.secret_header_from_route = false"
            );
            self.problem(&value_file, why);
        }
        Some(WebhookRoute { index: i, path, secret })
    }

    /// Reads the token; its value never enters a message.
    fn bot_token(&mut self, at: &[Step], file: &str) -> Option<BotToken> {
        let path = self.base_dir().join(file);
        let text = match super::credentials::read_secret(&path) {
            Ok(text) => String::from_utf8_lossy(&text).into_owned(),
            Err(why) => {
                self.problem(at, why);
                return None;
            }
        };
        let token = text.trim();
        let plausible = token.split_once(':').is_some_and(|(id, key)| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_digit())
                && !key.is_empty()
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
        if !plausible {
            self.problem(at, format!("{} does not hold a bot token (\"123456:ABC-...\")", path.display()));
            return None;
        }
        Some(BotToken::new(token))
    }

    /// `https://…`, or plain http only to a loopback address (tests, a local Bot API server).
    /// No `user:password@`, as for upstream URLs; and since a password would
    /// otherwise reach `check`, logs, `/readyz` and `telegram info` through the
    /// URL, no message here shows it (the userinfo is checked before parsing,
    /// and parse errors would echo it).
    fn api_url(&mut self, at: &[Step], text: &str) -> Option<Uri> {
        if let Some(shown) = without_userinfo(text) {
            self.problem(at, format!("{shown:?} must be scheme://host[:port] with no user or password"));
            return None;
        }
        let uri: Uri = match text.parse() {
            Ok(uri) => uri,
            Err(e) => {
                self.problem(at, format!("invalid URL {text:?}: {e}"));
                return None;
            }
        };
        let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        match uri.scheme_str() {
            Some("https") => Some(uri),
            Some("http") if loopback => Some(uri),
            _ => {
                self.problem(at, format!("{text:?} must be https:// (plain http only to a loopback address)"));
                None
            }
        }
    }
}

/// Why Telegram would refuse `secret` as `setWebhook`'s `secret_token`
/// (1 to 256 characters, each `A-Z`, `a-z`, `0-9`, `_` or `-`), in words that
/// never include the secret itself; `None` if it would take it.
fn unusable_secret_token(secret: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(secret);
    let length = text.chars().count();
    if length == 0 {
        return Some("it is empty".to_string());
    }
    if length > 256 {
        return Some(format!("it is {length} characters long"));
    }
    let allowed = |c: &char| c.is_ascii_alphanumeric() || *c == '_' || *c == '-';
    let bad = text.chars().filter(|c| !allowed(c)).count();
    (bad > 0).then(|| format!("it holds {bad} other character{}", if bad == 1 { "" } else { "s" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_found_and_hidden() {
        let cases = [
            ("https://user:hunter2@api.telegram.org", Some("https://…@api.telegram.org")),
            ("http://u:p@127.0.0.1:8081/", Some("http://…@127.0.0.1:8081/")),
            ("user:hunter2@api.telegram.org", Some("…@api.telegram.org")),
            ("https://a:b@c@api.telegram.org/x", Some("https://…@api.telegram.org/x")),
            ("https://api.telegram.org", None),
            ("https://api.telegram.org/path@x", None),
            ("https://api.telegram.org?x=a@b", None),
        ];
        for (text, want) in cases {
            assert_eq!(without_userinfo(text).as_deref(), want, "{text}");
        }
    }

    #[test]
    fn secret_tokens_telegram_refuses_are_named_without_the_secret() {
        assert_eq!(unusable_secret_token(b"hookgate_Secret-42"), None);
        assert_eq!(unusable_secret_token(&[b'a'; 256]), None);
        assert_eq!(unusable_secret_token(b"").as_deref(), Some("it is empty"));
        assert_eq!(unusable_secret_token(&[b'a'; 257]).as_deref(), Some("it is 257 characters long"));
        assert_eq!(unusable_secret_token(b"pass.word").as_deref(), Some("it holds 1 other character"));
        assert_eq!(unusable_secret_token(b"p=ss w+rd").as_deref(), Some("it holds 3 other characters"));
        assert_eq!(unusable_secret_token("sécret".as_bytes()).as_deref(), Some("it holds 1 other character"));
    }
}

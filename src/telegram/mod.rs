//! Telegram webhook control: what URL and secret the webhook should have, and
//! whether this config really sends that URL to the backend.
//!
//! XBoard's admin button sets the webhook to
//! `<site URL>/api/v1/guest/telegram/webhook?access_token=<md5(token)>` with
//! `url` only, which clears any secret token. `hookgate telegram set-webhook`
//! sets it from this config instead, with the secret the route's guard checks,
//! and refuses a URL that Telegram could not deliver to or that this config
//! would not route to the backend. The daemon's monitor (`monitor`) keeps
//! watching `getWebhookInfo` and says in plain words what broke.

pub mod api;
pub mod cli;
mod diagnosis;
pub mod monitor;
mod repair;
mod shared_repair;
mod shared_view;
pub mod webhook_status;

use http::{HeaderMap, HeaderValue, Method};
use md5::{Digest, Md5};

pub use diagnosis::{Diagnosis, WebhookInfo};

use api::{ApiError, WebhookParams};

use crate::config::{BotToken, Config, TelegramConfig};
use crate::routes::{Action, RequestFacts};

/// Ports Telegram delivers webhooks to.
pub const WEBHOOK_PORTS: [u16; 4] = [443, 80, 88, 8443];

/// XBoard's view of the token.
impl BotToken {
    /// XBoard's `access_token`: the hex MD5 of the token.
    pub fn xboard_access_token(&self) -> String {
        Md5::digest(self.expose().as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl TelegramConfig {
    /// The query string Telegram's requests will carry.
    fn query(&self) -> Option<String> {
        self.xboard_access_token.then(|| format!("access_token={}", self.token.xboard_access_token()))
    }

    /// The URL to register with Telegram.
    pub fn webhook_url(&self) -> String {
        let origin = self.public_url.to_string();
        let origin = origin.trim_end_matches('/');
        match self.query() {
            Some(query) => format!("{origin}{}?{query}", self.webhook_path),
            None => format!("{origin}{}", self.webhook_path),
        }
    }

    /// Everything `setWebhook` is told: the URL, the route's secret,
    /// `allowed_updates` and `max_connections`.
    pub fn webhook_params(&self) -> WebhookParams {
        WebhookParams {
            url: self.webhook_url(),
            secret_token: self.secret.as_ref().map(|(_, s)| String::from_utf8_lossy(s.expose()).into_owned()),
            allowed_updates: self.allowed_updates.clone(),
            max_connections: self.max_connections,
        }
    }

    /// The checks before any `setWebhook`: Telegram can deliver to the URL,
    /// and `config` routes it to the webhook route. Returns the upstream's name.
    pub fn check_registrable(&self, config: &Config) -> Result<String, Unregistrable> {
        self.check_deliverable()?;
        self.check_routed(config)
    }

    /// Telegram only calls https URLs on ports 443, 80, 88 and 8443.
    pub fn check_deliverable(&self) -> Result<(), Unregistrable> {
        if self.public_url.scheme_str() != Some("https") {
            return Err(Unregistrable::NotHttps(self.public_url.to_string()));
        }
        let port = self.public_url.port_u16().unwrap_or(443);
        if !WEBHOOK_PORTS.contains(&port) {
            return Err(Unregistrable::Port(port));
        }
        Ok(())
    }

    /// Checks that `config` sends Telegram's POST to this route's upstream,
    /// and that the route's guards let Telegram through.
    pub fn check_routed(&self, config: &Config) -> Result<String, Unregistrable> {
        let host = self.public_url.host().unwrap_or_default().to_ascii_lowercase();
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some((name, secret)) = &self.secret
            && let Ok(value) = HeaderValue::from_bytes(secret.expose())
        {
            headers.insert(name.clone(), value);
        }
        let query = self.query();
        let facts = RequestFacts {
            method: &Method::POST,
            host: &host,
            path: &self.webhook_path,
            query: query.as_deref(),
            headers: &headers,
        };
        let selected = config.routes.select(&facts);
        let Some(route) = selected.route.filter(|_| selected.index == Some(self.route_index)) else {
            let got = selected.route.map_or("[default]".to_string(), |r| format!("route {:?}", r.name));
            let target = format!("{host}{}", self.webhook_path);
            return Err(Unregistrable::Misrouted { target, got, route: self.route.to_string() });
        };
        let Action::Upstream(upstream) = route.action else {
            return Err(Unregistrable::AnswersLocally(self.route.to_string()));
        };
        let telegram_source = "149.154.167.197".parse().unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
        if !route.guards.allows(telegram_source) {
            return Err(Unregistrable::BlocksTelegram(self.route.to_string()));
        }
        Ok(config.upstreams[upstream].name.to_string())
    }
}

/// Why this config's webhook URL cannot be registered with Telegram.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unregistrable {
    #[error("public_url {0} must be https: Telegram only delivers webhooks over TLS")]
    NotHttps(String),
    #[error("public_url port {0} is not one Telegram delivers to (ports 443, 80, 88 or 8443)")]
    Port(u16),
    #[error("POST {target} would go to {got}, not to route {route:?}; check it with `hookgate route`")]
    Misrouted { target: String, got: String, route: String },
    #[error("route {0:?} answers locally instead of forwarding to an upstream")]
    AnswersLocally(String),
    #[error("route {0:?} has an allow_from that blocks Telegram's addresses")]
    BlocksTelegram(String),
}

/// Why a `hookgate telegram` command failed.
#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    #[error("this config has no [telegram] table")]
    NotConfigured,
    #[error(transparent)]
    Unregistrable(#[from] Unregistrable),
    #[error(transparent)]
    Api(#[from] ApiError),
}

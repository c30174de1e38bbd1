//! What a route's guards are, as validated: who may call it, with which
//! secret, how big, how often, and whether redelivered updates are answered
//! here. Plain data; `guards` runs it and keeps the counters.

use std::time::Duration;

use http::HeaderName;
use ipnet::IpNet;

use super::raw::{RateKey, duration_text, size_text};
use crate::secret::Secret;

/// Telegram's documented webhook source ranges (core.telegram.org/bots/webhooks).
pub const TELEGRAM: [&str; 2] = ["149.154.160.0/20", "91.108.4.0/22"];

#[derive(Debug, Clone)]
pub struct SecretHeader {
    pub name: HeaderName,
    pub value: Secret,
    /// Remove the header before forwarding (default), so the backend never sees it.
    pub strip: bool,
}

/// The validated guards of one route.
#[derive(Debug, Clone, Default)]
pub struct Guards {
    /// Allowed client networks; `None` means anyone.
    pub allow_from: Option<Vec<IpNet>>,
    /// The `allow_from` entries as written, for explanations.
    pub allow_from_names: Vec<String>,
    pub secret_header: Option<SecretHeader>,
    /// Overrides `[limits] max_body` for this route.
    pub max_body: Option<u64>,
    pub rate_limit: Option<RateLimit>,
    pub max_in_flight: Option<usize>,
    /// Redeliveries of an answered update are answered here (`dedupe`).
    pub dedupe: Option<DedupeSpec>,
}

impl Guards {
    pub fn is_empty(&self) -> bool {
        self.allow_from.is_none()
            && self.secret_header.is_none()
            && self.max_body.is_none()
            && self.rate_limit.is_none()
            && self.max_in_flight.is_none()
            && self.dedupe.is_none()
    }

    /// The guards as the route table shows them: one `key = value` each, in
    /// the file's own spelling with the defaults filled in, so what `check`
    /// prints can be pasted back. The secret's value (and its file) is never shown.
    pub fn as_written(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.allow_from.is_some() {
            let names: Vec<String> = self.allow_from_names.iter().map(|n| format!("{n:?}")).collect();
            lines.push(format!("allow_from = [{}]", names.join(", ")));
        }
        if let Some(secret) = &self.secret_header {
            lines.push(format!("secret_header = {{ name = \"{}\", strip = {} }}", secret.name, secret.strip));
        }
        if let Some(max) = self.max_body {
            lines.push(format!("max_body = {:?}", size_text(max)));
        }
        if let Some(limit) = &self.rate_limit {
            lines.push(format!(
                "rate_limit = {{ per_second = {}, burst = {}, key = \"{}\", max_keys = {} }}",
                limit.per_second,
                limit.burst,
                limit.key.as_str(),
                limit.max_keys
            ));
        }
        if let Some(n) = self.max_in_flight {
            lines.push(format!("max_in_flight = {n}"));
        }
        if let Some(dedupe) = &self.dedupe {
            lines.push(format!(
                "dedupe = {{ key = \"telegram_update_id\", window = {:?}, max_keys = {} }}",
                duration_text(dedupe.window),
                dedupe.max_keys
            ));
        }
        lines
    }
}

/// A validated `rate_limit = { per_second, burst, key, max_keys }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
    pub key: RateKey,
    pub max_keys: usize,
}

impl RateLimit {
    /// The default burst: one second's worth of requests, at least 1.
    pub fn default_burst(per_second: f64) -> u32 {
        per_second.ceil().clamp(1.0, f64::from(u32::MAX)) as u32
    }

    pub const DEFAULT_MAX_KEYS: usize = 100_000;
}

/// A validated `dedupe = { key = "telegram_update_id", window, max_keys }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupeSpec {
    pub window: Duration,
    pub max_keys: usize,
}

impl DedupeSpec {
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(600);
    pub const DEFAULT_MAX_KEYS: usize = 100_000;
}

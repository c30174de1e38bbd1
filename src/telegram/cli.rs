//! `hookgate telegram {set-webhook, info, delete}`: what each prints.
//!
//! Each returns the text to print, or an error to print and exit 1 with.
//! Neither ever contains the bot token; the XBoard access token in URLs is
//! shown as `access_token=…`.

use std::fmt::Write;

use super::api::BotApi;
use super::diagnosis::redact;
use super::webhook_status::REPAIR_LINE;
use super::{Diagnosis, TelegramError};
use crate::config::{Config, TelegramConfig};

fn telegram(config: &Config) -> Result<&TelegramConfig, TelegramError> {
    config.telegram.as_ref().ok_or(TelegramError::NotConfigured)
}

fn api(telegram: &TelegramConfig) -> Result<BotApi, TelegramError> {
    Ok(BotApi::new(&telegram.api_url, telegram.token.clone())?)
}

/// Checks the URL, then registers it with the route's secret.
pub async fn set_webhook(config: &Config) -> Result<String, TelegramError> {
    let telegram = telegram(config)?;
    let upstream = telegram.check_registrable(config)?;
    let params = telegram.webhook_params();
    let url = params.url.clone();
    let answer = api(telegram)?.set_webhook(&params).await?;
    let mut out = String::new();
    let _ = writeln!(out, "checked:  POST {} → route {} → upstream {upstream}", redact(&url), telegram.route);
    let secret = match &telegram.secret {
        Some((name, _)) => format!("set (the route checks {name})"),
        None => "none (the route checks no secret header)".to_string(),
    };
    let _ = writeln!(out, "secret:   {secret}");
    let _ = writeln!(out, "Telegram: {answer}");
    Ok(out)
}

/// `getWebhookInfo` in plain words, compared with this config. `daemon` is
/// the running daemon's `/readyz` text, which carries its last repair, or why
/// it could not be asked (printed with its causes).
pub async fn info(
    config: &Config,
    daemon: Result<&str, &(dyn std::error::Error + 'static)>,
) -> Result<String, TelegramError> {
    let telegram = telegram(config)?;
    let info = api(telegram)?.get_webhook_info().await?;
    let expected = telegram.webhook_url();
    let now = crate::metrics::unix_seconds();
    let mut out = String::new();
    let url = if info.url.is_empty() { "(none)".to_string() } else { redact(&info.url) };
    let verdict = if info.url == expected { "matches this config" } else { "does NOT match this config" };
    let _ = writeln!(out, "webhook URL:     {url} ({verdict})");
    if info.url != expected {
        let _ = writeln!(out, "expected:        {}", redact(&expected));
    }
    let secret = match &telegram.secret {
        Some((name, _)) => format!(
            "route {} requires {name}; Telegram does not say whether it sends one (401/403 errors mean it does not)",
            telegram.route
        ),
        None => format!("route {} checks no secret header", telegram.route),
    };
    let _ = writeln!(out, "secret:          {secret}");
    let routing = match telegram.check_routed(config) {
        Ok(upstream) => format!("this config sends it to route {} → upstream {upstream}", telegram.route),
        Err(e) => format!("PROBLEM: {e}"),
    };
    let _ = writeln!(out, "routing:         {routing}");
    let _ = writeln!(out, "pending updates: {}", info.pending_update_count);
    match (&info.last_error_message, info.last_error_date) {
        (Some(message), Some(date)) => {
            let _ = writeln!(out, "last error:      {message} ({} ago)", age(now.saturating_sub(date)));
        }
        _ => {
            let _ = writeln!(out, "last error:      none");
        }
    }
    let window = super::monitor::error_window(telegram);
    let _ = writeln!(out, "diagnosis:       {}", Diagnosis::of(&info, &expected, now, window).explain());
    let repair = match daemon {
        Ok(readyz) => readyz
            .lines()
            .find_map(|line| line.strip_prefix(REPAIR_LINE))
            .map_or_else(|| "none since the daemon started".to_string(), str::to_string),
        Err(why) => format!("unknown ({})", crate::error::chain(why)),
    };
    let mode = if telegram.repair { "on" } else { "off" };
    let _ = writeln!(out, "repair:          {mode}; last repair: {repair}");
    Ok(out)
}

pub async fn delete(config: &Config, drop_pending: bool) -> Result<String, TelegramError> {
    let telegram = telegram(config)?;
    let answer = api(telegram)?.delete_webhook(drop_pending).await?;
    let dropped = if drop_pending { " (pending updates dropped)" } else { "" };
    Ok(format!("Telegram: {answer}{dropped}\n"))
}

/// A number of seconds in the unit people read it in (`90 s`, `5 min`, `3 h`, `2 days`).
pub fn age(seconds: u64) -> String {
    match seconds {
        0..=119 => format!("{seconds} s"),
        120..=7199 => format!("{} min", seconds / 60),
        7200..=172_799 => format!("{} h", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    }
}

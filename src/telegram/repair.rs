//! The monitor's repair (`[telegram] repair`): when the registered webhook is
//! not this config's URL (XBoard's Set Webhook button, another tool, a
//! deleted webhook), or Telegram's current error is a 401/403 while this
//! config has a secret (the button cleared it), call `setWebhook` with the
//! full configuration once, and check on the next round that it took.
//!
//! At most one repair per `REPAIR_GAP` (or `monitor_interval` if longer), the
//! gap doubling while repairs keep failing. A URL this config would not route
//! to the backend is never registered. Each repair is one log line, old state
//! to new, and one count in `hookgate_telegram_webhook_repairs_total{result}`;
//! the last one is shown under `/readyz` and by `hookgate telegram info`.

use std::time::{Duration, Instant, SystemTime};

use super::api::BotApi;
use super::webhook_status::WebhookStatus;
use super::{Diagnosis, Unregistrable, WebhookInfo};
use crate::config::{Config, TelegramConfig};
use crate::metrics::Metrics;

/// The shortest time between two repairs.
pub const REPAIR_GAP: Duration = Duration::from_secs(300);
/// The gap stops doubling after this many failures in a row.
const MAX_DOUBLINGS: u32 = 6;

/// What the repair remembers between monitor rounds.
#[derive(Default)]
pub struct Repairer {
    last_attempt: Option<Instant>,
    /// Failed repairs in a row.
    failures: u32,
    /// A `setWebhook` was accepted; the state it replaced, to check next round.
    awaiting: Option<String>,
    /// The error (date, message) a repair answered. Telegram keeps reporting
    /// it until a newer one, so it is history once the repair took.
    repaired_error: Option<(u64, String)>,
    /// The reason a needed repair was refused, logged once until it changes.
    refused: Option<Unregistrable>,
}

impl Repairer {
    /// Hides the delivery error the last repair answered.
    pub fn forget_old_error(&self, info: &mut WebhookInfo) {
        let Some((date, message)) = &self.repaired_error else { return };
        if info.last_error_date == Some(*date) && info.last_error_message.as_ref() == Some(message) {
            info.last_error_date = None;
            info.last_error_message = None;
        }
    }

    /// One monitor round: checks the last repair, or repairs if needed and allowed.
    pub async fn round(&mut self, telegram: &TelegramConfig, config: &Config, seen: Seen<'_>, api: &BotApi) {
        let Seen { info, diagnosis, metrics, status } = seen;
        if let Some(old) = self.awaiting.take() {
            let took = info.url == telegram.webhook_url();
            let result = if took { "success" } else { "failure" };
            self.record(metrics, result);
            if took {
                tracing::info!("telegram webhook repaired: {old} → {}", diagnosis.label());
            } else {
                tracing::warn!("telegram webhook repair did not take: {old} → {}", diagnosis.label());
            }
            status.set_repair(format!("{}: {old} → {} ({result})", now_rfc3339(), diagnosis.label()));
            return;
        }
        let secret_refused = telegram.secret.is_some() && matches!(diagnosis, Diagnosis::SecretMismatch(_));
        if !telegram.repair || (info.url == telegram.webhook_url() && !secret_refused) {
            return;
        }
        let doublings = self.failures.min(MAX_DOUBLINGS);
        let gap = REPAIR_GAP.max(telegram.monitor_interval) * (1 << doublings);
        if self.last_attempt.is_some_and(|at| at.elapsed() < gap) {
            return;
        }
        if let Err(why) = telegram.check_registrable(config) {
            if self.refused.as_ref() != Some(&why) {
                tracing::warn!("telegram webhook needs a repair, but this config's URL cannot be registered: {why}");
                self.refused = Some(why);
            }
            return;
        }
        self.refused = None;
        self.last_attempt = Some(Instant::now());
        let old = diagnosis.label();
        match api.set_webhook(&telegram.webhook_params()).await {
            Ok(_) => {
                self.awaiting = Some(old);
                self.repaired_error = info.last_error_date.zip(info.last_error_message.clone());
            }
            Err(e) => {
                self.record(metrics, "failure");
                tracing::warn!("telegram webhook repair failed: {old} → setWebhook refused: {e}");
                status.set_repair(format!("{}: {old} → setWebhook failed: {e} (failure)", now_rfc3339()));
            }
        }
    }

    fn record(&mut self, metrics: &Metrics, result: &'static str) {
        metrics.telegram_repair(result);
        self.failures = if result == "success" { 0 } else { self.failures + 1 };
    }
}

/// What this round saw, and where to report.
pub struct Seen<'a> {
    pub info: &'a WebhookInfo,
    pub diagnosis: &'a Diagnosis,
    pub metrics: &'a Metrics,
    pub status: &'a WebhookStatus,
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

//! The monitor's repair (`[telegram] repair`): when the registered webhook is
//! not this config's URL (XBoard's Set Webhook button, another tool, a
//! deleted webhook), or Telegram's current error is a 401/403 while this
//! config has a secret (the button cleared it), call `setWebhook` with the
//! full configuration once, and check on the next round that it took.
//!
//! At most one repair per `repair_gap` (5 minutes by default, or
//! `monitor_interval` if longer), the gap doubling while repairs keep failing,
//! and never before the `retry_after` of a `setWebhook` Telegram refused with 429.
//! A URL this config would not route to the backend is never registered. Each
//! repair is one log line, old state to new, and one count in
//! `hookgate_telegram_webhook_repairs_total{result}`; the last one is shown
//! under `/readyz` and by `hookgate telegram info`.
//!
//! With `[cluster]` only the leader repairs, and its memory (the last
//! attempt, the failures, a repair still to be checked) lives in Redis
//! (`shared_repair`): the gap holds across the hosts, and a leader that dies
//! right after its `setWebhook` leaves the check to the next leader instead
//! of a second call. The lease is checked (`still_leads`) right before each call.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::api::{ApiError, BotApi};
use super::shared_repair::{self, Memory};
use super::webhook_status::WebhookStatus;
use super::{Diagnosis, Unregistrable, WebhookInfo};
use crate::cluster::{Cluster, Fence};
use crate::config::{Config, TelegramConfig};
use crate::metrics::Metrics;

/// The gap stops doubling after this many failures in a row.
const MAX_DOUBLINGS: u32 = 6;

/// What the repair remembers between monitor rounds.
#[derive(Default)]
pub struct Repairer {
    /// Shared with the other hosts under `[cluster]`.
    memory: Memory,
    /// The reason a needed repair was refused, logged once until it changes.
    refused: Option<Unregistrable>,
}

/// This host's lease, taken before the round's `getWebhookInfo`: a repair
/// acts only on what was read while leading.
pub struct Lead {
    pub cluster: Arc<Cluster>,
    pub fence: Fence,
}

impl Repairer {
    /// Takes on the memory the last leader left in Redis (a round of a new
    /// leader starts where the old one stopped). `Err`: Redis did not answer,
    /// and this round must not repair.
    pub async fn adopt(&mut self, lead: &Lead) -> Result<(), crate::cluster::ClusterError> {
        if let Some(memory) = shared_repair::load(&lead.cluster).await? {
            self.memory = memory;
        }
        Ok(())
    }

    /// Hides the delivery error the last repair answered.
    pub fn forget_old_error(&self, info: &mut WebhookInfo) {
        let Some((date, message)) = &self.memory.repaired_error else { return };
        if info.last_error_date == Some(*date) && info.last_error_message.as_ref() == Some(message) {
            info.last_error_date = None;
            info.last_error_message = None;
        }
    }

    /// One monitor round: checks the last repair, or repairs if needed and
    /// allowed. `lead`: with `[cluster]`, this host's lease (only a leader
    /// calls this); `None` when the host is alone.
    pub async fn round(
        &mut self,
        telegram: &TelegramConfig,
        config: &Config,
        seen: Seen<'_>,
        api: &BotApi,
        lead: Option<&Lead>,
    ) {
        let Seen { info, diagnosis, metrics, status } = seen;
        if let Some(old) = self.memory.awaiting.take() {
            let took = info.url == telegram.webhook_url();
            let result = if took { "success" } else { "failure" };
            self.record(metrics, result);
            if took {
                tracing::info!("telegram webhook repaired: {old} → {}", diagnosis.label());
            } else {
                tracing::warn!("telegram webhook repair did not take: {old} → {}", diagnosis.label());
            }
            status.set_repair(format!("{}: {old} → {} ({result})", now_rfc3339(), diagnosis.label()));
            self.share(lead).await;
            return;
        }
        if !self.is_due(telegram, info, diagnosis) {
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
        let old = diagnosis.label();
        let answered_before = self.memory.repaired_error.clone();
        if !self.announce(lead, &old, info).await {
            return;
        }
        if let Err(e) = api.set_webhook(&telegram.webhook_params()).await {
            self.memory.awaiting = None;
            self.memory.repaired_error = answered_before;
            if let ApiError::Refused { retry_after: Some(seconds), .. } = e {
                self.memory.not_before_ms = Some(unix_millis().saturating_add(seconds.saturating_mul(1000)));
            }
            self.record(metrics, "failure");
            self.share(lead).await;
            tracing::warn!("telegram webhook repair failed: {old} → setWebhook refused: {e}");
            status.set_repair(format!("{}: {old} → setWebhook failed: {e} (failure)", now_rfc3339()));
        }
    }

    /// Whether the webhook needs a repair that `repair` and the gap allow.
    fn is_due(&self, telegram: &TelegramConfig, info: &WebhookInfo, diagnosis: &Diagnosis) -> bool {
        let secret_refused = telegram.secret.is_some() && matches!(diagnosis, Diagnosis::SecretMismatch(_));
        if !telegram.repair || (info.url == telegram.webhook_url() && !secret_refused) {
            return false;
        }
        let doublings = self.memory.failures.min(MAX_DOUBLINGS);
        let gap = telegram.repair_gap.max(telegram.monitor_interval) * (1 << doublings);
        let now = unix_millis();
        let since = |at: u64| Duration::from_millis(now.saturating_sub(at));
        self.memory.last_attempt_ms.is_none_or(|at| since(at) >= gap)
            && self.memory.not_before_ms.is_none_or(|at| now >= at)
    }

    /// Records the attempt about to be made, before it is made: with
    /// `[cluster]`, only while this host still leads, and in Redis first (a
    /// leader that dies after the call leaves its check to the next leader).
    /// False: do not call.
    async fn announce(&mut self, lead: Option<&Lead>, old: &str, info: &WebhookInfo) -> bool {
        if let Some(lead) = lead
            && !lead.cluster.still_leads(&lead.fence).await
        {
            return false;
        }
        let before = self.memory.clone();
        self.memory.last_attempt_ms = Some(unix_millis());
        self.memory.awaiting = Some(old.to_string());
        self.memory.repaired_error = info.last_error_date.zip(info.last_error_message.clone());
        if !self.share(lead).await {
            self.memory = before;
            tracing::warn!("telegram webhook repair postponed: the cluster's Redis did not take the attempt");
            return false;
        }
        true
    }

    /// Writes the memory to Redis when leading; true when written (or alone).
    async fn share(&self, lead: Option<&Lead>) -> bool {
        match lead {
            Some(lead) => shared_repair::save(&lead.cluster, &self.memory).await.is_ok(),
            None => true,
        }
    }

    fn record(&mut self, metrics: &Metrics, result: &'static str) {
        metrics.telegram_repair(result);
        self.memory.failures = if result == "success" { 0 } else { self.memory.failures + 1 };
    }
}

/// What this round saw, and where to report.
pub struct Seen<'a> {
    pub info: &'a WebhookInfo,
    pub diagnosis: &'a Diagnosis,
    pub metrics: &'a Metrics,
    pub status: &'a WebhookStatus,
}

fn unix_millis() -> u64 {
    (crate::metrics::unix_now() * 1000.0) as u64
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

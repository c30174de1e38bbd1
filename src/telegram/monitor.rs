//! The daemon's watch on the webhook: `getWebhookInfo` every
//! `monitor_interval` (with ±10% jitter, and a shorter, growing retry delay
//! after a failed call), exported as metrics, logged once per change of state
//! (not every interval), and shown under `/readyz`.

use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::api::BotApi;
use super::diagnosis::redact;
use super::{Diagnosis, TelegramConfig};
use crate::metrics::Metrics;
use crate::server::StateHandle;

/// How often to look again for a `[telegram]` table while there is none.
const IDLE_RECHECK: Duration = Duration::from_secs(30);
/// The first retry delay after a failed call; it doubles up to the interval.
const FIRST_RETRY: Duration = Duration::from_secs(15);
/// Errors younger than this (or two intervals, if longer) count as current.
const ERROR_WINDOW: Duration = Duration::from_secs(600);

/// The latest diagnosis, for `/readyz`.
#[derive(Debug, Default)]
pub struct WebhookStatus(Mutex<Option<String>>);

impl WebhookStatus {
    pub fn get(&self) -> Option<String> {
        self.0.lock().map(|s| s.clone()).unwrap_or(None)
    }

    fn set(&self, text: Option<String>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = text;
        }
    }
}

/// Runs until the process exits. Follows reloads: each round reads the current `[telegram]`.
pub async fn run(state: StateHandle, metrics: Arc<Metrics>, status: Arc<WebhookStatus>) {
    let mut last: Option<Diagnosis> = None;
    let mut failures: u32 = 0;
    loop {
        let telegram = state.load().config.telegram.clone();
        let Some(telegram) = telegram.filter(|t| !t.monitor_interval.is_zero()) else {
            status.set(None);
            tokio::time::sleep(IDLE_RECHECK).await;
            continue;
        };
        let interval = telegram.monitor_interval;
        let wait = match check(&telegram).await {
            Ok((info, diagnosis)) => {
                failures = 0;
                metrics.telegram_webhook(
                    info.pending_update_count,
                    info.last_error_date,
                    info.url == telegram.webhook_url(),
                );
                if last.as_ref() != Some(&diagnosis) {
                    report(&diagnosis, &info.url);
                }
                status.set(Some(diagnosis.explain()));
                last = Some(diagnosis);
                jitter(interval)
            }
            Err(error) => {
                failures += 1;
                metrics.telegram_monitor_error();
                if failures == 1 {
                    tracing::warn!("telegram monitor: cannot read the webhook state: {error}");
                }
                status.set(Some(format!("unknown: cannot ask Telegram ({error})")));
                FIRST_RETRY.saturating_mul(1 << failures.min(16)).min(interval)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

async fn check(telegram: &TelegramConfig) -> Result<(super::WebhookInfo, Diagnosis), String> {
    let api = BotApi::new(&telegram.api_url, telegram.token.clone()).map_err(|e| e.to_string())?;
    let info = api.get_webhook_info().await.map_err(|e| e.to_string())?;
    let window = ERROR_WINDOW.max(telegram.monitor_interval * 2);
    let diagnosis = Diagnosis::of(&info, &telegram.webhook_url(), crate::metrics::unix_seconds(), window);
    Ok((info, diagnosis))
}

fn report(diagnosis: &Diagnosis, url: &str) {
    let url = redact(url);
    if diagnosis.is_healthy() {
        tracing::info!(%url, "telegram webhook: {}", diagnosis.explain());
    } else {
        tracing::warn!(%url, "telegram webhook: {}", diagnosis.explain());
    }
}

/// `interval` ± 10%, so many daemons do not poll Telegram in lockstep.
fn jitter(interval: Duration) -> Duration {
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    let spread = interval.as_millis() as u64 / 5;
    let offset = if spread == 0 { 0 } else { random % spread };
    (interval + Duration::from_millis(offset)).saturating_sub(Duration::from_millis(spread / 2))
}

//! The daemon's watch on the webhook: `getWebhookInfo` every
//! `monitor_interval` (with ±10% jitter, and a shorter, growing retry delay
//! after a failed call), exported as metrics, logged once per change of state
//! (not every interval), and shown under `/readyz` and on the status page,
//! a failed call included: then Telegram's state is unknown, and both say why.
//!
//! With `[cluster]` the leader alone watches and repairs: a follower makes no
//! Bot API call while Redis is reachable, and shows what the leader's last
//! round saw (`shared_view`: its `/readyz` line names the leader), and looks
//! at once when it becomes leader. While Redis is unreachable no host
//! leads, and each watches on its own, read-only, so the state stays visible.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use super::api::{ApiError, BotApi};
use super::diagnosis::redact;
use super::repair::{Lead, Repairer, Seen};
use super::shared_view;
use super::webhook_status::{WebhookStatus, WebhookView};
use super::{Diagnosis, WebhookInfo};
use tokio::sync::watch;

use crate::cluster::{Cluster, Fence};
use crate::config::{Config, TelegramConfig};
use crate::metrics::Metrics;
use crate::server::StateHandle;

/// How often to look again for a `[telegram]` table while there is none.
const IDLE_RECHECK: Duration = Duration::from_secs(30);
/// The first retry delay after a failed call; it doubles up to the interval.
const FIRST_RETRY: Duration = Duration::from_secs(15);
/// Errors younger than this (or two intervals, if longer) count as current.
const ERROR_WINDOW: Duration = Duration::from_secs(600);

/// Runs until the process exits. Follows reloads: a reload starts a round at
/// once, with the current `[telegram]`; when it changed what is watched
/// (another bot, API, URL or secret), what was seen of the old webhook is
/// forgotten first, not shown as this one's.
pub async fn run(state: StateHandle, metrics: Arc<Metrics>, status: Arc<WebhookStatus>) {
    let mut monitor = Monitor::default();
    let mut leadership = None;
    let mut reloads = state.reloaded();
    let mut watching = None;
    loop {
        let current = state.load();
        let telegram = current.config.telegram.as_ref().filter(|t| !t.monitor_interval.is_zero());
        let now_watching = telegram.map(watched);
        if now_watching != watching {
            if watching.is_some() {
                status.clear();
                monitor = Monitor::default();
            }
            watching = now_watching;
        }
        let Some(telegram) = telegram else {
            status.clear();
            drop(current);
            pause(IDLE_RECHECK, &mut reloads, None).await;
            continue;
        };
        if leadership.is_none() {
            leadership = current.cluster.as_ref().map(|cluster| cluster.watch_leadership());
        }
        let wait = match Role::of(current.cluster.as_ref()) {
            Role::Alone => monitor.round(telegram, &current.config, Acting::Repair(None), &metrics, &status).await,
            Role::Leader(lead) => {
                // Without the last leader's memory, this round only watches.
                let acting = match monitor.repairer.adopt(&lead).await {
                    Ok(()) => Acting::Repair(Some(&lead)),
                    Err(_) => Acting::Watch,
                };
                let wait = monitor.round(telegram, &current.config, acting, &metrics, &status).await;
                shared_view::publish(&lead.cluster, &status, telegram.monitor_interval).await;
                wait
            }
            Role::Watching => monitor.round(telegram, &current.config, Acting::Watch, &metrics, &status).await,
            Role::Follower(cluster, leader) => {
                monitor.last = None;
                let shared = shared_view::fetch(&cluster).await.ok().flatten();
                status.set_follower(leader.as_deref(), shared);
                telegram.monitor_interval
            }
        };
        drop(current);
        pause(wait, &mut reloads, leadership.as_mut()).await;
    }
}

/// Waits `wait`, or less: until a reload (the next round then reads the new
/// config at once) or a change of this host's leadership (a new leader looks
/// at once).
async fn pause(
    wait: Duration,
    reloads: &mut watch::Receiver<()>,
    leadership: Option<&mut watch::Receiver<Option<Fence>>>,
) {
    let leader_changed = async {
        let changed = match leadership {
            Some(changes) => changes.changed().await.is_ok(),
            None => false,
        };
        if !changed {
            std::future::pending::<()>().await;
        }
    };
    let reloaded = async {
        if reloads.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        () = leader_changed => {}
        () = reloaded => {}
    }
}

/// What a round's view is of: another bot, API, URL, secret or interval is
/// another webhook (hashed here only to compare; the token never leaves).
fn watched(telegram: &TelegramConfig) -> u64 {
    let params = telegram.webhook_params();
    let mut hasher = std::hash::DefaultHasher::new();
    (telegram.token.expose(), telegram.api_url.to_string(), params.url, params.secret_token).hash(&mut hasher);
    (params.allowed_updates, params.max_connections, telegram.monitor_interval, telegram.repair).hash(&mut hasher);
    hasher.finish()
}

/// What this host does about the webhook.
enum Role {
    /// No `[cluster]`: it watches and repairs, as it always has.
    Alone,
    /// It holds the lease: it watches and repairs.
    Leader(Lead),
    /// In a cluster, not leading, and Redis reachable: the leader watches
    /// (one `getWebhookInfo` per interval for the cluster), this host does
    /// not; it shows what the leader saw (`shared_view`).
    Follower(Arc<Cluster>, Option<String>),
    /// Redis is unreachable, so no host leads: each watches on its own, so
    /// that the state stays visible, and none repairs.
    Watching,
}

impl Role {
    fn of(cluster: Option<&Arc<Cluster>>) -> Role {
        let Some(cluster) = cluster else { return Role::Alone };
        match cluster.leadership() {
            Some(fence) => Role::Leader(Lead { cluster: cluster.clone(), fence }),
            None if cluster.is_up() => Role::Follower(cluster.clone(), cluster.report().leader),
            None => Role::Watching,
        }
    }
}

/// Whether a round may repair (with the lease, under `[cluster]`), or only watches.
enum Acting<'a> {
    Repair(Option<&'a Lead>),
    Watch,
}

/// What the monitor remembers between rounds.
#[derive(Default)]
struct Monitor {
    last: Option<Diagnosis>,
    /// Failed calls in a row.
    failures: u32,
    /// Why the last call failed, as logged: a new reason is a change of state too.
    last_error: Option<String>,
    repairer: Repairer,
}

impl Monitor {
    /// One `getWebhookInfo`, reported, then the repair if `acting` allows;
    /// returns the wait before the next round.
    async fn round(
        &mut self,
        telegram: &TelegramConfig,
        config: &Config,
        acting: Acting<'_>,
        metrics: &Metrics,
        status: &WebhookStatus,
    ) -> Duration {
        let interval = telegram.monitor_interval;
        match check(telegram, &self.repairer).await {
            Ok((api, info, diagnosis)) => {
                self.failures = 0;
                self.last_error = None;
                metrics.telegram_webhook(
                    info.pending_update_count,
                    info.last_error_date,
                    info.url == telegram.webhook_url(),
                );
                if self.last.as_ref() != Some(&diagnosis) {
                    report(&diagnosis, &info.url);
                }
                status.set(diagnosis.explain());
                status.set_view(view_of(&info, &diagnosis, telegram));
                if let Acting::Repair(lead) = acting {
                    let seen = Seen { info: &info, diagnosis: &diagnosis, metrics, status };
                    self.repairer.round(telegram, config, seen, &api, lead).await;
                }
                self.last = Some(diagnosis);
                jitter(interval)
            }
            Err(error) => {
                self.failures += 1;
                metrics.telegram_monitor_error();
                let why = error.to_string();
                if self.last_error.as_deref() != Some(why.as_str()) {
                    tracing::warn!("telegram monitor: cannot read the webhook state: {why}");
                    self.last_error = Some(why);
                }
                // Whatever the next answer says, it is a change of state: it is logged.
                self.last = None;
                status.set_unreachable(&error);
                FIRST_RETRY.saturating_mul(1 << self.failures.min(16)).min(interval)
            }
        }
    }
}

async fn check(telegram: &TelegramConfig, repairer: &Repairer) -> Result<(BotApi, WebhookInfo, Diagnosis), ApiError> {
    let api = BotApi::new(&telegram.api_url, telegram.token.clone())?;
    let mut info = api.get_webhook_info().await?;
    repairer.forget_old_error(&mut info);
    let diagnosis =
        Diagnosis::of(&info, &telegram.webhook_url(), crate::metrics::unix_seconds(), error_window(telegram));
    Ok((api, info, diagnosis))
}

fn view_of(info: &WebhookInfo, diagnosis: &Diagnosis, telegram: &TelegramConfig) -> WebhookView {
    let now = crate::metrics::unix_seconds();
    WebhookView {
        state: diagnosis.label(),
        healthy: diagnosis.is_healthy(),
        explain: diagnosis.explain(),
        unreachable: None,
        pending_updates: info.pending_update_count,
        url_matches_config: info.url == telegram.webhook_url(),
        last_error: info.last_error_message.clone(),
        last_error_age_seconds: info.last_error_date.map(|date| now.saturating_sub(date)),
        checked_at: now,
        reached_at: Some(now),
    }
}

/// How young Telegram's last error must be to count as current.
pub fn error_window(telegram: &TelegramConfig) -> Duration {
    ERROR_WINDOW.max(telegram.monitor_interval * 2)
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

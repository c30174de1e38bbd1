//! What the monitor last learned about the webhook, and its last repair, kept
//! for `/readyz`, the status page and `hookgate telegram info`. The monitor
//! (`monitor`) and its repair (`repair`) write it; `admin` and `status` read it.

use std::sync::Mutex;

use super::api::ApiError;

/// How `/readyz` starts the line with the monitor's last webhook repair
/// (`hookgate telegram info` looks for it).
pub const REPAIR_LINE: &str = "telegram last repair: ";

/// The latest diagnosis and the last repair, for `/readyz` and the status page.
#[derive(Debug, Default)]
pub struct WebhookStatus(Mutex<Report>);

#[derive(Debug, Default)]
struct Report {
    /// One line for `/readyz`: the diagnosis, or why Telegram could not be asked.
    diagnosis: Option<String>,
    /// The last repair: when, from which state to which, and its result.
    repair: Option<String>,
    /// What the last round learned.
    view: Option<WebhookView>,
}

/// What the last round learned, for the status page: the diagnosis, or that
/// Telegram could not be asked and why. A round that could not ask keeps the
/// numbers of the last one that could, but never its verdict.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WebhookView {
    /// The diagnosis in a few words (`healthy`, `webhook set to …`, …), or
    /// `cannot reach Telegram` / `cannot ask Telegram` when the round failed.
    pub state: String,
    pub healthy: bool,
    /// The diagnosis with its fix, in one line; when the round failed, the
    /// line `/readyz` shows (`unknown: cannot ask Telegram (…)`).
    pub explain: String,
    /// Why the last round could not ask Telegram; `None` when it could.
    pub unreachable: Option<String>,
    /// From the last round that reached Telegram (0 before one did).
    pub pending_updates: u64,
    pub url_matches_config: bool,
    pub last_error: Option<String>,
    pub last_error_age_seconds: Option<u64>,
    /// Unix time of the last round, whether or not it reached Telegram.
    pub checked_at: u64,
    /// Unix time of the last round that reached Telegram.
    pub reached_at: Option<u64>,
}

/// What a cluster's leader saw in its last round (`shared_view` carries it
/// through Redis), as a follower shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LeaderView {
    /// The leader that looked.
    pub node: String,
    /// Its `/readyz` line.
    pub diagnosis: Option<String>,
    pub view: Option<WebhookView>,
    pub repair: Option<String>,
}

/// `state` when Telegram's servers could not be reached in time.
pub const UNREACHABLE: &str = "cannot reach Telegram";
/// `state` when they answered, but not with a webhook's state (a refused token, a broken answer).
pub const UNANSWERED: &str = "cannot ask Telegram";

impl WebhookStatus {
    fn read<T>(&self, f: impl FnOnce(&Report) -> T) -> T {
        f(&self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn write(&self, f: impl FnOnce(&mut Report)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn get(&self) -> Option<String> {
        self.read(|r| r.diagnosis.clone())
    }

    pub fn view(&self) -> Option<WebhookView> {
        self.read(|r| r.view.clone())
    }

    /// The last repair: when, from which state to which, and its result.
    pub fn last_repair(&self) -> Option<String> {
        self.read(|r| r.repair.clone())
    }

    pub(super) fn set(&self, text: String) {
        self.write(|r| r.diagnosis = Some(text));
    }

    pub(super) fn set_view(&self, view: WebhookView) {
        self.write(|r| r.view = Some(view));
    }

    /// A round could not ask Telegram: the view says so, with `/readyz`'s line.
    pub(super) fn set_unreachable(&self, error: &ApiError) {
        let line = unknown(error);
        let state = match error {
            ApiError::Unreachable { .. } | ApiError::Timeout(_) => UNREACHABLE,
            _ => UNANSWERED,
        };
        let now = crate::metrics::unix_seconds();
        self.write(|r| {
            r.diagnosis = Some(line.clone());
            let view = r.view.get_or_insert_with(|| WebhookView {
                state: String::new(),
                healthy: false,
                explain: String::new(),
                unreachable: None,
                pending_updates: 0,
                url_matches_config: false,
                last_error: None,
                last_error_age_seconds: None,
                checked_at: now,
                reached_at: None,
            });
            view.state = state.to_string();
            view.healthy = false;
            view.explain = line;
            view.unreachable = Some(error.to_string());
            view.checked_at = now;
        });
    }

    /// A follower in a cluster: the leader watches. With its last round
    /// (`shared`), this host shows what the leader saw, naming it; without,
    /// that the leader watches.
    pub(super) fn set_follower(&self, leader: Option<&str>, shared: Option<LeaderView>) {
        let Some(shared) = shared else {
            let line = match leader {
                Some(node) => format!("watched by the cluster's leader, {node}"),
                None => "watched by the cluster's leader (none yet)".to_string(),
            };
            self.write(|r| {
                r.diagnosis = Some(line);
                r.view = None;
            });
            return;
        };
        let node = shared.node;
        self.write(|r| {
            r.diagnosis = shared.diagnosis.map(|line| format!("{line} (seen by the cluster's leader, {node})"));
            r.view = shared.view;
            r.repair = shared.repair;
        });
    }

    /// No `[telegram]` (or the monitor off): nothing to show.
    pub(super) fn clear(&self) {
        self.write(|r| {
            r.diagnosis = None;
            r.view = None;
        });
    }

    pub(super) fn set_repair(&self, text: String) {
        self.write(|r| r.repair = Some(text));
    }
}

/// `/readyz`'s line for a round that could not ask Telegram.
fn unknown(error: &ApiError) -> String {
    format!("unknown: cannot ask Telegram ({error})")
}

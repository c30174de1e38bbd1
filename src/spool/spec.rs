//! What the config says about the spool: `[spool]` (where the file lives,
//! how large it may grow) and a route's `store` key (when requests are kept,
//! what the sender is answered, in what order they are delivered, and for
//! how long). Plain data, validated by `config`.

use std::path::PathBuf;
use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;

/// `[spool]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolSettings {
    /// Relative paths in the file are relative to the config file.
    pub dir: PathBuf,
    /// Past it nothing more is kept, and the answer is 503.
    pub max_bytes: u64,
}

impl SpoolSettings {
    pub const DEFAULT_DIR: &str = "/var/lib/hookgate/spool";
    pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
}

/// When a route keeps its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreMode {
    /// Forward live; keep the request and answer `ack` when the upstream
    /// cannot be reached, answers 502/503/504 or gives no head in time.
    Fallback,
    /// Keep every request, answer `ack` at once, deliver in the background.
    Always,
    /// Forward live and pass the upstream's answer through; keep a copy until
    /// the upstream answered it 2xx. hookgate never answers for the upstream.
    Journal,
}

impl StoreMode {
    /// As the file writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreMode::Fallback => "fallback",
            StoreMode::Always => "always",
            StoreMode::Journal => "journal",
        }
    }
}

/// In what order a route's kept requests are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreOrder {
    /// One at a time per chat of the Telegram update, in arrival order.
    TelegramChat,
    /// No order; at most `concurrency` in flight.
    None,
}

/// A route's `store` key, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    pub mode: StoreMode,
    /// What the sender is answered when hookgate keeps its request (not in `journal`).
    pub ack: StatusCode,
    pub order: StoreOrder,
    /// A request not delivered by then becomes a dead letter.
    pub expire: Duration,
    /// Deliveries in flight at once with `order = "none"`.
    pub concurrency: usize,
}

impl StoreSpec {
    pub const DEFAULT_EXPIRE: Duration = Duration::from_secs(24 * 3600);
    pub const DEFAULT_CONCURRENCY: usize = 8;
}

//! `[spool]` and a route's `store` key, from the file to `spool`'s plain
//! data: where the spool lives, and when a route keeps its requests.

use http::StatusCode;

use super::locate::Step;
use super::raw::{RawSpool, RawStore};
use super::validate::{Checker, child, key};
use crate::spool::{SpoolSettings, StoreMode, StoreOrder, StoreSpec};

impl Checker<'_> {
    /// `[spool]`, with its defaults when the table is absent.
    pub(super) fn spool(&mut self, raw: Option<RawSpool>) -> SpoolSettings {
        let raw = raw.unwrap_or(RawSpool { dir: None, max_bytes: None });
        let dir = self.base_dir().join(raw.dir.as_deref().unwrap_or(SpoolSettings::DEFAULT_DIR));
        let max_bytes = raw.max_bytes.map_or(SpoolSettings::DEFAULT_MAX_BYTES, |size| size.0.0);
        if max_bytes == 0 {
            self.problem(&[key("spool"), key("max_bytes")], "must be above 0");
        }
        SpoolSettings { dir, max_bytes }
    }

    /// A route's `store` key. `at` is the route's path in the file.
    pub(super) fn store(&mut self, at: &[Step], raw: RawStore) -> Option<StoreSpec> {
        let at = child(at, "store");
        let before = self.problems.len();
        let ack = match (raw.mode, raw.ack) {
            (StoreMode::Journal, Some(_)) => {
                self.problem(&child(&at, "ack"), "journal passes the upstream's answer through; it has no ack");
                StatusCode::OK
            }
            (_, None) => StatusCode::OK,
            (_, Some(status)) => match StatusCode::from_u16(status) {
                Ok(status) if status.is_success() => status,
                _ => {
                    self.problem(&child(&at, "ack"), format!("{status}: an acknowledgement is a 2xx status"));
                    StatusCode::OK
                }
            },
        };
        let expire = raw.expire.map_or(StoreSpec::DEFAULT_EXPIRE, |d| d.0.0);
        if expire.is_zero() {
            self.problem(&child(&at, "expire"), "must be above 0");
        }
        let concurrency = raw.concurrency.unwrap_or(StoreSpec::DEFAULT_CONCURRENCY);
        if concurrency == 0 {
            self.problem(&child(&at, "concurrency"), "must be above 0");
        }
        let order = raw.order.unwrap_or(StoreOrder::None);
        if self.problems.len() > before {
            return None;
        }
        Some(StoreSpec { mode: raw.mode, ack, order, expire, concurrency })
    }
}

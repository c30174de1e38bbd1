//! The repair's memory in Redis (`[cluster]`): what the leader's repair must
//! hand on, so that the next leader does not repair twice for one breakage.
//!
//! One JSON value under `<prefix>telegram:repair`, written by the leader
//! before its `setWebhook` (the attempt and the state it replaces, so that a
//! leader that dies right after the call leaves the check of it to the next
//! one) and after each outcome, and read by a leader at the start of each of
//! its rounds. The value is untrusted: one that does not parse is ignored
//! (logged), and the host's own memory is used.

use std::time::Duration;

use crate::cluster::{Call, Cluster, ClusterError};

/// How long the memory outlives its last write: longer than the widest gap
/// (64 gaps of the default 5 minutes is about 5 hours).
const KEEP: Duration = Duration::from_secs(24 * 3600);

/// What one repair leaves for the next round, on whichever host it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Memory {
    /// Unix time (ms) of the last `setWebhook` attempt.
    pub last_attempt_ms: Option<u64>,
    /// Failed repairs in a row.
    pub failures: u32,
    /// A `setWebhook` was sent (or is about to be); the state it replaced,
    /// to check next round.
    pub awaiting: Option<String>,
    /// The error (date, message) a repair answered. Telegram keeps reporting
    /// it until a newer one, so it is history once the repair took.
    pub repaired_error: Option<(u64, String)>,
    /// Unix time (ms) before which Telegram asked not to be called again
    /// (`retry_after` of a refused `setWebhook`), when later than the gap.
    #[serde(default)]
    pub not_before_ms: Option<u64>,
}

fn key(cluster: &Cluster) -> String {
    cluster.key("telegram", "repair")
}

/// The memory the last leader left, if any (`None` also for a value that does not parse).
pub(super) async fn load(cluster: &Cluster) -> Result<Option<Memory>, ClusterError> {
    cluster.get_json(Call::Lease, &key(cluster), "the Telegram repair memory").await
}

pub(super) async fn save(cluster: &Cluster, memory: &Memory) -> Result<(), ClusterError> {
    cluster.set_json(Call::Lease, &key(cluster), memory, KEEP).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_round_trips_through_json() {
        let memory = Memory {
            last_attempt_ms: Some(1_700_000_000_000),
            failures: 2,
            awaiting: Some("webhook set to another URL".into()),
            repaired_error: Some((1_700_000_000, "Wrong response from the webhook: 401 Unauthorized".into())),
            not_before_ms: Some(1_700_000_300_000),
        };
        let json = serde_json::to_vec(&memory).unwrap();
        assert_eq!(serde_json::from_slice::<Memory>(&json).unwrap(), memory);
        assert!(serde_json::from_slice::<Memory>(b"{\"failures\": \"x\"}").is_err(), "a bad value is refused");
        // What a host from before `not_before_ms` wrote still parses.
        let older = b"{\"last_attempt_ms\":null,\"failures\":0,\"awaiting\":null,\"repaired_error\":null}";
        assert_eq!(serde_json::from_slice::<Memory>(older).unwrap(), Memory::default());
    }
}

//! JSON values in Redis beside the lease: what the leader's duties leave for
//! the next round or the other hosts (the Telegram repair's memory, the
//! webhook as the leader saw it). Read as untrusted: a value that does not
//! parse is logged and treated as absent.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Call, Cluster, ClusterError};

impl Cluster {
    /// The value under `key`, if any; `what` names it in the log line of one that does not parse.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        call: Call,
        key: &str,
        what: &str,
    ) -> Result<Option<T>, ClusterError> {
        let stored: Option<Vec<u8>> = self.call(call, &redis::Cmd::get(key)).await?;
        let Some(bytes) = stored else { return Ok(None) };
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(Some(value)),
            Err(e) => {
                tracing::warn!("cluster: ignoring {what} in Redis: {e}");
                Ok(None)
            }
        }
    }

    /// Stores `value` under `key` for `keep`.
    pub async fn set_json<T: Serialize>(
        &self,
        call: Call,
        key: &str,
        value: &T,
        keep: Duration,
    ) -> Result<(), ClusterError> {
        let json = serde_json::to_vec(value).unwrap_or_default();
        self.call::<()>(call, &redis::Cmd::pset_ex(key, json, keep.as_millis() as u64)).await
    }
}

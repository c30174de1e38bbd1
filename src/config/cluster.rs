//! `[cluster]`, from the file to `cluster`'s plain data: the Redis that
//! several hookgates share, this host's name in it, and the deadlines.

use super::raw::RawCluster;
use super::validate::{Checker, child, key};
use crate::cluster::{ClusterSettings, RedisUrl};

/// The shortest `encryption_key_file` accepted: 32 characters, as
/// `openssl rand -hex 32` writes 64.
const MIN_ENCRYPTION_KEY: usize = 32;

impl Checker<'_> {
    /// `[cluster]`: `None` when absent, or after a problem was recorded.
    /// `acme`: the config has `[listen.tls.acme]`, whose certificate and key
    /// the hosts share through Redis only encrypted, so a key file is required.
    pub(super) fn cluster(&mut self, raw: Option<RawCluster>, acme: bool) -> Option<ClusterSettings> {
        let raw = raw?;
        let at = [key("cluster")];
        let before = self.problems.len();
        let redis = RedisUrl::parse(&raw.redis).map_err(|e| self.problem(&child(&at, "redis"), e)).ok();
        let password = raw.password_file.and_then(|file| self.secret_file(&child(&at, "password_file"), &file));
        let raw_has_no_key = raw.encryption_key_file.is_none();
        let encryption_key = raw.encryption_key_file.and_then(|file| {
            let at = child(&at, "encryption_key_file");
            let secret = self.secret_file(&at, &file)?;
            if secret.expose().len() < MIN_ENCRYPTION_KEY {
                self.problem(
                    &at,
                    format!("{file} must hold at least {MIN_ENCRYPTION_KEY} characters (openssl rand -hex 32)"),
                );
            }
            Some(secret)
        });
        if acme && raw_has_no_key {
            self.problem(
                &child(&at, "encryption_key_file"),
                "is required with [listen.tls.acme]: the hosts share the certificate and its private key through \
                 Redis, encrypted with this key (openssl rand -hex 32 > /etc/hookgate/cluster.key)",
            );
        }
        let key_prefix = raw.key_prefix.unwrap_or_else(|| ClusterSettings::DEFAULT_KEY_PREFIX.to_string());
        let node = raw.node.unwrap_or_else(ClusterSettings::host_name);
        if node.is_empty() || node.contains(['#', ' ']) || node.len() > 64 {
            self.problem(
                &child(&at, "node"),
                format!("{node:?}: a node name is 1-64 characters without '#' or spaces"),
            );
        }
        let call_timeout = raw.call_timeout.map_or(ClusterSettings::DEFAULT_CALL_TIMEOUT, |d| d.0.0);
        if call_timeout.is_zero() {
            self.problem(&child(&at, "call_timeout"), "must be above 0");
        }
        let lease = raw.lease.map_or(ClusterSettings::DEFAULT_LEASE, |d| d.0.0);
        if lease < std::time::Duration::from_secs(1) {
            self.problem(&child(&at, "lease"), "must be at least 1s");
        }
        let redis = redis.filter(|_| self.problems.len() == before)?;
        Some(ClusterSettings { redis, password, key_prefix, node, call_timeout, lease, encryption_key })
    }
}

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
                 Redis, encrypted with this key (openssl rand -hex 32 > /etc/hookgate/credentials/cluster.key)",
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Config;

    const BASE: &str = "[listen]\naddrs = [\"127.0.0.1:0\"]\n[upstreams.app]\nurl = \"http://127.0.0.1:7001\"\n\
                        [default]\nupstream = \"app\"\n";

    fn load(dir: &std::path::Path, cluster: &str) -> Result<Config, String> {
        let file = dir.join("hookgate.toml").display().to_string();
        Config::from_toml_str(&format!("{BASE}[cluster]\n{cluster}"), &file).map_err(|e| e.to_string())
    }

    #[test]
    fn the_table_takes_its_defaults_and_reads_its_secrets_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let config = load(dir.path(), "redis = \"redis://10.0.0.5:6379/0\"\n").unwrap();
        let cluster = config.cluster.unwrap();
        assert_eq!(cluster.key_prefix, "hookgate:");
        assert_eq!(cluster.node, crate::cluster::ClusterSettings::host_name());
        assert_eq!((cluster.call_timeout, cluster.lease), (Duration::from_millis(50), Duration::from_secs(15)));
        assert!(cluster.password.is_none() && cluster.encryption_key.is_none());

        std::fs::write(dir.path().join("redis.pass"), "s3cret-pass\n").unwrap();
        std::fs::write(dir.path().join("cluster.key"), "0123456789abcdef0123456789abcdef\n").unwrap();
        let full = "redis = \"rediss://redis.internal:6380/2\"\npassword_file = \"redis.pass\"\nkey_prefix = \"shop:\"\n\
                    node = \"edge-1\"\ncall_timeout = \"20ms\"\nlease = \"5s\"\nencryption_key_file = \"cluster.key\"\n";
        let config = load(dir.path(), full).unwrap();
        assert!(!format!("{config:?}").contains("s3cret"), "the password never shows in Debug output");
        let cluster = config.cluster.unwrap();
        assert!(cluster.password.unwrap().matches(b"s3cret-pass"));
        assert_eq!((cluster.key_prefix.as_str(), cluster.node.as_str()), ("shop:", "edge-1"));
        assert_eq!((cluster.call_timeout, cluster.lease), (Duration::from_millis(20), Duration::from_secs(5)));
        assert_eq!(cluster.redis.as_str(), "rediss://redis.internal:6380/2");
    }

    #[test]
    fn bad_values_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("redis = \"redis://:hunter2@10.0.0.5:6379/0\"\n", "cluster.redis", "password_file"),
            ("redis = \"http://10.0.0.5:6379\"\n", "cluster.redis", "redis:// or rediss://"),
            ("redis = \"redis://a:6379\"\nnode = \"edge 1\"\n", "cluster.node", "without '#' or spaces"),
            ("redis = \"redis://a:6379\"\nlease = \"500ms\"\n", "cluster.lease", "at least 1s"),
            ("redis = \"redis://a:6379\"\ncall_timeout = \"0s\"\n", "cluster.call_timeout", "above 0"),
            ("redis = \"redis://a:6379\"\npassword_file = \"missing\"\n", "cluster.password_file", "missing"),
            ("redis = \"redis://a:6379\"\nnodes = \"x\"\n", "nodes", "unknown"),
        ];
        for (table, key, says) in cases {
            let error = load(dir.path(), table).expect_err(table);
            assert!(error.contains(key) && error.contains(says), "{table}: {error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
        std::fs::write(dir.path().join("short.key"), "too-short\n").unwrap();
        let error = load(dir.path(), "redis = \"redis://a:6379\"\nencryption_key_file = \"short.key\"\n").unwrap_err();
        assert!(error.contains("cluster.encryption_key_file") && error.contains("at least 32"), "{error}");
    }
}

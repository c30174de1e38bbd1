//! The raw serde types that mirror the TOML file key for key.
//!
//! Leaf values (durations, sizes, addresses, CIDRs, methods, regexes) are parsed
//! while deserializing, so a bad value fails with its key path and line already
//! attached. Cross-references (route → upstream) and "exactly one of" rules are
//! checked later, in `config::validate`. Nothing here is used past load time.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::cidr::Cidr;
use crate::guards::RateKey;
use crate::guards::dedupe::KeySource;
use crate::spool::{StoreMode, StoreOrder};
use crate::verify::{Encoding, VerifyMode};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub listen: RawListen,
    pub admin: Option<RawAdmin>,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub runtime: RawRuntime,
    #[serde(default)]
    pub upstreams: IndexMap<String, RawUpstream>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    pub default: Option<RawAction>,
    /// Named CIDR sets for `allow_from`.
    #[serde(default)]
    pub sets: IndexMap<String, RawSet>,
    pub telegram: Option<RawTelegram>,
    pub spool: Option<RawSpool>,
    pub cluster: Option<RawCluster>,
}

/// `[cluster]`: the Redis several hosts share.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub redis: String,
    pub password_file: Option<String>,
    pub key_prefix: Option<String>,
    pub node: Option<String>,
    pub call_timeout: Option<Parsed<Dur>>,
    pub lease: Option<Parsed<Dur>>,
    pub encryption_key_file: Option<String>,
}

/// `[spool]`: where kept requests live.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpool {
    pub dir: Option<String>,
    pub max_bytes: Option<Parsed<Size>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelegram {
    pub bot_token_file: String,
    pub public_url: String,
    pub route: String,
    pub secret_header_from_route: Option<bool>,
    pub xboard_access_token: Option<bool>,
    pub api_url: Option<String>,
    pub allowed_updates: Option<Vec<String>>,
    pub max_connections: Option<u32>,
    pub monitor_interval: Option<Parsed<Dur>>,
    pub repair: Option<bool>,
    pub repair_gap: Option<Parsed<Dur>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSet {
    pub cidrs: Vec<Parsed<Cidr>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListen {
    #[serde(default)]
    pub addrs: Vec<SocketAddr>,
    /// CIDRs and set names, like `allow_from`.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Expect a PROXY protocol (v1 or v2) header from trusted peers.
    pub proxy_protocol: Option<bool>,
    pub tls: Option<RawTls>,
    pub redirect: Option<RawRedirect>,
}

/// `[listen.tls]`: HTTPS listeners.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    #[serde(default)]
    pub addrs: Vec<SocketAddr>,
    #[serde(default)]
    pub certificates: Vec<RawCertificate>,
    pub handshake_timeout: Option<Parsed<Dur>>,
    pub http2: Option<bool>,
    pub max_concurrent_streams: Option<u32>,
    pub acme: Option<RawAcme>,
}

/// `[listen.tls.acme]`: certificates obtained and renewed automatically.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAcme {
    pub domains: Vec<String>,
    pub contact: Option<String>,
    pub directory: Option<String>,
    pub cache_dir: Option<String>,
    pub challenge: Option<String>,
    pub ca_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCertificate {
    pub cert_file: String,
    pub key_file: String,
}

/// `[listen.redirect]`: plain-HTTP listeners that send clients to HTTPS.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedirect {
    pub addrs: Vec<SocketAddr>,
    #[serde(default)]
    pub exempt: Vec<String>,
    pub https_port: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub addr: Option<SocketAddr>,
    pub token_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub header_timeout: Option<Parsed<Dur>>,
    pub idle_timeout: Option<Parsed<Dur>>,
    pub body_timeout: Option<Parsed<Dur>>,
    pub send_timeout: Option<Parsed<Dur>>,
    pub max_header_bytes: Option<Parsed<Size>>,
    pub max_uri_bytes: Option<Parsed<Size>>,
    pub max_headers: Option<usize>,
    pub max_body: Option<Parsed<Size>>,
    pub max_connections: Option<usize>,
    pub shutdown_grace: Option<Parsed<Dur>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub format: Option<LogFormat>,
    pub level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuntime {
    pub workers: Option<usize>,
}

/// How log lines are written. `text` is for people, `json` for collectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub url: String,
    pub connect_timeout: Option<Parsed<Dur>>,
    pub response_timeout: Option<Parsed<Dur>>,
    pub host_header: Option<HostHeader>,
    pub tls_ca_file: Option<String>,
    pub tls_server_name: Option<String>,
    pub tls_insecure_skip_verify: Option<bool>,
    pub http2: Option<bool>,
    pub max_idle: Option<usize>,
    pub idle_timeout: Option<Parsed<Dur>>,
}

/// Which `Host` the upstream sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostHeader {
    /// The client's `Host`, unchanged: virtual hosting on the upstream keeps working.
    #[default]
    Preserve,
    /// The authority of the upstream's `url`: for upstreams that only answer to their own name.
    Upstream,
}

impl HostHeader {
    /// As the file writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            HostHeader::Preserve => "preserve",
            HostHeader::Upstream => "upstream",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: String,
    pub host: Option<String>,
    pub path: Option<String>,
    pub path_prefix: Option<String>,
    pub path_regex: Option<Parsed<Pattern>>,
    pub methods: Option<Vec<Parsed<Method>>>,
    pub headers: Option<BTreeMap<String, String>>,
    pub query: Option<BTreeMap<String, String>>,
    pub upstream: Option<String>,
    pub respond: Option<RawRespond>,
    pub allow_from: Option<Vec<String>>,
    pub secret_header: Option<RawSecretHeader>,
    pub max_body: Option<Parsed<Size>>,
    pub rate_limit: Option<RawRateLimit>,
    pub max_in_flight: Option<usize>,
    pub dedupe: Option<RawDedupe>,
    pub store: Option<RawStore>,
    pub verify: Option<RawVerify>,
}

/// A route's `verify = { scheme = "epay_md5", secret_file = "secrets/epay.key" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVerify {
    /// One of `verify::Scheme::NAMES`; a string, so an unknown one is named with the list.
    pub scheme: String,
    pub secret_file: Option<String>,
    pub secret_files: Option<Vec<String>>,
    pub public_key_file: Option<String>,
    pub tolerance: Option<Parsed<Dur>>,
    pub mode: Option<VerifyMode>,
    /// `hmac_sha256` only: where the signature is, how it is written, what precedes it.
    pub header: Option<String>,
    pub encoding: Option<Encoding>,
    pub prefix: Option<String>,
}

/// A route's `store = { mode = "fallback", ack = 200, order = "telegram_chat", expire = "24h" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub mode: StoreMode,
    pub ack: Option<u16>,
    pub order: Option<StoreOrder>,
    pub expire: Option<Parsed<Dur>>,
    pub concurrency: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDedupe {
    /// What identifies a repeat: `telegram_update_id`, `json:/pointer`,
    /// `form:NAME`, `query:NAME` or `header:NAME` (parsed, with its line).
    pub key: Parsed<KeySource>,
    pub window: Option<Parsed<Dur>>,
    pub max_keys: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecretHeader {
    pub name: String,
    /// Read at load and reload; relative paths are relative to the config file.
    pub value_file: String,
    pub strip: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub per_second: f64,
    pub burst: Option<u32>,
    pub key: Option<RateKey>,
    pub max_keys: Option<usize>,
}

/// `[default]`: `upstream = "name"` or `respond = { ... }`; exactly one is checked in validation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAction {
    pub upstream: Option<String>,
    pub respond: Option<RawRespond>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRespond {
    pub status: u16,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// A value parsed from a TOML string by `FromStr`, keeping the parse error as
/// the serde error so it is reported with its key path and line.
#[derive(Debug, Clone)]
pub struct Parsed<T>(pub T);

impl<'de, T> Deserialize<'de> for Parsed<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map(Parsed).map_err(de::Error::custom)
    }
}

/// A value that does not parse; the message says what to write instead.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(String);

/// A duration written like `"750ms"`, `"10s"` or `"5m"`.
#[derive(Debug, Clone, Copy)]
pub struct Dur(pub Duration);

impl FromStr for Dur {
    type Err = InvalidValue;
    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        if text.trim() == "0" {
            return Ok(Dur(Duration::ZERO));
        }
        humantime::parse_duration(text).map(Dur).map_err(|e| {
            InvalidValue(format!("invalid duration {text:?} ({e}); write e.g. \"750ms\", \"10s\" or \"5m\""))
        })
    }
}

/// A size written like `"64KiB"` or `"10MiB"` (or a plain number of bytes).
#[derive(Debug, Clone, Copy)]
pub struct Size(pub u64);

impl FromStr for Size {
    type Err = InvalidValue;
    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        text.parse::<bytesize::ByteSize>()
            .map(|size| Size(size.as_u64()))
            .map_err(|_| InvalidValue(format!("invalid size {text:?}; write e.g. \"64KiB\" or \"10MiB\"")))
    }
}

/// A duration as the file would write it: `"10s"`, `"10m"`, `"1s 500ms"`.
pub fn duration_text(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// A size as the file would write it: `"10MiB"`, `"64KiB"`, or bytes.
pub fn size_text(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    match UNITS.iter().find(|(unit, _)| bytes > 0 && bytes.is_multiple_of(*unit)) {
        Some((unit, name)) => format!("{}{name}", bytes / unit),
        None => bytes.to_string(),
    }
}

/// An HTTP method token, normalised to upper case.
#[derive(Debug, Clone)]
pub struct Method(pub http::Method);

impl FromStr for Method {
    type Err = InvalidValue;
    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        http::Method::from_bytes(text.to_ascii_uppercase().as_bytes())
            .map(Method)
            .map_err(|_| InvalidValue(format!("invalid method {text:?}")))
    }
}

/// A compiled `path_regex`.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::Regex);

impl FromStr for Pattern {
    type Err = InvalidValue;
    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        regex::Regex::new(text).map(Pattern).map_err(|e| InvalidValue(format!("invalid regex: {e}")))
    }
}

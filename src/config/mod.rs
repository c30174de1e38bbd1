//! Reads the TOML route file into a validated [`Config`].
//!
//! Two stages: `raw` mirrors the file for serde; `validate` checks what serde
//! cannot (cross-references, "exactly one of", canonical paths) and builds the
//! types defined here, and the route table (`crate::routes`) with its guards
//! (`crate::guards`), which the daemon runs on, so an invalid state cannot
//! exist past load time. Every error names the file, the line and the key path.
//! Tables with rules of their own are checked in files of their own (`guards`,
//! `tls`, `telegram`, `upstreams`), and secret files are read by `credentials`.

mod cidr;
mod cluster;
mod credentials;
mod guards;
mod hints;
mod listen_addrs;
mod locate;
mod raw;
mod respond;
mod source;
mod store;
mod syntax;
mod telegram;
mod tls;
mod upstreams;
mod validate;
mod verify;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http::uri::{Authority, Scheme};

use crate::routes::{RouteTable, prefix_matches};

pub use guards::{TELEGRAM, guards_as_written};
pub use locate::Step;
use raw::RawConfig;
pub use raw::{HostHeader, LogFormat, duration_text};
pub use telegram::{BotToken, TelegramConfig};

/// Where the daemon looks when neither `-c` nor `HOOKGATE_CONFIG` is given.
pub const DEFAULT_PATH: &str = "/etc/hookgate/hookgate.toml";

/// A fully validated configuration.
#[derive(Debug)]
pub struct Config {
    pub listen: Listen,
    /// `[admin] addr`; `None` when there is no `[admin]` table.
    pub admin: Option<SocketAddr>,
    /// `[admin] token_file`: every admin endpoint but `/healthz` then needs
    /// `Authorization: Bearer <token>`. Required off loopback.
    pub admin_token: Option<crate::secret::Secret>,
    pub limits: std::sync::Arc<Limits>,
    pub log: Log,
    /// `[runtime] workers`: threads serving requests; set at start-up only.
    pub workers: usize,
    /// In file order; routes refer to them by index.
    pub upstreams: Vec<Upstream>,
    pub routes: RouteTable,
    /// `[telegram]`: webhook control and monitoring.
    pub telegram: Option<telegram::TelegramConfig>,
    /// `[spool]`: where routes with `store` keep their requests.
    pub spool: crate::spool::SpoolSettings,
    /// `[cluster]`: the Redis several hosts share; read at start-up only.
    pub cluster: Option<crate::cluster::ClusterSettings>,
    /// Secret files its group or others may read: `check` warns about them.
    pub loose_secret_files: Vec<std::path::PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Listen {
    pub addrs: Vec<SocketAddr>,
    /// Peers whose `X-Forwarded-*` headers (and, for Cloudflare's addresses,
    /// `CF-Connecting-IP`) are believed.
    pub trusted_proxies: crate::client_ip::TrustedProxies,
    /// `trusted_proxies` as written (CIDRs and set names), for `check`.
    pub trusted_proxy_names: Vec<String>,
    /// Trusted peers send a PROXY protocol header first.
    pub proxy_protocol: bool,
    pub tls: Option<TlsListen>,
    pub redirect: Option<Redirect>,
}

/// `[listen.tls]`, with its certificates loaded and checked.
#[derive(Debug, Clone)]
pub struct TlsListen {
    pub addrs: Vec<SocketAddr>,
    /// From `certificates`: each `{ cert_file, key_file }`.
    pub certificates: Vec<crate::tls::LoadedCert>,
    /// From `[listen.tls.acme]`.
    pub acme: Option<std::sync::Arc<crate::tls::AcmeStore>>,
    pub server_config: std::sync::Arc<rustls::ServerConfig>,
    /// The whole TLS handshake must finish within this.
    pub handshake_timeout: Duration,
    pub http2: bool,
    pub max_concurrent_streams: u32,
}

/// `[listen.redirect]`: 308 to HTTPS, except `exempt` path prefixes.
#[derive(Debug, Clone)]
pub struct Redirect {
    pub addrs: Vec<SocketAddr>,
    /// Segment-aware path prefixes served as on a plain listener.
    pub exempt: Vec<String>,
    /// Port in the `Location`; `None` for 443.
    pub https_port: Option<u16>,
}

impl TlsListen {
    /// Every certificate served now: the files', then ACME's (if it has one yet).
    pub fn served_certificates(&self) -> Vec<crate::tls::LoadedCert> {
        let acme = self.acme.as_ref().and_then(|store| store.current());
        self.certificates.iter().cloned().chain(acme.map(|cert| (*cert).clone())).collect()
    }
}

impl Redirect {
    pub fn is_exempt(&self, path: &str) -> bool {
        self.exempt.iter().any(|prefix| prefix_matches(prefix, path))
    }
}

/// Server-wide limits. Every field has a default chosen for an internet-facing host.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The whole request head must arrive within this, counted from its first byte.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request in progress is closed after this.
    pub idle_timeout: Duration,
    /// The longest pause allowed between two reads of a request body.
    pub body_timeout: Duration,
    /// The longest a response may go without any byte of it reaching the
    /// client's socket (the client stopped reading) before the connection is cut.
    pub send_timeout: Duration,
    /// Largest request head (request line plus headers); larger gets 431.
    pub max_header_bytes: usize,
    /// Longest request target; longer gets 414.
    pub max_uri_bytes: usize,
    /// Most header lines in one request; more gets 431.
    pub max_headers: usize,
    /// Largest request body; larger gets 413.
    pub max_body: u64,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// How long in-flight requests may run on after SIGTERM.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(60),
            max_header_bytes: 32 * 1024,
            max_uri_bytes: 8 * 1024,
            max_headers: 100,
            max_body: 10 * 1024 * 1024,
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Log {
    pub format: LogFormat,
    /// A `tracing` filter directive such as `info` or `hookgate=debug`.
    pub level: String,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: std::sync::Arc<str>,
    pub url: String,
    pub scheme: Scheme,
    pub authority: Authority,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub host_header: HostHeader,
    /// Idle keep-alive connections kept per worker (like nginx's `keepalive`).
    pub max_idle: usize,
    /// An idle pooled connection unused this long is closed.
    pub idle_timeout: Duration,
    /// For https upstreams: how the certificate is checked, the name sent in
    /// SNI and checked against it, and whether `h2` is offered.
    pub tls: Option<UpstreamTls>,
}

#[derive(Debug, Clone)]
pub struct UpstreamTls {
    pub trust: crate::tls::UpstreamTrust,
    /// Built (CA file read) once, at load time.
    pub client_config: std::sync::Arc<rustls::ClientConfig>,
    pub server_name: rustls::pki_types::ServerName<'static>,
    pub http2: bool,
}

/// A config that failed to load: every problem found, each with its place,
/// one line each (`file:line: key.path: message`).
#[derive(Debug, thiserror::Error)]
#[error("{}", self.lines())]
pub struct ConfigError {
    pub file: String,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone)]
pub struct Problem {
    pub line: Option<usize>,
    pub path: String,
    pub message: String,
}

impl ConfigError {
    fn lines(&self) -> String {
        let mut out = String::new();
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&self.file);
            if let Some(line) = p.line {
                let _ = write!(out, ":{line}");
            }
            if !p.path.is_empty() {
                let _ = write!(out, ": {}", p.path);
            }
            let _ = write!(out, ": {}", p.message);
        }
        out
    }
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::read(path, None)
    }

    /// Reads and validates the file at `path` to serve it: for `run`, and for
    /// `check`, which must refuse what `run` would. On top of [`Config::load`],
    /// the config must give the proxy somewhere to listen: an address in
    /// `[listen] addrs`, `[listen.tls] addrs` or `[listen.redirect] addrs`, or
    /// sockets systemd passes this process (socket activation, see
    /// [`systemd_proxy_sockets`]). Without them `run` could not serve.
    ///
    /// systemd passes its sockets to `ExecStart=` only, so an `ExecStartPre=`
    /// check does not see them: a config meant for socket activation keeps its
    /// `[listen] addrs`, which are ignored while systemd passes sockets.
    /// Reloads use [`Config::load`]: the running daemon keeps the sockets it has.
    pub fn load_to_serve(path: &Path) -> Result<Config, ConfigError> {
        Config::read(path, Some(systemd_proxy_sockets()))
    }

    fn read(path: &Path, systemd_sockets: Option<usize>) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let source = source::read(path).map_err(|message| ConfigError {
            file: file.clone(),
            problems: vec![Problem { line: None, path: String::new(), message }],
        })?;
        Config::parse(&source, &file, systemd_sockets)
    }

    /// Parses and validates `source`; `file` is only used to name it in errors.
    pub fn from_toml_str(source: &str, file: &str) -> Result<Config, ConfigError> {
        Config::parse(source, file, None)
    }

    /// `[admin]`'s address and token alone, from a file that may be invalid
    /// elsewhere: what `hookgate status` needs to ask the daemon, which
    /// matters most when a reload of that file has just failed. `(None,
    /// None)` without `[admin]`.
    pub fn load_admin(path: &Path) -> Result<(Option<SocketAddr>, Option<crate::secret::Secret>), ConfigError> {
        #[derive(serde::Deserialize)]
        struct AdminOnly {
            admin: Option<raw::RawAdmin>,
        }
        let file = path.display().to_string();
        let fail = |message: String| ConfigError {
            file: file.clone(),
            problems: vec![Problem { line: None, path: String::new(), message }],
        };
        let source = source::read(path).map_err(fail)?;
        source::check_nesting(&source).map_err(|p| fail(p.message))?;
        let raw: AdminOnly = toml::from_str(&source).map_err(|e| fail(e.message().to_string()))?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        let mut checker = validate::Checker::new(&source, base_dir);
        let access = raw.admin.map_or((None, None), |admin| checker.admin(admin));
        match checker.problems.is_empty() {
            true => Ok(access),
            false => Err(ConfigError { file, problems: checker.problems }),
        }
    }

    /// `systemd_sockets`: when serving, how many proxy sockets systemd passes
    /// (a config without listen addresses needs at least one); `None` otherwise.
    fn parse(source: &str, file: &str, systemd_sockets: Option<usize>) -> Result<Config, ConfigError> {
        let fail = |problems| ConfigError { file: file.to_string(), problems };
        let raw = parse_raw(source).map_err(|p| fail(vec![p]))?;
        let base_dir = Path::new(file).parent().unwrap_or(Path::new("."));
        let mut checker = validate::Checker::new(source, base_dir);
        checker.systemd_sockets = systemd_sockets;
        let config = checker.config(raw);
        match config {
            Some(config) if checker.problems.is_empty() => Ok(config),
            _ => Err(fail(checker.problems)),
        }
    }
}

/// How many sockets systemd passes this process to serve as proxy listeners:
/// those `lifecycle` serves after `systemd::take_activated` takes them, read
/// here without taking them.
pub fn systemd_proxy_sockets() -> usize {
    let var = |name| std::env::var(name).ok();
    proxy_sockets(var("LISTEN_FDS"), var("LISTEN_PID"), var("LISTEN_FDNAMES"), std::process::id())
}

/// `LISTEN_FDS` sockets (when `LISTEN_PID` is unset or names `pid`, as the
/// `listenfd` crate takes them), less the one named `admin`, which serves the
/// admin endpoints instead.
fn proxy_sockets(fds: Option<String>, listen_pid: Option<String>, names: Option<String>, pid: u32) -> usize {
    let Some(count) = fds.and_then(|n| n.parse::<usize>().ok()) else { return 0 };
    let ours = match listen_pid.as_deref() {
        None | Some("") => true,
        Some(listen_pid) => listen_pid.parse() == Ok(pid),
    };
    if !ours {
        return 0;
    }
    let names = names.unwrap_or_default();
    let mut names = names.split(':');
    (0..count).filter(|_| names.next() != Some("admin")).count()
}

/// The file as serde reads it. A syntax error gets the key path it is in
/// (found by `syntax`, as the file did not parse), and a syntax or data error
/// words that say what to write (`hints`).
fn parse_raw(source: &str) -> Result<RawConfig, Problem> {
    source::check_nesting(source)?;
    let deserializer = toml::Deserializer::parse(source).map_err(|e| {
        let message = e.message().trim();
        match e.span() {
            Some(span) => {
                let spot = syntax::spot(source, span.start);
                Problem {
                    line: Some(locate::line_at(source, span.start)),
                    path: locate::render(&spot.path),
                    message: hints::syntax(message, &spot),
                }
            }
            None => Problem { line: None, path: String::new(), message: message.to_string() },
        }
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path: Vec<Step> = e
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
                serde_path_to_error::Segment::Map { key } => Some(Step::Key(key.clone())),
                serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        let inner = e.inner();
        Problem {
            line: inner.span().map(|s| locate::line_at(source, s.start)),
            path: locate::render(&path),
            message: hints::data(&path, inner.message().trim()),
        }
    })
}

#[cfg(test)]
mod served_tests;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod tests;

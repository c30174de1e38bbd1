//! Reads the TOML route file into a validated [`Config`].
//!
//! Two stages: `raw` mirrors the file for serde; this module checks what serde
//! cannot (cross-references, "exactly one of", canonical paths) and builds the
//! types the daemon runs on, so an invalid state cannot exist past load time.
//! Every error names the file, the line and the key path.

mod locate;
pub mod raw;

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::{HeaderName, HeaderValue, StatusCode};
use ipnet::IpNet;

use crate::canonical;
use crate::routes::{Action, HostMatch, LocalResponse, Matcher, PathMatch, Route, RouteTable};
pub use locate::Step;
pub use raw::{HostHeader, LogFormat};
use raw::{RawConfig, RawRespond, RawRoute, RawUpstream};

/// Where the daemon looks when neither `-c` nor `HOOKGATE_CONFIG` is given.
pub const DEFAULT_PATH: &str = "/etc/hookgate/hookgate.toml";

/// A fully validated configuration.
#[derive(Debug)]
pub struct Config {
    pub listen: Listen,
    /// `[admin] addr`; `None` when there is no `[admin]` table.
    pub admin: Option<SocketAddr>,
    pub limits: Limits,
    pub log: Log,
    /// In file order; routes refer to them by index.
    pub upstreams: Vec<Upstream>,
    pub routes: RouteTable,
}

#[derive(Debug, Clone)]
pub struct Listen {
    pub addrs: Vec<SocketAddr>,
    /// Peers whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
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
}

/// A config that failed to load: every problem found, each with its place.
#[derive(Debug)]
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

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file)?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
            }
            if !p.path.is_empty() {
                write!(f, ": {}", p.path)?;
            }
            write!(f, ": {}", p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            problems: vec![Problem { line: None, path: String::new(), message: format!("cannot read: {e}") }],
        })?;
        Config::from_toml_str(&source, &file)
    }

    /// Parses and validates `source`; `file` is only used to name it in errors.
    pub fn from_toml_str(source: &str, file: &str) -> Result<Config, ConfigError> {
        let fail = |problems| ConfigError { file: file.to_string(), problems };
        let raw = parse_raw(source).map_err(|p| fail(vec![p]))?;
        let mut checker = Checker { source, problems: Vec::new() };
        let config = checker.config(raw);
        match config {
            Some(config) if checker.problems.is_empty() => Ok(config),
            _ => Err(fail(checker.problems)),
        }
    }
}

fn parse_raw(source: &str) -> Result<RawConfig, Problem> {
    let deserializer = toml::Deserializer::parse(source).map_err(|e| Problem {
        line: e.span().map(|s| locate::line_at(source, s.start)),
        path: String::new(),
        message: e.message().trim().to_string(),
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner();
        Problem {
            line: inner.span().map(|s| locate::line_at(source, s.start)),
            path: if path == "." { String::new() } else { path },
            message: inner.message().trim().to_string(),
        }
    })
}

/// Collects validation problems, each located in the source.
struct Checker<'a> {
    source: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, path: &[Step], message: impl Into<String>) {
        self.problems.push(Problem {
            line: locate::line_of(self.source, path),
            path: locate::render(path),
            message: message.into(),
        });
    }

    fn config(&mut self, raw: RawConfig) -> Option<Config> {
        let key = |k: &str| Step::Key(k.to_string());
        let listen = Listen {
            addrs: raw.listen.addrs,
            trusted_proxies: raw.listen.trusted_proxies.into_iter().map(|c| c.0.0).collect(),
        };
        let admin = raw.admin.map(|a| a.addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9901))));
        let limits = self.limits(raw.limits);
        let log = Log {
            format: raw.log.format.unwrap_or_default(),
            level: raw.log.level.unwrap_or_else(|| "info".to_string()),
        };
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log.level) {
            self.problem(&[key("log"), key("level")], format!("invalid level {:?}: {e}", log.level));
        }

        let upstreams: Vec<Upstream> =
            raw.upstreams.into_iter().filter_map(|(name, up)| self.upstream(name, up)).collect();
        let names: Vec<&str> = upstreams.iter().map(|u| &*u.name).collect();

        let mut routes = Vec::with_capacity(raw.routes.len());
        for (i, route) in raw.routes.into_iter().enumerate() {
            let at = [key("routes"), Step::Index(i)];
            if routes.iter().any(|r: &Route| *r.name == *route.name) {
                self.problem(
                    &[at[0].clone(), at[1].clone(), key("name")],
                    format!("duplicate route name {:?}", route.name),
                );
            }
            if let Some(route) = self.route(&at, route, &names) {
                routes.push(route);
            }
        }
        let default = match raw.default {
            Some(action) => self.action(&[key("default")], action.upstream, action.respond, &names)?,
            None => Action::Respond(LocalResponse::not_found()),
        };
        let table = RouteTable::new(routes, default);
        Some(Config { listen, admin, limits, log, upstreams, routes: table })
    }

    fn limits(&mut self, raw: raw::RawLimits) -> Limits {
        let d = Limits::default();
        let limits = Limits {
            header_timeout: raw.header_timeout.map_or(d.header_timeout, |v| v.0.0),
            idle_timeout: raw.idle_timeout.map_or(d.idle_timeout, |v| v.0.0),
            body_timeout: raw.body_timeout.map_or(d.body_timeout, |v| v.0.0),
            max_header_bytes: raw.max_header_bytes.map_or(d.max_header_bytes, |v| v.0.0 as usize),
            max_uri_bytes: raw.max_uri_bytes.map_or(d.max_uri_bytes, |v| v.0.0 as usize),
            max_headers: raw.max_headers.unwrap_or(d.max_headers),
            max_body: raw.max_body.map_or(d.max_body, |v| v.0.0),
            max_connections: raw.max_connections.unwrap_or(d.max_connections),
            shutdown_grace: raw.shutdown_grace.map_or(d.shutdown_grace, |v| v.0.0),
        };
        let at = |k: &str| [Step::Key("limits".into()), Step::Key(k.into())];
        for (name, value) in [
            ("header_timeout", limits.header_timeout),
            ("idle_timeout", limits.idle_timeout),
            ("body_timeout", limits.body_timeout),
        ] {
            if value.is_zero() {
                self.problem(&at(name), "must be greater than zero");
            }
        }
        if limits.max_header_bytes < 1024 {
            self.problem(
                &at("max_header_bytes"),
                format!("must be at least 1KiB, got {} bytes", limits.max_header_bytes),
            );
        }
        if limits.max_connections == 0 {
            self.problem(&at("max_connections"), "must be at least 1");
        }
        if limits.max_headers == 0 {
            self.problem(&at("max_headers"), "must be at least 1");
        }
        limits
    }

    fn upstream(&mut self, name: String, raw: RawUpstream) -> Option<Upstream> {
        let at = |k: &str| [Step::Key("upstreams".into()), Step::Key(name.clone()), Step::Key(k.into())];
        let uri: http::Uri = match raw.url.parse() {
            Ok(uri) => uri,
            Err(e) => {
                self.problem(&at("url"), format!("invalid URL {:?}: {e}", raw.url));
                return None;
            }
        };
        let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned()) else {
            self.problem(&at("url"), format!("{:?} must be an absolute URL like \"http://127.0.0.1:3000\"", raw.url));
            return None;
        };
        if scheme != Scheme::HTTP {
            self.problem(&at("url"), format!("scheme {scheme:?} is not supported; use http://"));
            return None;
        }
        if uri.path() != "/" || uri.query().is_some() || authority.as_str().contains('@') {
            self.problem(&at("url"), format!("{:?} must be scheme://host[:port] with no path, query or user", raw.url));
            return None;
        }
        Some(Upstream {
            name: name.as_str().into(),
            url: raw.url,
            scheme,
            authority,
            connect_timeout: raw.connect_timeout.map_or(Duration::from_secs(3), |v| v.0.0),
            response_timeout: raw.response_timeout.map_or(Duration::from_secs(60), |v| v.0.0),
            host_header: raw.host_header.unwrap_or_default(),
        })
    }

    fn route(&mut self, at: &[Step], raw: RawRoute, upstreams: &[&str]) -> Option<Route> {
        let sub = |k: &str| {
            let mut path = at.to_vec();
            path.push(Step::Key(k.to_string()));
            path
        };
        let before = self.problems.len();
        let host = raw.host.as_deref().and_then(|h| match HostMatch::parse(h) {
            Ok(m) => Some(m),
            Err(e) => {
                self.problem(&sub("host"), e);
                None
            }
        });
        let paths = [raw.path.is_some(), raw.path_prefix.is_some(), raw.path_regex.is_some()];
        if paths.iter().filter(|&&set| set).count() > 1 {
            self.problem(at, "set only one of path, path_prefix and path_regex");
        }
        let path = if let Some(p) = raw.path {
            self.config_path(&sub("path"), &p).map(PathMatch::Exact)
        } else if let Some(p) = raw.path_prefix {
            self.config_path(&sub("path_prefix"), &p).map(|p| PathMatch::prefix(&p))
        } else {
            raw.path_regex.map(|p| PathMatch::Regex(p.0.0))
        };
        let methods = raw.methods.map(|m| m.into_iter().map(|m| m.0.0).collect());
        let headers = raw.headers.map(|h| self.header_matchers(&sub("headers"), h)).unwrap_or_default();
        let query = raw.query.map(|q| q.into_iter().collect()).unwrap_or_default();
        let matcher = Matcher { host, path, methods, headers, query };
        if matcher.is_empty() {
            self.problem(
                at,
                "a route needs at least one match key (host, path, path_prefix, path_regex, methods, headers or query)",
            );
        }
        let action = self.action(at, raw.upstream, raw.respond, upstreams);
        if self.problems.len() > before {
            return None;
        }
        Some(Route { name: raw.name.into(), matcher, action: action? })
    }

    /// A configured path must already be canonical, or it could never match.
    fn config_path(&mut self, at: &[Step], path: &str) -> Option<String> {
        if path.contains(';') {
            self.problem(at, format!("{path:?}: ';' starts path parameters, which routing ignores"));
            return None;
        }
        match canonical::canonicalize(path) {
            Ok(c) if c.as_str() == path => Some(path.to_string()),
            Ok(c) => {
                self.problem(at, format!("{path:?} is not in canonical form; write {:?}", c.as_str()));
                None
            }
            Err(e) => {
                self.problem(at, format!("{path:?}: {e}"));
                None
            }
        }
    }

    fn header_matchers(
        &mut self,
        at: &[Step],
        raw: std::collections::BTreeMap<String, String>,
    ) -> Vec<(HeaderName, Option<HeaderValue>)> {
        let mut out = Vec::new();
        for (name, value) in raw {
            let mut here = at.to_vec();
            here.push(Step::Key(name.clone()));
            let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
                self.problem(&here, format!("invalid header name {name:?}"));
                continue;
            };
            if value == "*" {
                out.push((header, None));
            } else if let Ok(v) = HeaderValue::from_str(&value) {
                out.push((header, Some(v)));
            } else {
                self.problem(&here, format!("invalid header value {value:?}"));
            }
        }
        out
    }

    fn action(
        &mut self,
        at: &[Step],
        upstream: Option<String>,
        respond: Option<RawRespond>,
        upstreams: &[&str],
    ) -> Option<Action> {
        let sub = |k: &str| {
            let mut path = at.to_vec();
            path.push(Step::Key(k.to_string()));
            path
        };
        match (upstream, respond) {
            (Some(_), Some(_)) => {
                self.problem(at, "set exactly one of upstream and respond, not both");
                None
            }
            (None, None) => {
                self.problem(at, "needs an action: upstream = \"name\" or respond = { status = ... }");
                None
            }
            (Some(name), None) => match upstreams.iter().position(|u| *u == name) {
                Some(index) => Some(Action::Upstream(index)),
                None => {
                    self.problem(
                        &sub("upstream"),
                        format!("no upstream named {name:?} (defined: {})", upstreams.join(", ")),
                    );
                    None
                }
            },
            (None, Some(respond)) => self.respond(&sub("respond"), respond).map(Action::Respond),
        }
    }

    fn respond(&mut self, at: &[Step], raw: RawRespond) -> Option<LocalResponse> {
        let sub = |k: &str| {
            let mut path = at.to_vec();
            path.push(Step::Key(k.to_string()));
            path
        };
        let status = match StatusCode::from_u16(raw.status) {
            Ok(s) if s.as_u16() >= 200 => s,
            _ => {
                self.problem(&sub("status"), format!("status must be 200-599, got {}", raw.status));
                return None;
            }
        };
        let mut headers = http::HeaderMap::new();
        for (name, value) in raw.headers {
            let mut here = sub("headers");
            here.push(Step::Key(name.clone()));
            match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
                (Ok(n), Ok(v)) => {
                    headers.append(n, v);
                }
                _ => self.problem(&here, format!("invalid header {name:?}: {value:?}")),
            }
        }
        Some(LocalResponse::new(status, raw.body, headers))
    }
}

#[cfg(test)]
mod tests;

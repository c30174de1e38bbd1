//! Validation: from the raw serde types to the types the daemon runs on.
//!
//! Checks what serde cannot: cross-references (route → upstream), "exactly
//! one of" rules, canonical paths and value ranges. Every problem is collected
//! with its key path and line, so one run of `hookgate check` shows them all.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;

use http::{HeaderName, HeaderValue};
use ipnet::IpNet;

use super::locate::{self, Locator};
use super::raw::{self, RawConfig, RawRespond, RawRoute};
use super::{Config, Limits, Listen, Log, Problem, Step, Upstream};
use crate::canonical;
use crate::routes::{Action, HostMatch, LocalResponse, Matcher, PathMatch, Route, RouteTable};

/// The most `max_connections` or a route's `max_in_flight` may be: far more than a host can hold,
/// and well inside what a semaphore can count (tokio panics past 2^61 permits).
pub(super) const MAX_SLOTS: usize = 10_000_000;

/// One key step of a path.
pub(super) fn key(name: &str) -> Step {
    Step::Key(name.to_string())
}

pub(super) fn child(at: &[Step], key: &str) -> Vec<Step> {
    let mut path = at.to_vec();
    path.push(Step::Key(key.to_string()));
    path
}

/// Named CIDR sets: the built-in `telegram` and `cloudflare` plus `[sets.NAME]`.
pub type Sets = HashMap<String, Vec<IpNet>>;

/// Collects validation problems, each located in the source.
pub struct Checker<'a> {
    locator: Locator<'a>,
    /// Relative file names in the config (secret files) are relative to this.
    base_dir: &'a Path,
    pub problems: Vec<Problem>,
    /// What the file defines, valid or not, so a reference names every choice
    /// and a reference to a definition that failed is not reported again.
    pub(super) defined: Defined,
    /// When the config is loaded to serve it (`run`, `check`): how many proxy
    /// sockets systemd passes, so a config with no listen address is refused
    /// only when they are none, as `run` would. `None` for other loads.
    pub(super) systemd_sockets: Option<usize>,
    /// Secret files others than their owner may read (see `Config::loose_secret_files`).
    pub(super) loose_secret_files: Vec<std::path::PathBuf>,
}

/// The names the file defines. A name in `broken` was defined, but its
/// definition failed and was reported: a reference to it is that same
/// mistake, so it is not reported as undefined too (one error per mistake).
#[derive(Default)]
pub(super) struct Defined {
    /// `[upstreams.NAME]` in file order.
    pub upstreams: Vec<String>,
    /// `[[routes]] name` in file order.
    pub routes: Vec<String>,
    pub broken_upstreams: HashSet<String>,
    pub broken_routes: HashSet<String>,
    pub broken_sets: HashSet<String>,
}

impl<'a> Checker<'a> {
    pub fn new(source: &'a str, base_dir: &'a Path) -> Self {
        Checker {
            locator: Locator::new(source),
            base_dir,
            problems: Vec::new(),
            defined: Defined::default(),
            systemd_sockets: None,
            loose_secret_files: Vec::new(),
        }
    }

    pub(super) fn base_dir(&self) -> &Path {
        self.base_dir
    }

    /// A header name a rule reads from requests. One with `_` is refused:
    /// hookgate drops such request headers (see `http1::head`), so the rule
    /// could never see it.
    pub(super) fn request_header_name(&mut self, at: &[Step], name: &str) -> Option<HeaderName> {
        let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
            self.problem(at, format!("invalid header name {name:?}"));
            return None;
        };
        if name.contains('_') {
            self.problem(at, format!("{name:?}: requests' header names with `_` are dropped (as nginx does), so no rule sees one; use `-`"));
            return None;
        }
        Some(header)
    }

    /// A route's or upstream's name, which the access log, the metrics'
    /// labels, the status page and the CLI print as it is: letters, digits,
    /// `-`, `_` and `.`, and not `-` alone (the metrics' and the log's word
    /// for "no route" and "no upstream").
    fn name(&mut self, at: &[Step], name: &str) {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if name.is_empty() || name == "-" || !name.chars().all(allowed) {
            self.problem(at, format!("name {name:?}: use letters, digits, `-`, `_` and `.` (and not `-` alone)"));
        }
    }

    pub(super) fn problem(&mut self, path: &[Step], message: impl std::fmt::Display) {
        self.problems.push(Problem {
            line: self.locator.line_of(path),
            path: locate::render(path),
            message: message.to_string(),
        });
    }

    pub fn config(&mut self, raw: RawConfig) -> Option<Config> {
        let sets = self.sets(raw.sets);
        let listen = self.listen(raw.listen, &sets);
        let (admin, admin_token) = match raw.admin {
            None => (None, None),
            Some(raw) => self.admin(raw),
        };
        self.listen_clashes(&listen, admin);
        let limits = self.limits(raw.limits);
        let log = self.log(raw.log);
        let mut upstreams: Vec<Upstream> = Vec::with_capacity(raw.upstreams.len());
        for (name, up) in raw.upstreams {
            self.name(&[key("upstreams"), key(&name)], &name);
            self.defined.upstreams.push(name.clone());
            match self.upstream(name.clone(), up) {
                Some(upstream) => upstreams.push(upstream),
                None => {
                    self.defined.broken_upstreams.insert(name);
                }
            }
        }
        let names: Vec<&str> = upstreams.iter().map(|u| &*u.name).collect();
        let table = self.route_table(raw.routes, raw.default, &names, &sets)?;
        let telegram = raw.telegram.and_then(|t| self.telegram(t, &table));
        let workers = self.workers(raw.runtime);
        let spool = self.spool(raw.spool);
        let acme = listen.tls.as_ref().is_some_and(|tls| tls.acme.is_some());
        let cluster = self.cluster(raw.cluster, acme);
        Some(Config {
            listen,
            admin,
            admin_token,
            limits: limits.into(),
            log,
            workers,
            upstreams,
            routes: table,
            telegram,
            spool,
            cluster,
            loose_secret_files: std::mem::take(&mut self.loose_secret_files),
        })
    }

    fn listen(&mut self, raw: raw::RawListen, sets: &Sets) -> Listen {
        // Counted as written, so a [listen.tls] table that fails for its
        // certificates is not also "no listen address".
        let configured = !raw.addrs.is_empty()
            || raw.tls.as_ref().is_some_and(|t| !t.addrs.is_empty())
            || raw.redirect.as_ref().is_some_and(|r| !r.addrs.is_empty());
        if !configured && self.systemd_sockets == Some(0) {
            self.problem(
                &[key("listen"), key("addrs")],
                "no listen address: set [listen] addrs (or [listen.tls] addrs), \
                 or start hookgate with sockets from systemd (socket activation)",
            );
        }
        let trusted = self.cidrs_or_sets(&[key("listen"), key("trusted_proxies")], &raw.trusted_proxies, sets);
        let listen = Listen {
            addrs: raw.addrs,
            trusted_proxies: crate::client_ip::TrustedProxies::new(trusted),
            trusted_proxy_names: raw.trusted_proxies,
            proxy_protocol: raw.proxy_protocol.unwrap_or(false),
            tls: raw.tls.and_then(|t| self.listen_tls(t)),
            redirect: raw.redirect.and_then(|r| self.listen_redirect(r)),
        };
        if listen.proxy_protocol && listen.trusted_proxies.is_empty() {
            self.problem(
                &[key("listen"), key("proxy_protocol")],
                "PROXY headers are only read from trusted_proxies, and none are set",
            );
        }
        listen
    }

    fn log(&mut self, raw: raw::RawLog) -> Log {
        let log =
            Log { format: raw.format.unwrap_or_default(), level: raw.level.unwrap_or_else(|| "info".to_string()) };
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log.level) {
            self.problem(&[key("log"), key("level")], format!("invalid level {:?}: {e}", log.level));
        }
        log
    }

    /// The routes in file order (names unique) and `[default]`; `None` when
    /// the default itself is invalid.
    fn route_table(
        &mut self,
        raw_routes: Vec<RawRoute>,
        raw_default: Option<raw::RawAction>,
        upstreams: &[&str],
        sets: &Sets,
    ) -> Option<RouteTable> {
        let mut routes = Vec::with_capacity(raw_routes.len());
        for (i, route) in raw_routes.into_iter().enumerate() {
            let at = [key("routes"), Step::Index(i)];
            let name = route.name.clone();
            self.name(&child(&at, "name"), &name);
            if self.defined.routes.contains(&name) {
                self.problem(&child(&at, "name"), format!("duplicate route name {name:?}"));
            }
            self.defined.routes.push(name.clone());
            match self.route(&at, route, upstreams, sets) {
                Some(route) => routes.push(route),
                None => {
                    self.defined.broken_routes.insert(name);
                }
            }
        }
        let default = match raw_default {
            Some(action) => self.action(&[key("default")], action.upstream, action.respond, upstreams)?,
            None => Action::Respond(LocalResponse::not_found()),
        };
        Some(RouteTable::new(routes, default))
    }

    fn workers(&mut self, raw: raw::RawRuntime) -> usize {
        let workers = raw.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if workers == 0 || workers > 1024 {
            self.problem(&[key("runtime"), key("workers")], format!("must be 1 to 1024, got {workers}"));
        }
        workers
    }

    fn limits(&mut self, raw: raw::RawLimits) -> Limits {
        let d = Limits::default();
        let limits = Limits {
            header_timeout: raw.header_timeout.map_or(d.header_timeout, |v| v.0.0),
            idle_timeout: raw.idle_timeout.map_or(d.idle_timeout, |v| v.0.0),
            body_timeout: raw.body_timeout.map_or(d.body_timeout, |v| v.0.0),
            send_timeout: raw.send_timeout.map_or(d.send_timeout, |v| v.0.0),
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
            ("send_timeout", limits.send_timeout),
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
        if limits.max_uri_bytes == 0 {
            self.problem(&at("max_uri_bytes"), "must be at least 1 byte (the shortest target, `/`)");
        }
        if !(1..=MAX_SLOTS).contains(&limits.max_connections) {
            self.problem(&at("max_connections"), format!("must be between 1 and {MAX_SLOTS}"));
        }
        if limits.max_headers == 0 {
            self.problem(&at("max_headers"), "must be at least 1");
        }
        limits
    }

    /// `[admin]`: loopback unless a token guards it.
    pub(super) fn admin(&mut self, raw: super::raw::RawAdmin) -> (Option<SocketAddr>, Option<crate::secret::Secret>) {
        let at = [Step::Key("admin".into())];
        let addr = raw.addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9901)));
        let token = raw.token_file.as_deref().and_then(|file| self.secret_file(&child(&at, "token_file"), file));
        if !addr.ip().is_loopback() && raw.token_file.is_none() {
            self.problem(
                &child(&at, "addr"),
                format!("{addr} is not a loopback address: set [admin] token_file so the admin endpoints need a token"),
            );
        }
        (Some(addr), token)
    }

    fn route(&mut self, at: &[Step], mut raw: RawRoute, upstreams: &[&str], sets: &Sets) -> Option<Route> {
        let sub = |k: &str| child(at, k);
        let before = self.problems.len();
        let guards = self.guards(at, &mut raw, sets);
        let before_match_keys = self.problems.len();
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
        if raw.methods.as_ref().is_some_and(Vec::is_empty) {
            self.problem(
                &sub("methods"),
                "an empty list matches no request: list methods, or leave the key out for all",
            );
        }
        let methods = raw.methods.map(|m| m.into_iter().map(|m| m.0.0).collect());
        let headers = raw.headers.map(|h| self.header_matchers(&sub("headers"), h)).unwrap_or_default();
        let query = raw.query.map(|q| q.into_iter().collect()).unwrap_or_default();
        let matcher = Matcher { host, path, methods, headers, query };
        // A match key that failed was reported; the route is not also "without one".
        if matcher.is_empty() && self.problems.len() == before_match_keys {
            self.problem(
                at,
                "a route needs at least one match key (host, path, path_prefix, path_regex, methods, headers or query)",
            );
        }
        let store = raw.store.take().and_then(|store| self.store(at, store));
        let action = self.action(at, raw.upstream, raw.respond, upstreams);
        if self.problems.len() > before {
            return None;
        }
        let action = action?;
        if !guards.is_empty() && matches!(action, Action::Respond(_)) {
            self.problem(at, "guards (allow_from, secret_header, ...) only apply to routes with an upstream");
            return None;
        }
        if store.is_some() && matches!(action, Action::Respond(_)) {
            self.problem(&child(at, "store"), "only a route with an upstream has requests to keep");
            return None;
        }
        Some(Route { name: raw.name.into(), matcher, action, guards, store })
    }

    /// A configured path must already be canonical, or it could never match.
    pub(super) fn config_path(&mut self, at: &[Step], path: &str) -> Option<String> {
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
        raw: BTreeMap<String, String>,
    ) -> Vec<(HeaderName, Option<HeaderValue>)> {
        let mut out = Vec::new();
        for (name, value) in raw {
            let here = child(at, &name);
            let Some(header) = self.request_header_name(&here, &name) else { continue };
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
        let sub = |k: &str| child(at, k);
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
                // Defined, but invalid: that was reported where it is defined.
                None if self.defined.broken_upstreams.contains(&name) => None,
                None => {
                    let defined = self.defined.upstreams.join(", ");
                    self.problem(&sub("upstream"), format!("no upstream named {name:?} (defined: {defined})"));
                    None
                }
            },
            (None, Some(respond)) => self.respond(&sub("respond"), respond).map(Action::Respond),
        }
    }
}

//! The compiled route table: a pure function from a request head to a route.
//!
//! Routes are tried in file order and the first match wins; `[default]` takes
//! the rest. Exact and prefix paths are indexed (see `index`), so selection
//! costs about the same with 10 routes as with 10,000. No IO happens here.

mod explain;
mod index;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

pub use explain::{Explanation, Mismatch, Shadowed};
use index::PathIndex;

/// What a matched route does with the request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Forward to the upstream at this index of `Config::upstreams`.
    Upstream(usize),
    /// Answer from hookgate itself.
    Respond(LocalResponse),
}

/// A response hookgate writes itself (`respond = { status, body, headers }`).
#[derive(Debug, Clone)]
pub struct LocalResponse {
    pub status: StatusCode,
    pub body: Bytes,
    pub headers: HeaderMap,
}

impl LocalResponse {
    pub fn new(status: StatusCode, body: String, headers: HeaderMap) -> Self {
        LocalResponse { status, body: Bytes::from(body), headers }
    }

    /// What `[default]` does when the file has none.
    pub fn not_found() -> Self {
        LocalResponse::new(StatusCode::NOT_FOUND, "no route\n".to_string(), HeaderMap::new())
    }
}

/// A `host` that is neither a name nor `*.` and a name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid host {0:?}; write \"api.example.com\" or \"*.example.com\"")]
pub struct InvalidHost(pub String);

/// `host = "api.example.com"` or `host = "*.example.com"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    Exact(String),
    /// Holds `.example.com`: matches any name ending in it, not `example.com` itself.
    Suffix(String),
}

impl HostMatch {
    pub fn parse(text: &str) -> Result<HostMatch, InvalidHost> {
        let (wild, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let normal = crate::canonical::normalize_host(name)
            .filter(|h| h.len() == name.trim_end_matches('.').len())
            .ok_or_else(|| InvalidHost(text.to_string()))?;
        Ok(if wild { HostMatch::Suffix(format!(".{normal}")) } else { HostMatch::Exact(normal.into_owned()) })
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            HostMatch::Exact(want) => host == want,
            HostMatch::Suffix(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }
}

#[derive(Debug, Clone)]
pub enum PathMatch {
    Exact(String),
    /// Segment-aware: holds the prefix without a trailing `/` (`""` for `/`).
    Prefix(String),
    Regex(regex::Regex),
}

impl PathMatch {
    /// A segment-aware prefix; a trailing `/` is ignored, so `/api/` ≡ `/api`.
    pub fn prefix(path: &str) -> PathMatch {
        PathMatch::Prefix(path.trim_end_matches('/').to_string())
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Exact(want) => path == want,
            PathMatch::Prefix(prefix) => prefix_matches(prefix, path),
            PathMatch::Regex(re) => re.is_match(path),
        }
    }
}

/// `/api` matches `/api`, `/api/` and `/api/x`, never `/apix`.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    path.starts_with(prefix) && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'))
}

/// All the match keys of a route; every one that is set must hold.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    pub host: Option<HostMatch>,
    pub path: Option<PathMatch>,
    pub methods: Option<Vec<Method>>,
    /// Name → exact value, or `None` for "present".
    pub headers: Vec<(HeaderName, Option<HeaderValue>)>,
    /// Name → exact value, or `"*"` for "present"; names and values are compared decoded.
    pub query: Vec<(String, String)>,
}

impl Matcher {
    pub fn is_empty(&self) -> bool {
        self.host.is_none()
            && self.path.is_none()
            && self.methods.is_none()
            && self.headers.is_empty()
            && self.query.is_empty()
    }

    /// Why this matcher does not match `req`, or `Ok` when it does.
    pub fn check(&self, req: &RequestFacts<'_>) -> Result<(), Mismatch> {
        if let Some(host) = &self.host
            && !host.matches(req.host)
        {
            return Err(Mismatch::Host);
        }
        if let Some(path) = &self.path
            && !path.matches(req.path)
        {
            return Err(Mismatch::Path);
        }
        if let Some(methods) = &self.methods
            && !methods.contains(req.method)
        {
            return Err(Mismatch::Method);
        }
        for (name, want) in &self.headers {
            let mut values = req.headers.get_all(name).iter();
            let found = match want {
                None => values.next().is_some(),
                Some(want) => values.any(|v| v == want),
            };
            if !found {
                return Err(Mismatch::Header(name.clone()));
            }
        }
        for (name, want) in &self.query {
            let query = req.query.unwrap_or("");
            let found = form_urlencoded::parse(query.as_bytes())
                .any(|(k, v)| k == name.as_str() && (want == "*" || v == want.as_str()));
            if !found {
                return Err(Mismatch::Query(name.clone()));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: std::sync::Arc<str>,
    pub matcher: Matcher,
    pub action: Action,
    pub guards: crate::config::Guards,
}

/// The facts about a request that routes look at, already canonical.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub method: &'a Method,
    /// Normalised host (lower case, no port); empty when the request had none.
    pub host: &'a str,
    /// The canonical path's match key.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

/// The result of selection: the route that matched, or the default.
#[derive(Debug, Clone, Copy)]
pub struct Selected<'a> {
    /// Index into `routes()`; `None` means `[default]`.
    pub index: Option<usize>,
    /// `None` means `[default]`.
    pub route: Option<&'a Route>,
    pub action: &'a Action,
}

#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
    default: Action,
    index: PathIndex,
}

impl RouteTable {
    pub fn new(routes: Vec<Route>, default: Action) -> Self {
        let index = PathIndex::build(&routes);
        RouteTable { routes, default, index }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn default_action(&self) -> &Action {
        &self.default
    }

    /// The first route, in file order, that matches `req`; else the default.
    pub fn select(&self, req: &RequestFacts<'_>) -> Selected<'_> {
        let first = self.index.first_match(req.path, |i| self.routes[i].matcher.check(req).is_ok());
        match first {
            Some(i) => Selected { index: Some(i), route: Some(&self.routes[i]), action: &self.routes[i].action },
            None => Selected { index: None, route: None, action: &self.default },
        }
    }
}

#[cfg(test)]
mod tests;

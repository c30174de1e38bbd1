//! What the routes are, as validated: each route's match keys, action and
//! guards, in file order, with `[default]` and the path index built from them.
//! Plain data; `routes` selects among them and explains its choices.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use super::route_index::PathIndex;
use crate::guards::Guards;

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
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: Arc<str>,
    pub matcher: Matcher,
    pub action: Action,
    pub guards: Guards,
}

/// The routes in file order, `[default]`, and the path index over them.
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

    /// Which routes could match a path; `routes` checks the rest of their keys.
    pub(crate) fn index(&self) -> &PathIndex {
        &self.index
    }
}

//! Routes: what each route matches and does, and selection, a pure function
//! from a request head to a route.
//!
//! Routes are tried in file order and the first match wins; `[default]` takes
//! the rest. `config` builds the table from the file; the types live here,
//! beside what they do: `matcher` says whether one route's keys hold, `index`
//! finds the routes whose path could match (exact and prefix paths are
//! indexed, so selection costs about the same with 10 routes as with 10,000),
//! and `explain` says why, for people. No IO happens here.

mod explain;
mod index;
mod matcher;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

pub use matcher::{HostMatch, Matcher, Mismatch, PathMatch, prefix_matches};

use crate::guards::Guards;
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
    /// A body without a configured `Content-Type` is labelled
    /// `text/plain; charset=utf-8` (RFC 9110 §8.3: a sender should say what
    /// a body is; TOML strings are UTF-8), so clients do not sniff it.
    pub fn new(status: StatusCode, body: String, mut headers: HeaderMap) -> Self {
        if !body.is_empty() && !headers.contains_key(http::header::CONTENT_TYPE) {
            headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        }
        LocalResponse { status, body: Bytes::from(body), headers }
    }

    /// What `[default]` does when the file has none.
    pub fn not_found() -> Self {
        LocalResponse::new(StatusCode::NOT_FOUND, "no route\n".to_string(), HeaderMap::new())
    }
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: Arc<str>,
    pub matcher: Matcher,
    pub action: Action,
    pub guards: Guards,
    /// `store`: when this route's requests are kept in the spool.
    pub store: Option<crate::spool::StoreSpec>,
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

    /// Which routes could match a path; `select` checks the rest of their keys.
    pub(crate) fn index(&self) -> &PathIndex {
        &self.index
    }

    /// The first route, in file order, that matches `req`; else the default.
    pub fn select(&self, req: &RequestFacts<'_>) -> Selected<'_> {
        let routes = self.routes();
        match self.index().first_match(req.path, |i| routes[i].matcher.check(req).is_ok()) {
            Some(i) => Selected { index: Some(i), route: Some(&routes[i]), action: &routes[i].action },
            None => Selected { index: None, route: None, action: self.default_action() },
        }
    }
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

#[cfg(test)]
mod tests;

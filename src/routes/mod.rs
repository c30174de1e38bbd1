//! Route selection: a pure function from a request head to a route.
//!
//! Routes are tried in file order and the first match wins; `[default]` takes
//! the rest. The validated routes and their path index are `config`'s
//! (`config/route_spec.rs`); exact and prefix paths are indexed there, so
//! selection costs about the same with 10 routes as with 10,000. No IO happens here.

mod explain;

use http::{HeaderMap, Method};

pub use crate::config::{Action, HostMatch, LocalResponse, Matcher, PathMatch, Route, RouteTable, prefix_matches};
pub use explain::Mismatch;

impl HostMatch {
    fn matches(&self, host: &str) -> bool {
        match self {
            HostMatch::Exact(want) => host == want,
            HostMatch::Suffix(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }
}

impl PathMatch {
    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Exact(want) => path == want,
            PathMatch::Prefix(prefix) => prefix_matches(prefix, path),
            PathMatch::Regex(re) => re.is_match(path),
        }
    }
}

impl Matcher {
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

impl RouteTable {
    /// The first route, in file order, that matches `req`; else the default.
    pub fn select(&self, req: &RequestFacts<'_>) -> Selected<'_> {
        let routes = self.routes();
        match self.index().first_match(req.path, |i| routes[i].matcher.check(req).is_ok()) {
            Some(i) => Selected { index: Some(i), route: Some(&routes[i]), action: &routes[i].action },
            None => Selected { index: None, route: None, action: self.default_action() },
        }
    }
}

#[cfg(test)]
mod tests;

//! Explaining route decisions to people: `hookgate route` and `hookgate check`.
//!
//! `explain` walks every route in order, as selection would, and records why
//! each earlier route did not match. `shadowed` finds routes that an earlier
//! route always wins over, so they can never match. Neither is on the request path.

use std::fmt;

use super::{HostMatch, Matcher, Mismatch, PathMatch, RequestFacts, Route, RouteTable};

/// One route's verdict in an explanation.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub route: String,
    /// `None` when the route matched; else why not, in words.
    pub reason: Option<String>,
}

/// Why a request gets the route it gets.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// Every route tried, in order, ending with the match if there was one.
    pub tried: Vec<Verdict>,
    /// Index of the matching route; `None` means `[default]`.
    pub chosen: Option<usize>,
}

/// A route that can never match because an earlier one matches all it would.
#[derive(Debug, Clone)]
pub struct Shadowed {
    pub route: String,
    pub by: String,
}

impl fmt::Display for Shadowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "route {:?} can never match: the earlier route {:?} matches every request it would",
            self.route, self.by
        )
    }
}

impl RouteTable {
    /// Walks the routes in order and says why each one did or did not match.
    pub fn explain(&self, req: &RequestFacts<'_>) -> Explanation {
        let mut tried = Vec::new();
        for (i, route) in self.routes().iter().enumerate() {
            match route.matcher.check(req) {
                Ok(()) => {
                    tried.push(Verdict { route: route.name.to_string(), reason: None });
                    return Explanation { tried, chosen: Some(i) };
                }
                Err(why) => tried
                    .push(Verdict { route: route.name.to_string(), reason: Some(describe(&route.matcher, &why, req)) }),
            }
        }
        Explanation { tried, chosen: None }
    }

    /// Routes that an earlier route always wins over.
    pub fn shadowed(&self) -> Vec<Shadowed> {
        let mut out = Vec::new();
        for (i, later) in self.routes().iter().enumerate() {
            if let Some(earlier) = self.routes()[..i].iter().find(|e| covers(&e.matcher, &later.matcher)) {
                out.push(Shadowed { route: later.name.to_string(), by: earlier.name.to_string() });
            }
        }
        out
    }
}

fn describe(m: &Matcher, why: &Mismatch, req: &RequestFacts<'_>) -> String {
    match why {
        Mismatch::Host => {
            let want = match &m.host {
                Some(HostMatch::Exact(h)) => h.clone(),
                Some(HostMatch::Suffix(s)) => format!("*{s}"),
                None => String::new(),
            };
            format!("host {:?} is not {want:?}", req.host)
        }
        Mismatch::Path => match &m.path {
            Some(PathMatch::Exact(p)) => format!("path {:?} is not exactly {p:?}", req.path),
            Some(PathMatch::Prefix(p)) => {
                format!("path {:?} is not {:?} or below it", req.path, if p.is_empty() { "/" } else { p })
            }
            Some(PathMatch::Regex(re)) => format!("path {:?} does not match regex {:?}", req.path, re.as_str()),
            None => String::new(),
        },
        Mismatch::Method => {
            let list: Vec<&str> = m.methods.iter().flatten().map(|m| m.as_str()).collect();
            format!("method {} is not one of {}", req.method, list.join(", "))
        }
        Mismatch::Header(name) => format!("header {name} is missing or has another value"),
        Mismatch::Query(name) => format!("query parameter {name:?} is missing or has another value"),
    }
}

/// True when every request `later` matches is also matched by `earlier`.
/// Conservative: `false` when it cannot tell (e.g. two regexes).
fn covers(earlier: &Matcher, later: &Matcher) -> bool {
    let host = match (&earlier.host, &later.host) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(e), Some(l)) => match (e, l) {
            (HostMatch::Exact(a), HostMatch::Exact(b)) => a == b,
            (HostMatch::Suffix(s), HostMatch::Exact(b)) => b.len() > s.len() && b.ends_with(s.as_str()),
            (HostMatch::Suffix(s), HostMatch::Suffix(t)) => t.ends_with(s.as_str()),
            (HostMatch::Exact(_), HostMatch::Suffix(_)) => false,
        },
    };
    let path = match (&earlier.path, &later.path) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(PathMatch::Exact(a)), Some(PathMatch::Exact(b))) => a == b,
        (Some(PathMatch::Prefix(p)), Some(PathMatch::Exact(b) | PathMatch::Prefix(b))) => super::prefix_matches(p, b),
        (Some(PathMatch::Regex(re)), Some(PathMatch::Exact(b))) => re.is_match(b),
        _ => false,
    };
    let methods = match (&earlier.methods, &later.methods) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(e), Some(l)) => l.iter().all(|m| e.contains(m)),
    };
    let headers = earlier
        .headers
        .iter()
        .all(|(name, want)| later.headers.iter().any(|(n, v)| n == name && (want.is_none() || want == v)));
    let query = earlier
        .query
        .iter()
        .all(|(name, want)| later.query.iter().any(|(n, v)| n == name && (want == "*" || want == v)));
    host && path && methods && headers && query
}

impl Route {
    /// A one-line summary of the match keys, for the route table printout.
    pub fn describe_match(&self) -> String {
        let m = &self.matcher;
        let mut parts = Vec::new();
        match &m.host {
            Some(HostMatch::Exact(h)) => parts.push(format!("host={h}")),
            Some(HostMatch::Suffix(s)) => parts.push(format!("host=*{s}")),
            None => {}
        }
        match &m.path {
            Some(PathMatch::Exact(p)) => parts.push(format!("path={p}")),
            Some(PathMatch::Prefix(p)) => parts.push(format!("path_prefix={p}/")),
            Some(PathMatch::Regex(re)) => parts.push(format!("path_regex={}", re.as_str())),
            None => {}
        }
        if let Some(methods) = &m.methods {
            let list: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
            parts.push(format!("methods={}", list.join(",")));
        }
        for (name, value) in &m.headers {
            let value = value.as_ref().map_or("*", |v| v.to_str().unwrap_or("?"));
            parts.push(format!("header {name}={value}"));
        }
        for (name, value) in &m.query {
            parts.push(format!("query {name}={value}"));
        }
        parts.join(" ")
    }
}

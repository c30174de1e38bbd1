//! One route's match keys (host, path, methods, headers, query) and
//! whether a request meets them.
//!
//! Every key that is set must hold; `Matcher::check` says which one did not.
//! Path prefixes match at segment boundaries: `/api` never matches `/apix`.

use http::{HeaderName, HeaderValue, Method};

use super::RequestFacts;

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
        // `*` is valid in a name (RFC 3986's sub-delims) but no client sends
        // one: `*` or `a.*.com` would be compared as written and never match.
        let normal = crate::canonical::normalize_host(name)
            .filter(|h| h.len() == name.trim_end_matches('.').len() && !h.contains('*'))
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

/// The key that made a route not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    Host,
    Path,
    Method,
    Header(HeaderName),
    Query(String),
}

//! What `check` says about a guarded exact path whose trailing-slash twin
//! reaches the same server without its guards.
//!
//! `path = "/api/v1/guest/telegram/webhook"` does not match `…/webhook/`
//! (an exact path is exact). Laravel (XBoard) and many other frameworks route
//! both spellings to the same handler, so when the twin goes to the same
//! server through another route or `[default]`, the guards (`allow_from`,
//! `secret_header`, `dedupe`, `store`, ...) can be skipped with one `/`.

use http::{HeaderMap, Method};

use crate::config::Config;
use crate::routes::{Action, HostMatch, PathMatch, RequestFacts, Route};

/// One warning per guarded exact-path route whose twin `path/` is forwarded,
/// unguarded, to an upstream at the same address as the route's own.
pub(super) fn warnings(config: &Config) -> Vec<String> {
    config.routes.routes().iter().filter_map(|route| twin_warning(config, route)).collect()
}

fn twin_warning(config: &Config, route: &Route) -> Option<String> {
    let Some(PathMatch::Exact(path)) = &route.matcher.path else { return None };
    let Action::Upstream(own) = route.action else { return None };
    if path.ends_with('/') || (route.guards.is_empty() && route.store.is_none()) {
        return None;
    }
    let twin = format!("{path}/");
    let method = route.matcher.methods.as_ref().and_then(|m| m.first().cloned()).unwrap_or(Method::POST);
    let host = match &route.matcher.host {
        Some(HostMatch::Exact(host)) => host.clone(),
        Some(HostMatch::Suffix(suffix)) => format!("www{suffix}"),
        None => String::new(),
    };
    let headers = HeaderMap::new();
    let facts = RequestFacts { method: &method, host: &host, path: &twin, query: None, headers: &headers };
    let selected = config.routes.select(&facts);
    let guarded = selected.route.is_some_and(|r| !r.guards.is_empty() || r.store.is_some());
    let Action::Upstream(other) = *selected.action else { return None };
    let (own, other) = (&config.upstreams[own], &config.upstreams[other]);
    if guarded || own.url != other.url {
        return None;
    }
    let by = selected.route.map_or("[default]".to_string(), |r| format!("route {:?}", r.name));
    Some(format!(
        "route {:?}: {twin:?} (its path with a trailing slash) goes through {by} to upstream {}, the same server \
         ({}), without this route's guards; frameworks such as XBoard's Laravel serve it as {path:?}: add a route \
         for it with the same guards, or one that answers 404",
        route.name, other.name, other.url
    ))
}

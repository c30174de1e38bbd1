//! What `check` says about a guarded exact path whose twins reach the same
//! server without its guards.
//!
//! `path = "/api/v1/guest/telegram/webhook"` matches neither `…/webhook/` nor
//! `/index.php/api/v1/guest/telegram/webhook` (an exact path is exact). Laravel
//! (XBoard) routes both to the same handler as the path itself: it ignores a
//! trailing slash, and its front controller's name in front of the path. When
//! a twin goes to the same server through another route or `[default]`, the
//! guards (`allow_from`, `secret_header`, `dedupe`, `store`, ...) can be
//! skipped. Each twin is tried under every host the routes name, since a
//! `host` route (a backend's own name) may take it.

use http::{HeaderMap, Method};

use crate::config::Config;
use crate::routes::{Action, HostMatch, PathMatch, RequestFacts, Route};

/// One warning per guarded exact-path route and twin that is forwarded,
/// unguarded, to an upstream at the same address as the route's own.
pub(super) fn warnings(config: &Config) -> Vec<String> {
    let hosts = hosts_named(config);
    config.routes.routes().iter().filter_map(|route| twin_warning(config, route, &hosts)).collect()
}

/// A host for each `host` key of the routes (one name under a wildcard), and none at all.
fn hosts_named(config: &Config) -> Vec<String> {
    let named = config.routes.routes().iter().filter_map(|route| match &route.matcher.host {
        Some(HostMatch::Exact(host)) => Some(host.clone()),
        Some(HostMatch::Suffix(suffix)) => Some(format!("www{suffix}")),
        None => None,
    });
    std::iter::once(String::new()).chain(named).collect()
}

fn twin_warning(config: &Config, route: &Route, hosts: &[String]) -> Option<String> {
    let Some(PathMatch::Exact(path)) = &route.matcher.path else { return None };
    let Action::Upstream(own) = route.action else { return None };
    if path.ends_with('/') || (route.guards.is_empty() && route.store.is_none()) {
        return None;
    }
    let method = route.matcher.methods.as_ref().and_then(|m| m.first().cloned()).unwrap_or(Method::POST);
    let headers = HeaderMap::new();
    let own_url = &config.upstreams[own].url;
    for twin in [format!("{path}/"), format!("/index.php{path}")] {
        for host in hosts {
            let facts = RequestFacts { method: &method, host, path: path.as_str(), query: None, headers: &headers };
            if route.matcher.check(&facts).is_err() {
                continue; // the route itself does not take this host's requests
            }
            let facts = RequestFacts { path: &twin, ..facts };
            let selected = config.routes.select(&facts);
            let guarded = selected.route.is_some_and(|r| !r.guards.is_empty() || r.store.is_some());
            let Action::Upstream(other) = *selected.action else { continue };
            let other = &config.upstreams[other];
            if guarded || other.url != *own_url {
                continue;
            }
            let by = selected.route.map_or("[default]".to_string(), |r| format!("route {}", r.name));
            let on = if host.is_empty() { String::new() } else { format!(" for {host}") };
            return Some(format!(
                "route {}: {twin}{on} goes through {by} to upstream {}, the same server ({}), without this \
                 route's guards; frameworks such as XBoard's Laravel serve it as {path}: add a route for it with \
                 the same guards, or one that answers 404",
                route.name, other.name, other.url
            ));
        }
    }
    None
}

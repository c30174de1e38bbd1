//! Human-readable reports for `hookgate check` and `hookgate route`.
//!
//! Both print what the daemon would do, computed by the same route table and
//! canonicaliser the daemon uses, so the explanation cannot drift from reality.

use std::fmt::Write;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use crate::canonical;
use crate::config::Config;
use crate::routes::{Action, RequestFacts};

/// The compiled route table, one line per route, then the default.
pub fn route_table(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "listeners: {}", join(config.listen.addrs.iter().map(|a| a.to_string())));
    for up in &config.upstreams {
        let _ = writeln!(
            out,
            "upstream {}: {} (connect_timeout {:?}, response_timeout {:?}, host_header {:?})",
            up.name, up.url, up.connect_timeout, up.response_timeout, up.host_header
        );
    }
    let _ = writeln!(out, "routes (first match wins):");
    for (i, route) in config.routes.routes().iter().enumerate() {
        let _ = writeln!(
            out,
            "  {:>3}. {:<24} {:<50} -> {}",
            i,
            route.name,
            route.describe_match(),
            describe_action(config, &route.action)
        );
    }
    let _ = writeln!(out, "  default{:>69} -> {}", "", describe_action(config, config.routes.default_action()));
    out
}

fn join(items: impl Iterator<Item = String>) -> String {
    let list: Vec<String> = items.collect();
    if list.is_empty() { "(none)".to_string() } else { list.join(", ") }
}

pub fn describe_action(config: &Config, action: &Action) -> String {
    match action {
        Action::Upstream(i) => {
            let up = &config.upstreams[*i];
            format!("upstream {} ({})", up.name, up.url)
        }
        Action::Respond(local) => format!("respond {}", local.status.as_u16()),
    }
}

/// Explains which route `METHOD URL` with `headers` gets, and why the routes
/// above it did not match. `Err` holds a usage problem with the arguments.
pub fn explain(config: &Config, method: &str, url: &str, headers: &[String]) -> Result<String, String> {
    let method =
        Method::from_bytes(method.to_ascii_uppercase().as_bytes()).map_err(|_| format!("invalid method {method:?}"))?;
    let uri: Uri = url.parse().map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    let mut map = HeaderMap::new();
    for h in headers {
        let (name, value) = h.split_once(':').ok_or_else(|| format!("header {h:?} must be 'Name: value'"))?;
        let name =
            HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| format!("invalid header name in {h:?}"))?;
        let value = HeaderValue::from_str(value.trim()).map_err(|_| format!("invalid header value in {h:?}"))?;
        map.append(name, value);
    }
    let raw_host = match uri.authority() {
        Some(authority) => authority.as_str().to_string(),
        None => map.get(http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("").to_string(),
    };
    let host = if raw_host.is_empty() {
        String::new()
    } else {
        canonical::normalize_host(&raw_host).ok_or_else(|| format!("invalid host {raw_host:?}"))?.into_owned()
    };

    let mut out = String::new();
    let path = match canonical::canonicalize(uri.path()) {
        Ok(path) => path,
        Err(e) => {
            let _ = writeln!(out, "request: {method} {host} {}", uri.path());
            let _ = writeln!(out, "=> refused with 400 bad request: {e}; never forwarded");
            return Ok(out);
        }
    };
    let facts =
        RequestFacts { method: &method, host: &host, path: path.match_key(), query: uri.query(), headers: &map };
    let _ = writeln!(out, "request: {method} {} {}", if host.is_empty() { "(no host)" } else { &host }, path.as_str());
    if path.match_key() != path.as_str() {
        let _ = writeln!(out, "matched as: {}", path.match_key());
    }
    let explanation = config.routes.explain(&facts);
    for verdict in &explanation.tried {
        match &verdict.reason {
            Some(why) => {
                let _ = writeln!(out, "  - {:<24} no: {why}", verdict.route);
            }
            None => {
                let _ = writeln!(out, "  + {:<24} MATCH", verdict.route);
            }
        }
    }
    let (name, action) = match explanation.chosen {
        Some(i) => {
            let route = &config.routes.routes()[i];
            (format!("route {}", route.name), &route.action)
        }
        None => ("no route matched: default".to_string(), config.routes.default_action()),
    };
    let _ = writeln!(out, "=> {name} -> {}", describe_action(config, action));
    Ok(out)
}

//! The forward phase's head: what the upstream receives (canonical target,
//! Host by policy, hop-by-hop headers gone, `X-Forwarded-*`, `Via`), and the
//! HTTPS redirect answered instead on redirect listeners.

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::uri::{PathAndQuery, Uri};
use http::{StatusCode, Version};

use super::{State, headers};
use crate::canonical::{self, CanonicalPath};
use crate::config::{HostHeader, Redirect};
use crate::connection::{ConnContext, ListenerKind};
use crate::error::{BadRequest, ProxyError};
use crate::routes::LocalResponse;
use crate::upstream::UpstreamClient;

/// A 308 to the same host, path and query over HTTPS (308 keeps the method and body).
pub(super) fn https_redirect(
    redirect: &Redirect,
    host: &str,
    path: &CanonicalPath<'_>,
    query: Option<&str>,
) -> Result<LocalResponse, ProxyError> {
    if host.is_empty() {
        return Err(ProxyError::BadRequest(BadRequest::MissingHost));
    }
    let port = redirect.https_port.map(|p| format!(":{p}")).unwrap_or_default();
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    let location = format!("https://{host}{port}{}{query}", path.as_str());
    let location = HeaderValue::from_str(&location).map_err(|_| ProxyError::BadRequest(BadRequest::InvalidHost))?;
    let mut headers = http::HeaderMap::new();
    headers.insert(header::LOCATION, location);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    Ok(LocalResponse::new(StatusCode::PERMANENT_REDIRECT, "use https\n".to_string(), headers))
}

/// Where the client aimed its request, in canonical form, and what the
/// route's guards ask of the forwarded copy.
pub(super) struct Target<'a> {
    pub uri: &'a Uri,
    pub path: &'a CanonicalPath<'a>,
    /// The client's `Host` (or absolute-form authority), unchanged.
    pub host: Option<HeaderValue>,
    /// A secret header to remove before forwarding.
    pub strip: Option<&'a HeaderName>,
}

/// Turns the client's request head into the one sent upstream, and returns
/// the headers hookgate adds to it (see `headers::Added`).
pub(super) fn rewrite(
    parts: &mut Parts,
    Target { uri, path, host, strip }: Target<'_>,
    conn: &ConnContext,
    state: &State,
    upstream: &UpstreamClient,
    upgrade: Option<&HeaderValue>,
) -> Result<headers::Added, ProxyError> {
    let target = forwarded_target(uri, path)?;
    let received = parts.version;
    let config = &upstream.config;
    parts.uri = Uri::builder()
        .scheme(config.scheme.clone())
        .authority(config.authority.clone())
        .path_and_query(target)
        .build()
        .map_err(|_| ProxyError::BadRequest(BadRequest::Target(canonical::TargetError::NotOriginForm)))?;
    parts.version = Version::HTTP_11;
    parts.extensions = http::Extensions::new();

    let headers = &mut parts.headers;
    let mut removed_any = headers::strip_hop_by_hop(headers);
    if let Some(secret) = strip {
        headers.remove(secret);
        removed_any = true;
    }
    match (config.host_header, &host) {
        // The client's one `Host` header is still there as it came (nothing
        // was removed that could have been it): nothing to write.
        (HostHeader::Preserve, Some(_)) if uri.authority().is_none() && !removed_any => {}
        (HostHeader::Preserve, Some(host)) => {
            headers.insert(header::HOST, host.clone());
        }
        _ => {
            if let Ok(value) = HeaderValue::from_str(config.authority.as_str()) {
                headers.insert(header::HOST, value);
            }
        }
    }
    let trusted = state.config.listen.trusted_proxies.contains(conn.peer.ip());
    let proto = if conn.kind == ListenerKind::Tls { "https" } else { "http" };
    let added = headers::forwarded(headers, &conn.peer_value, trusted, proto, host.as_ref(), received);
    if let Some(protocol) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol.clone());
    }
    Ok(added)
}

/// The canonical path plus the client's query string, byte for byte. An
/// absolute-form target with an empty path (`http://a?x`) gets `/` (RFC 9112
/// §3.2.1: origin-form's path is never empty).
fn forwarded_target(uri: &Uri, path: &CanonicalPath<'_>) -> Result<PathAndQuery, ProxyError> {
    if path.is_unchanged()
        && let Some(pq) = uri.path_and_query()
        && pq.as_str().starts_with('/')
    {
        return Ok(pq.clone());
    }
    let mut target = String::with_capacity(path.as_str().len() + uri.query().map_or(0, |q| q.len() + 1));
    target.push_str(path.as_str());
    if let Some(query) = uri.query() {
        target.push('?');
        target.push_str(query);
    }
    PathAndQuery::from_maybe_shared(Bytes::from(target))
        .map_err(|_| ProxyError::BadRequest(BadRequest::Target(canonical::TargetError::NotOriginForm)))
}

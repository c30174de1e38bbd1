//! Human-readable reports for `hookgate check` and `hookgate route`.
//!
//! Both print what the daemon would do, computed by the same route table and
//! canonicaliser the daemon uses, so the explanation cannot drift from reality.

mod guards;
mod signature;
mod slash;

use std::fmt::Write;
use std::net::IpAddr;
use std::path::Path;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use crate::canonical;
use crate::config::{Config, duration_text, guards_as_written};
use crate::error::{BadRequest, ProxyError};
use crate::proxy::{self, HeadFacts};
use crate::routes::{Action, PathMatch, RequestFacts, Route};

/// The compiled route table, one line per route, then the default.
pub fn route_table(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "listeners: {}", join(config.listen.addrs.iter().map(|a| a.to_string())));
    if let Some(tls) = &config.listen.tls {
        let _ = writeln!(out, "tls listeners: {} (http2 {})", join(tls.addrs.iter().map(|a| a.to_string())), tls.http2);
        for cert in &tls.certificates {
            let _ = writeln!(out, "  certificate {}: {}", cert.cert_file, cert.names.join(", "));
        }
        if let Some(acme) = &tls.acme {
            let settings = acme.settings();
            let _ = writeln!(
                out,
                "  acme: {} by {} from {} (cache {})",
                settings.domains.join(", "),
                settings.challenge.name(),
                settings.directory,
                acme.folder().display()
            );
            let now = crate::metrics::unix_now() as i64;
            let _ = match acme.current() {
                Some(cert) => writeln!(
                    out,
                    "    cached certificate for {}: {} days left",
                    cert.names.join(", "),
                    cert.days_left(now)
                ),
                None => writeln!(out, "    no cached certificate: these names will be obtained at start"),
            };
        }
    }
    if let Some(redirect) = &config.listen.redirect {
        let exempt = if redirect.exempt.is_empty() { "none".to_string() } else { redirect.exempt.join(", ") };
        let addrs = join(redirect.addrs.iter().map(|a| a.to_string()));
        let _ = writeln!(out, "redirect listeners: {addrs} (308 to https; exempt: {exempt})");
    }
    for line in guards::trust_lines(config) {
        let _ = writeln!(out, "{line}");
    }
    for up in &config.upstreams {
        // The keys as the file writes them, defaults filled in.
        let _ = writeln!(
            out,
            "upstream {}: {} (connect_timeout = {:?}, response_timeout = {:?}, host_header = \"{}\")",
            up.name,
            up.url,
            duration_text(up.connect_timeout),
            duration_text(up.response_timeout),
            up.host_header.as_str()
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
        for guard in guards_as_written(&route.guards) {
            let _ = writeln!(out, "       {guard}");
        }
        if let Some(store) = &route.store {
            let _ = writeln!(out, "       {}", store_as_written(store));
        }
    }
    let _ = writeln!(out, "  default{:>69} -> {}", "", describe_action(config, config.routes.default_action()));
    if config.routes.routes().iter().any(|r| r.store.is_some()) {
        let spool = &config.spool;
        let readable = bytesize::ByteSize::b(spool.max_bytes).display().iec();
        let _ = writeln!(out, "spool: {} (max_bytes = {}, {readable})", spool.dir.display(), spool.max_bytes);
    }
    out.extend(cluster_line(config));
    out
}

/// `[cluster]` as `check` prints it, defaults filled in.
fn cluster_line(config: &Config) -> Option<String> {
    let cluster = config.cluster.as_ref()?;
    let (call_timeout, lease) =
        (humantime::format_duration(cluster.call_timeout), humantime::format_duration(cluster.lease));
    Some(format!(
        "cluster: node {:?} through {} (key_prefix = {:?}, call_timeout = \"{call_timeout}\", lease = \"{lease}\")\n",
        cluster.node,
        cluster.redis.as_str(),
        cluster.key_prefix
    ))
}

/// A route's `store` key as the file writes it, defaults filled in.
fn store_as_written(store: &crate::spool::StoreSpec) -> String {
    let order = match store.order {
        crate::spool::StoreOrder::TelegramChat => "telegram_chat",
        crate::spool::StoreOrder::None => "none",
    };
    let ack = match store.mode {
        crate::spool::StoreMode::Journal => String::new(),
        _ => format!("ack = {}, ", store.ack.as_u16()),
    };
    format!(
        "store = {{ mode = \"{}\", {ack}order = \"{order}\", expire = \"{}\", concurrency = {} }}",
        store.mode.as_str(),
        duration_text(store.expire),
        store.concurrency
    )
}

/// Things `hookgate check` warns about in `config`, read from `file`: valid,
/// but probably not what was meant.
pub fn warnings(config: &Config, file: &Path) -> Vec<String> {
    let mut out: Vec<String> = config.routes.shadowed().iter().map(ToString::to_string).collect();
    let now = crate::metrics::unix_now() as i64;
    for cert in config.listen.tls.iter().flat_map(|t| t.served_certificates()) {
        let days = cert.days_left(now);
        if days < crate::tls::EXPIRY_WARNING_DAYS {
            let when = crate::tls::expiry_phrase(days);
            out.push(format!("certificate {} ({}) {when}", cert.cert_file, cert.names.join(", ")));
        }
    }
    if let Some(tls) = &config.listen.tls {
        out.extend(acme_warnings(config, tls));
    }
    for up in &config.upstreams {
        if matches!(up.tls.as_ref().map(|t| &t.trust), Some(crate::tls::UpstreamTrust::Insecure)) {
            out.push(format!("upstream {}: tls_insecure_skip_verify = true: its certificate is NOT checked", up.name));
        }
    }
    if let Some(redirect) = &config.listen.redirect {
        // Telegram does not follow redirects: a webhook must be served, not redirected.
        for route in telegram_webhooks(config) {
            let exempt = match &route.matcher.path {
                Some(PathMatch::Exact(p) | PathMatch::Prefix(p)) => redirect.is_exempt(p),
                _ => false,
            };
            if !exempt {
                out.push(format!(
                    "route {} looks like a webhook but [listen.redirect] would redirect it on the plain listener; \
                     Telegram does not follow redirects: add its path to exempt",
                    route.name
                ));
            }
        }
    }
    out.extend(telegram_https_warning(config));
    if let Some(telegram) = &config.telegram
        && let Err(why) = telegram.check_deliverable()
    {
        out.push(format!("[telegram] {why}: hookgate telegram set-webhook and the repair will refuse it"));
    }
    out.extend(guards::trust_warnings(config));
    out.extend(slash::warnings(config));
    out.extend(signature::warnings(config, file));
    for file in &config.loose_secret_files {
        out.push(format!("secret file {} may be read by its group or others: chmod 600 it", file.display()));
    }
    if config.routes.routes().iter().any(|r| r.store.is_some())
        && let Some(problem) = crate::spool::unwritable(&config.spool.dir)
    {
        out.push(format!(
            "[spool] dir: {problem}; the daemon would serve the routes with store without keeping anything"
        ));
    }
    out
}

/// The `[telegram]` route and every route that admits the `telegram` set.
fn telegram_webhooks(config: &Config) -> impl Iterator<Item = &crate::routes::Route> {
    let telegram = config.telegram.as_ref().map(|t| &*t.route);
    config.routes.routes().iter().filter(move |route| {
        Some(&*route.name) == telegram || route.guards.allow_from_names.iter().any(|n| n == "telegram")
    })
}

/// Telegram delivers webhooks only over HTTPS, to ports 443, 80, 88 or 8443.
/// A config with a Telegram webhook, no TLS listener on one of those ports and
/// no trusted proxy (one terminating HTTPS in front would be listed there)
/// cannot receive it.
fn telegram_https_warning(config: &Config) -> Option<String> {
    const TELEGRAM_PORTS: [u16; 4] = [443, 80, 88, 8443];
    let route = telegram_webhooks(config).next()?;
    let mut tls_addrs = config.listen.tls.iter().flat_map(|tls| &tls.addrs);
    let served = tls_addrs.any(|addr| TELEGRAM_PORTS.contains(&addr.port()));
    if served || !config.listen.trusted_proxies.is_empty() {
        return None;
    }
    Some(format!(
        "route {} is a Telegram webhook, but Telegram delivers only over HTTPS to ports 443, 80, 88 or 8443, \
         and no [listen.tls] address here uses one; serve HTTPS (hookgate init --tls acme|files), or list the \
         proxy that terminates it in front of hookgate in [listen] trusted_proxies",
        route.name
    ))
}

/// The ACME server checks http-01 on port 80 and tls-alpn-01 on port 443; a
/// name that a file certificate also covers is served with the file's.
fn acme_warnings(config: &Config, tls: &crate::config::TlsListen) -> Vec<String> {
    let Some(acme) = &tls.acme else { return Vec::new() };
    let settings = acme.settings();
    let mut out = Vec::new();
    fn on_port<'a>(mut addrs: impl Iterator<Item = &'a std::net::SocketAddr>, port: u16) -> bool {
        addrs.any(|a| a.port() == port)
    }
    match settings.challenge {
        crate::tls::Challenge::TlsAlpn01 if !on_port(tls.addrs.iter(), 443) => out.push(
            "[listen.tls.acme] uses tls-alpn-01, which the ACME server checks on port 443, but no [listen.tls] addr \
             is on port 443 (fine only if port 443 is forwarded here)"
                .to_string(),
        ),
        crate::tls::Challenge::Http01 => {
            let redirect = config.listen.redirect.iter().flat_map(|r| r.addrs.iter());
            if !on_port(config.listen.addrs.iter().chain(redirect), 80) {
                out.push(
                    "[listen.tls.acme] uses http-01, which the ACME server checks on port 80, but no [listen] or \
                     [listen.redirect] addr is on port 80 (fine only if systemd's socket or a forward supplies it)"
                        .to_string(),
                );
            }
        }
        crate::tls::Challenge::TlsAlpn01 => {}
    }
    for domain in &settings.domains {
        if let Some(cert) = tls.certificates.iter().find(|c| c.names.contains(domain)) {
            out.push(format!(
                "{domain} is in [listen.tls.acme] domains and in certificate {}; the file's certificate is served for it",
                cert.cert_file
            ));
        }
    }
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

/// A problem with `hookgate route`'s arguments.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("invalid method {0:?}")]
    Method(String),
    #[error("invalid URL {url:?}: {reason}")]
    Url { url: String, reason: http::uri::InvalidUri },
    #[error("header {0:?} must be 'Name: value'")]
    HeaderShape(String),
    #[error("invalid header name in {0:?}")]
    HeaderName(String),
    #[error("invalid header value in {0:?}")]
    HeaderValue(String),
}

/// `hookgate route`'s arguments as a request head.
struct Request {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Request {
    fn parse(method: &str, url: &str, headers: &[String]) -> Result<Request, UsageError> {
        // As typed: the daemon refuses a method with a lower-case letter, and so does `route`.
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| UsageError::Method(method.to_string()))?;
        let uri: Uri = url.parse().map_err(|reason| UsageError::Url { url: url.to_string(), reason })?;
        let mut map = HeaderMap::new();
        for h in headers {
            let (name, value) = h.split_once(':').ok_or_else(|| UsageError::HeaderShape(h.clone()))?;
            let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| UsageError::HeaderName(h.clone()))?;
            let value = HeaderValue::from_str(value.trim()).map_err(|_| UsageError::HeaderValue(h.clone()))?;
            map.append(name, value);
        }
        Ok(Request { method, uri, headers: map })
    }

    /// The host routes match on, as the daemon admits it (`proxy::request_host`),
    /// or the error the daemon answers instead. Without a `Host` the host is
    /// empty: an HTTP/1.0 request is routed so (`explain` notes that HTTP/1.1
    /// and HTTP/2 requests are refused).
    fn admitted_host(&self) -> Result<String, ProxyError> {
        proxy::check_method(&self.method)?;
        let (mut parts, ()) = http::Request::new(()).into_parts();
        (parts.method, parts.uri, parts.headers) = (self.method.clone(), self.uri.clone(), self.headers.clone());
        // A URL's host goes in `Host` too, as every client sends it.
        if let Some(authority) = self.uri.authority()
            && !parts.headers.contains_key(http::header::HOST)
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            parts.headers.insert(http::header::HOST, host);
        }
        let facts = HeadFacts::from_map(&parts.headers, parts.version);
        match proxy::request_host(&parts, &facts) {
            Ok(Some(value)) => proxy::host_name(&value).map(|host| host.into_owned()),
            Ok(None) | Err(ProxyError::BadRequest(BadRequest::MissingHost)) => Ok(String::new()),
            Err(error) => Err(error),
        }
    }
}

/// Explains what the chosen `route`'s guards make of `request` from `from`
/// with `body`, and whether they refuse it (then saying with what).
fn refused_by_guards(
    out: &mut String,
    config: &Config,
    route: &Route,
    request: &Request,
    (from, body): (Option<IpAddr>, Option<&[u8]>),
) -> bool {
    let Request { method, uri, headers } = request;
    let client = from.map(|peer| guards::explain_client(out, config, peer, headers));
    let mut refusal = guards::explain_guards(out, config, &route.guards, client, headers);
    if let Some(verifier) = &route.guards.verify {
        refusal = refusal.or(signature::explain(out, verifier, method, headers, uri.query(), body));
    }
    // After the signature check, as the gate claims keys.
    if let Some(dedupe) = &route.guards.dedupe {
        guards::explain_dedupe(out, dedupe);
    }
    if let Some(status) = refusal {
        let _ = writeln!(out, "=> route {} refuses this request with {status}", route.name);
        return true;
    }
    if let Some(store) = &route.store {
        guards::explain_store(out, store, &config.spool.dir);
    }
    false
}

/// Explains which route `METHOD URL` with `headers` gets, why the routes above
/// it did not match, and whether a request from `from` passes its guards.
pub fn explain(
    config: &Config,
    method: &str,
    url: &str,
    headers: &[String],
    from: Option<IpAddr>,
    body: Option<&[u8]>,
) -> Result<String, UsageError> {
    let request = Request::parse(method, url, headers)?;
    let mut out = String::new();
    let host = match request.admitted_host() {
        Ok(host) => host,
        Err(error) => {
            let _ = writeln!(out, "request: {} {}", request.method, request.uri);
            let _ = writeln!(out, "=> refused with {} {error}; never forwarded", error.status().as_u16());
            return Ok(out);
        }
    };
    let Request { method, uri, headers: map } = &request;
    let path = match canonical::canonicalize(uri.path()) {
        Ok(path) => path,
        Err(e) => {
            let _ = writeln!(out, "request: {method} {host} {}", uri.path());
            let _ = writeln!(out, "=> refused with 400 bad request: {e}; never forwarded");
            return Ok(out);
        }
    };
    let facts = RequestFacts { method, host: &host, path: path.match_key(), query: uri.query(), headers: map };
    let _ = writeln!(out, "request: {method} {} {}", if host.is_empty() { "(no host)" } else { &host }, path.as_str());
    if host.is_empty() {
        let _ = writeln!(
            out,
            "note: without a Host header an HTTP/1.1 or HTTP/2 request is refused with 400; an HTTP/1.0 one is \
             routed as follows"
        );
    }
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
            if refused_by_guards(&mut out, config, route, &request, (from, body)) {
                return Ok(out);
            }
            (format!("route {}", route.name), &route.action)
        }
        None => ("no route matched: default".to_string(), config.routes.default_action()),
    };
    let _ = writeln!(out, "=> {name} -> {}", describe_action(config, action));
    Ok(out)
}

//! What `route` says about a request's guards and its client: how the client
//! address was worked out from `--from` and the headers (the same rule the
//! daemon runs, `client_ip`), each guard's verdict, the Cloudflare hint; and
//! what `check` says about trusted proxies and the address sets in use.

use std::fmt::Write;
use std::net::IpAddr;

use http::HeaderMap;

use crate::client_ip::{self, CF_CONNECTING_IP, X_FORWARDED_FOR};
use crate::config::{Config, duration_text};
use crate::error::ProxyError;
use crate::guards::Guards;

/// The `--from` peer's client by the daemon's rule, and a line saying how it was found.
pub(super) fn explain_client(out: &mut String, config: &Config, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let trusted = &config.listen.trusted_proxies;
    let client = client_ip::resolve(peer, headers, trusted);
    let peer = client_ip::canonical(peer);
    let claims = headers.contains_key(X_FORWARDED_FOR) || headers.contains_key(CF_CONNECTING_IP);
    let cf_says = headers.get(CF_CONNECTING_IP).and_then(|v| v.to_str().ok()?.trim().parse::<IpAddr>().ok());
    if client != peer {
        let source = if cf_says.map(client_ip::canonical) == Some(client) {
            "CF-Connecting-IP, believed from a trusted Cloudflare address"
        } else {
            "X-Forwarded-For, walked back through trusted proxies"
        };
        let _ = writeln!(out, "client: {client} (from {source}; the peer {peer} is a trusted proxy)");
    } else if claims && !trusted.contains(peer) {
        let _ = writeln!(
            out,
            "client: {peer} (the peer; it is not in [listen] trusted_proxies, so its X-Forwarded-For and \
             CF-Connecting-IP are ignored)"
        );
    } else {
        let _ = writeln!(out, "client: {client}");
    }
    client
}

/// The hint for a client `allow_from` refuses that is a Cloudflare address
/// no one trusts (the request came through Cloudflare), as the daemon logs it.
pub(super) fn cloudflare_hint(config: &Config, client: IpAddr) -> Option<String> {
    (crate::cloudflare::contains(client) && !config.listen.trusted_proxies.contains(client))
        .then(|| format!("{client} is Cloudflare's: {}", crate::cloudflare::HINT))
}

/// `check`'s warnings about trusted proxies: Cloudflare's proxy sends no PROXY
/// header (only its Spectrum product does), so trusting it with
/// `proxy_protocol` on closes every connection it opens.
pub(super) fn trust_warnings(config: &Config) -> Option<String> {
    let listen = &config.listen;
    (listen.proxy_protocol && listen.trusted_proxy_names.iter().any(|n| n == "cloudflare")).then(|| {
        "[listen] proxy_protocol = true with \"cloudflare\" in trusted_proxies: hookgate then expects a PROXY \
         header first from every Cloudflare address, and Cloudflare's proxy sends none, so its connections would \
         be closed; turn proxy_protocol off unless only a PROXY-speaking balancer connects here"
            .to_string()
    })
}

/// `check`'s lines on trusted proxies and on the built-in sets the file uses.
pub(super) fn trust_lines(config: &Config) -> Vec<String> {
    let listen = &config.listen;
    let mut out = Vec::new();
    if !listen.trusted_proxy_names.is_empty() {
        let names: Vec<String> = listen.trusted_proxy_names.iter().map(|n| format!("{n:?}")).collect();
        let ppp = if listen.proxy_protocol { " (PROXY protocol from them)" } else { "" };
        out.push(format!("trusted_proxies = [{}]{ppp}", names.join(", ")));
    }
    let mut used: Vec<&str> = listen.trusted_proxy_names.iter().map(String::as_str).collect();
    for route in config.routes.routes() {
        used.extend(route.guards.allow_from_names.iter().map(String::as_str));
    }
    if used.contains(&"telegram") {
        out.push(format!("set telegram: Telegram's webhook sources {}", crate::config::TELEGRAM.join(", ")));
    }
    if used.contains(&"cloudflare") {
        out.push(format!(
            "set cloudflare: Cloudflare's published ranges as of {} ({} IPv4, {} IPv6; cloudflare.com/ips)",
            crate::cloudflare::AS_OF,
            crate::cloudflare::IPV4.len(),
            crate::cloudflare::IPV6.len()
        ));
    }
    out
}

/// Prints what a `store` route does with a request when its upstream cannot take it.
pub(super) fn explain_store(out: &mut String, store: &crate::spool::StoreSpec, dir: &std::path::Path) {
    use crate::spool::{StoreMode, StoreOrder};
    let what = match store.mode {
        StoreMode::Fallback => format!(
            "forwarded live; kept and answered {} when the upstream is unreachable, answers 502/503/504 or \
             times out",
            store.ack.as_u16()
        ),
        StoreMode::Always => format!("kept and answered {} at once, delivered in the background", store.ack.as_u16()),
        StoreMode::Journal => {
            "forwarded live, its answer passed through; a copy is kept until the upstream answers 2xx".to_string()
        }
    };
    let order = match store.order {
        StoreOrder::TelegramChat => "one at a time per Telegram chat, in order".to_string(),
        StoreOrder::None => format!("up to {} at once", store.concurrency),
    };
    let expire = duration_text(store.expire);
    let _ = writeln!(out, "store {} (spool {}):", store.mode.as_str(), dir.display());
    let _ = writeln!(out, "  {what}; delivered {order}; a dead letter after {expire}");
}

/// Prints `allow_from` and whether `client` passes it (with the Cloudflare
/// hint when that is why not); 403 when it does not.
fn explain_allow_from(out: &mut String, config: &Config, guards: &Guards, client: Option<IpAddr>) -> Option<u16> {
    guards.allow_from.as_ref()?;
    let list = guards.allow_from_names.join(", ");
    match client {
        Some(ip) if guards.allows(ip) => {
            let _ = writeln!(out, "  allow_from [{list}]: {ip} is allowed");
            None
        }
        Some(ip) => {
            let _ = writeln!(out, "  allow_from [{list}]: {ip} is NOT allowed (403)");
            if let Some(hint) = cloudflare_hint(config, ip) {
                let _ = writeln!(out, "    hint: {hint}");
            }
            Some(403)
        }
        None => {
            let _ = writeln!(out, "  allow_from [{list}]: source unknown; pass --from IP to check it");
            None
        }
    }
}

/// Prints each guard and whether the request meets it; returns the status of
/// the first refusal, if any.
pub(super) fn explain_guards(
    out: &mut String,
    config: &Config,
    guards: &Guards,
    client: Option<IpAddr>,
    headers: &HeaderMap,
) -> Option<u16> {
    if guards.is_empty() {
        return None;
    }
    let _ = writeln!(out, "guards:");
    let mut refusal = explain_allow_from(out, config, guards, client);
    if let Some(secret) = &guards.secret_header {
        let verdict = match guards.check_secret(headers) {
            Ok(()) => "present and correct".to_string(),
            Err(e) => {
                refusal = refusal.or(Some(e.status().as_u16()));
                format!(
                    "{} ({})",
                    if e == ProxyError::MissingSecret { "missing" } else { "wrong" },
                    e.status().as_u16()
                )
            }
        };
        let strip = if secret.strip { "stripped before forwarding" } else { "forwarded" };
        let _ = writeln!(out, "  secret_header {}: {verdict}; {strip}", secret.name);
    }
    if let Some(max) = guards.max_body {
        let _ = writeln!(out, "  max_body: {max} bytes (413 above)");
    }
    if let Some(limit) = &guards.rate_limit {
        let _ = writeln!(
            out,
            "  rate_limit: {} per second, burst {}, key \"{}\" (429 above)",
            limit.per_second,
            limit.burst,
            limit.key.as_str()
        );
    }
    if let Some(n) = guards.max_in_flight {
        let _ = writeln!(out, "  max_in_flight: {n} (503 above)");
    }
    refusal
}

/// Prints what a `dedupe` route does with a repeat.
pub(super) fn explain_dedupe(out: &mut String, dedupe: &crate::guards::dedupe::DedupeSpec) {
    let _ = writeln!(
        out,
        "  dedupe: key {:?}, window {}: a repeat of a request the backend already answered with 2xx \
         is answered here with that answer (status, Content-Type, a body of up to 4 KiB) and not forwarded again",
        dedupe.key.to_string(),
        duration_text(dedupe.window)
    );
}

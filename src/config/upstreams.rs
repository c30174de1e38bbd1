//! The `[upstreams.NAME]` tables: each URL held to `scheme://host[:port]` (a
//! user and password are refused and never shown), the TLS settings of an
//! https one (`tls`), and the timeouts and pool sizes with their defaults.

use std::time::Duration;

use http::uri::Scheme;

use super::raw::RawUpstream;
use super::validate::Checker;
use super::{Step, Upstream};

impl Checker<'_> {
    pub(super) fn upstream(&mut self, name: String, raw: RawUpstream) -> Option<Upstream> {
        let at = |k: &str| [Step::Key("upstreams".into()), Step::Key(name.clone()), Step::Key(k.into())];
        let uri: http::Uri = match raw.url.parse() {
            Ok(uri) => uri,
            Err(e) => {
                self.problem(&at("url"), format!("invalid URL {:?}: {e}", shown_url(&raw.url)));
                return None;
            }
        };
        let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned()) else {
            let url = shown_url(&raw.url);
            self.problem(&at("url"), format!("{url:?} must be an absolute URL like \"http://127.0.0.1:3000\""));
            return None;
        };
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            self.problem(&at("url"), format!("scheme {scheme:?} is not supported; use http:// or https://"));
            return None;
        }
        if uri.path() != "/" || uri.query().is_some() || authority.as_str().contains('@') || raw.url.contains('#') {
            let url = shown_url(&raw.url);
            self.problem(
                &at("url"),
                format!("{url:?} must be scheme://host[:port] with no path, query, fragment or user"),
            );
            return None;
        }
        // `http::Uri` takes any digits as the port; connecting to `:99999` could only fail.
        if let Some(port) = authority.as_str()[authority.host().len()..].strip_prefix(':')
            && !port.parse::<u16>().is_ok_and(|p| p != 0)
        {
            self.problem(
                &at("url"),
                format!("port {port:?} is not a port: write 1 to 65535 (or none, for the scheme's)"),
            );
            return None;
        }
        let here = [Step::Key("upstreams".into()), Step::Key(name.clone())];
        let before = self.problems.len();
        let tls = self.upstream_tls(&here, &raw, scheme == Scheme::HTTPS, authority.host());
        if self.problems.len() > before {
            return None;
        }
        Some(Upstream {
            tls,
            name: name.as_str().into(),
            url: raw.url,
            scheme,
            authority,
            connect_timeout: raw.connect_timeout.map_or(Duration::from_secs(3), |v| v.0.0),
            response_timeout: raw.response_timeout.map_or(Duration::from_secs(60), |v| v.0.0),
            host_header: raw.host_header.unwrap_or_default(),
            max_idle: raw.max_idle.unwrap_or(64),
            idle_timeout: raw.idle_timeout.map_or(Duration::from_secs(60), |v| v.0.0),
        })
    }
}

/// When the URL's authority carries userinfo (`user[:password]@`), the URL
/// with that part shown as `…`; `None` when it carries none. Works on the text
/// (with or without a scheme), so a URL that does not parse is caught too.
pub(super) fn without_userinfo(text: &str) -> Option<String> {
    let start = text.find("://").map_or(0, |i| i + 3);
    let end = text[start..].find(['/', '?', '#']).map_or(text.len(), |i| start + i);
    let at = text[start..end].rfind('@')? + start;
    Some(format!("{}…{}", &text[..start], &text[at..]))
}

/// A URL as an error may show it: any user and password replaced by `…`.
fn shown_url(text: &str) -> String {
    without_userinfo(text).unwrap_or_else(|| text.to_string())
}

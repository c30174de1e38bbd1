//! Validation of `[listen.tls]` (with `[listen.tls.acme]`), `[listen.redirect]`
//! and the TLS keys of `[upstreams.NAME]`.
//!
//! Certificates and CA files are read here, so a reload with a broken
//! certificate fails as a whole and the previous one keeps serving.

use std::sync::Arc;
use std::time::Duration;

use super::raw::{RawAcme, RawRedirect, RawTls, RawUpstream};
use super::validate::{Checker, child};
use super::{Redirect, Step, TlsListen, UpstreamTls};
use crate::tls::{self, AcmeSettings, AcmeStore, Challenge, UpstreamTrust};

const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_STREAMS: u32 = 100;

/// Let's Encrypt's production directory, the default.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory: untrusted certificates, generous rate limits.
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
const DEFAULT_CACHE_DIR: &str = "/var/lib/hookgate/acme";

impl Checker<'_> {
    pub(super) fn listen_tls(&mut self, raw: RawTls) -> Option<TlsListen> {
        let at = [Step::Key("listen".into()), Step::Key("tls".into())];
        if raw.certificates.is_empty() && raw.acme.is_none() {
            self.problem(
                &child(&at, "certificates"),
                "at least one { cert_file, key_file } (or [listen.tls.acme]) is needed",
            );
            return None;
        }
        let mut certificates = Vec::new();
        for (i, cert) in raw.certificates.iter().enumerate() {
            let mut here = child(&at, "certificates");
            here.push(Step::Index(i));
            let cert_file = self.base_dir().join(&cert.cert_file).display().to_string();
            let key_file = self.base_dir().join(&cert.key_file).display().to_string();
            match tls::load_certificate(&cert_file, &key_file) {
                Ok(loaded) => certificates.push(loaded),
                Err(e) => self.problem(&here, e),
            }
        }
        let acme = match raw.acme {
            Some(acme) => Some(self.listen_acme(&child(&at, "acme"), acme)?),
            None => None,
        };
        let http2 = raw.http2.unwrap_or(true);
        let max_concurrent_streams = raw.max_concurrent_streams.unwrap_or(DEFAULT_MAX_STREAMS);
        if max_concurrent_streams == 0 {
            self.problem(&child(&at, "max_concurrent_streams"), "must be at least 1");
        }
        if certificates.len() != raw.certificates.len() {
            return None;
        }
        let server_config = match tls::server_config(&certificates, http2, acme.clone()) {
            Ok(config) => config,
            Err(e) => {
                self.problem(&at, e);
                return None;
            }
        };
        Some(TlsListen {
            addrs: raw.addrs,
            certificates,
            acme,
            server_config,
            handshake_timeout: raw.handshake_timeout.map_or(DEFAULT_HANDSHAKE_TIMEOUT, |d| d.0.0),
            http2,
            max_concurrent_streams,
        })
    }

    /// `[listen.tls.acme]`: the settings, and the store that serves what ACME obtains.
    fn listen_acme(&mut self, at: &[Step], raw: RawAcme) -> Option<Arc<AcmeStore>> {
        let before = self.problems.len();
        let mut domains: Vec<String> = Vec::new();
        if raw.domains.is_empty() {
            self.problem(&child(at, "domains"), "at least one domain is needed");
        }
        for (i, domain) in raw.domains.iter().enumerate() {
            let mut here = child(at, "domains");
            here.push(Step::Index(i));
            let name = domain.to_ascii_lowercase();
            match acme_domain_problem(&name) {
                Some(why) => self.problem(&here, format!("{domain:?} {why}")),
                None if domains.contains(&name) => self.problem(&here, format!("{domain:?} is listed twice")),
                None => domains.push(name),
            }
        }
        let contact = raw.contact.map(|c| if c.starts_with("mailto:") { c } else { format!("mailto:{c}") });
        if let Some(c) = contact.as_ref().filter(|c| !c[7..].contains('@') || c.contains(char::is_whitespace)) {
            self.problem(&child(at, "contact"), format!("{c:?} is not an e-mail address (mailto:ops@example.com)"));
        }
        let directory = match raw.directory.as_deref() {
            None | Some("letsencrypt") => LETS_ENCRYPT.to_string(),
            Some("letsencrypt-staging") => LETS_ENCRYPT_STAGING.to_string(),
            Some(url) if url.starts_with("https://") && url.parse::<http::Uri>().is_ok() => url.to_string(),
            Some(url) => {
                self.problem(
                    &child(at, "directory"),
                    format!("{url:?} is not an https:// URL (or \"letsencrypt\", \"letsencrypt-staging\")"),
                );
                String::new()
            }
        };
        let challenge = match raw.challenge.as_deref() {
            None | Some("tls-alpn-01") => Challenge::TlsAlpn01,
            Some("http-01") => Challenge::Http01,
            Some(other) => {
                self.problem(&child(at, "challenge"), format!("{other:?}: expected \"tls-alpn-01\" or \"http-01\""));
                Challenge::TlsAlpn01
            }
        };
        let ca_file = raw.ca_file.map(|file| self.base_dir().join(file).display().to_string());
        if let Some(file) = &ca_file
            && let Err(e) = tls::client_config(&UpstreamTrust::CaFile(file.clone()))
        {
            self.problem(&child(at, "ca_file"), e);
        }
        if self.problems.len() > before {
            return None;
        }
        let cache_dir = self.base_dir().join(raw.cache_dir.as_deref().unwrap_or(DEFAULT_CACHE_DIR));
        Some(AcmeStore::shared(AcmeSettings { domains, contact, directory, cache_dir, challenge, ca_file }))
    }

    pub(super) fn listen_redirect(&mut self, raw: RawRedirect) -> Option<Redirect> {
        let at = [Step::Key("listen".into()), Step::Key("redirect".into())];
        let mut exempt = Vec::new();
        for (i, prefix) in raw.exempt.iter().enumerate() {
            let mut here = child(&at, "exempt");
            here.push(Step::Index(i));
            if let Some(path) = self.config_path(&here, prefix) {
                exempt.push(path.trim_end_matches('/').to_string());
            }
        }
        Some(Redirect { addrs: raw.addrs, exempt, https_port: raw.https_port.filter(|p| *p != 443) })
    }

    /// The TLS settings of an https upstream; `None` (and no problem) for http.
    pub(super) fn upstream_tls(
        &mut self,
        at: &[Step],
        raw: &RawUpstream,
        https: bool,
        host: &str,
    ) -> Option<UpstreamTls> {
        let has_tls_keys = raw.tls_ca_file.is_some()
            || raw.tls_server_name.is_some()
            || raw.tls_insecure_skip_verify.is_some()
            || raw.http2.is_some();
        if !https {
            if has_tls_keys {
                self.problem(
                    at,
                    "tls_ca_file, tls_server_name, tls_insecure_skip_verify and http2 need an https:// url",
                );
            }
            return None;
        }
        let trust = match (raw.tls_insecure_skip_verify.unwrap_or(false), &raw.tls_ca_file) {
            (true, Some(_)) => {
                self.problem(at, "set either tls_ca_file or tls_insecure_skip_verify, not both");
                return None;
            }
            (true, None) => UpstreamTrust::Insecure,
            (false, Some(file)) => UpstreamTrust::CaFile(self.base_dir().join(file).display().to_string()),
            (false, None) => UpstreamTrust::WebPki,
        };
        let http2 = raw.http2.unwrap_or(false);
        let client_config = match tls::client_config(&trust) {
            Ok(config) => std::sync::Arc::new(config),
            Err(e) => {
                self.problem(&child(at, "tls_ca_file"), e);
                return None;
            }
        };
        let name = raw.tls_server_name.clone().unwrap_or_else(|| host.trim_matches(['[', ']']).to_string());
        let Ok(server_name) = rustls::pki_types::ServerName::try_from(name.clone()) else {
            self.problem(&child(at, "tls_server_name"), format!("{name:?} is not a valid server name"));
            return None;
        };
        Some(UpstreamTls { trust, client_config, server_name, http2 })
    }
}

/// Why `name` cannot be in an ACME order with http-01 or tls-alpn-01, if it cannot.
fn acme_domain_problem(name: &str) -> Option<&'static str> {
    if name.starts_with("*.") {
        return Some("is a wildcard: wildcards need the dns-01 challenge, which hookgate does not do");
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Some("is an IP address; ACME here is for DNS names");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() > 253 || !name.contains('.') || !name.split('.').all(label_ok) {
        return Some("is not a fully qualified DNS name");
    }
    None
}

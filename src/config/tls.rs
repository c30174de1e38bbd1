//! Validation of `[listen.tls]`, `[listen.redirect]` and the TLS keys of
//! `[upstreams.NAME]`.
//!
//! Certificates and CA files are read here, so a reload with a broken
//! certificate fails as a whole and the previous one keeps serving.

use std::time::Duration;

use super::raw::{RawRedirect, RawTls, RawUpstream};
use super::validate::{Checker, child};
use super::{Redirect, Step, TlsListen, UpstreamTls};
use crate::tls::{self, UpstreamTrust};

const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_STREAMS: u32 = 100;

impl Checker<'_> {
    pub(super) fn listen_tls(&mut self, raw: RawTls) -> Option<TlsListen> {
        let at = [Step::Key("listen".into()), Step::Key("tls".into())];
        if raw.certificates.is_empty() {
            self.problem(&child(&at, "certificates"), "at least one { cert_file, key_file } is needed");
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
        let http2 = raw.http2.unwrap_or(true);
        let max_concurrent_streams = raw.max_concurrent_streams.unwrap_or(DEFAULT_MAX_STREAMS);
        if max_concurrent_streams == 0 {
            self.problem(&child(&at, "max_concurrent_streams"), "must be at least 1");
        }
        if certificates.len() != raw.certificates.len() {
            return None;
        }
        let server_config = match tls::server_config(&certificates, http2) {
            Ok(config) => config,
            Err(e) => {
                self.problem(&at, e);
                return None;
            }
        };
        Some(TlsListen {
            addrs: raw.addrs,
            certificates,
            server_config,
            handshake_timeout: raw.handshake_timeout.map_or(DEFAULT_HANDSHAKE_TIMEOUT, |d| d.0.0),
            http2,
            max_concurrent_streams,
        })
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

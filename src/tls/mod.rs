//! TLS: server certificates chosen by SNI, and client configs for https upstreams.
//!
//! Certificates from files are loaded (and checked: the key must match the
//! certificate) when the config is loaded, so a reload with a bad certificate
//! fails as a whole and the old one keeps serving. Certificates from ACME live
//! in an [`AcmeStore`] that the resolver reads at every handshake, so a renewed
//! one is served without a reload. Only TLS 1.2 and 1.3 are offered, with the
//! `ring` provider. Nothing here does IO on the request path.

mod acme_store;

pub use acme_store::{AcmeReport, AcmeSettings, AcmeStore, Challenge, StoreError};

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

/// The ALPN protocol of the tls-alpn-01 challenge (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Below this many days of validity left, `hookgate check` warns.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// One certificate chain with its key, ready to serve.
#[derive(Clone)]
pub struct LoadedCert {
    pub cert_file: String,
    /// DNS names from the certificate (subjectAltName, else the CN); `*.x` for wildcards.
    pub names: Vec<String>,
    /// Unix time the leaf certificate became valid.
    pub not_before: i64,
    /// Unix time the leaf certificate expires.
    pub not_after: i64,
    pub key: Arc<CertifiedKey>,
}

impl fmt::Debug for LoadedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedCert").field("cert_file", &self.cert_file).field("names", &self.names).finish()
    }
}

impl LoadedCert {
    /// Whole days of validity left at `now` (negative once expired).
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }
}

/// When a certificate with `days_left` expires, as `check` and the status
/// page say it: "has expired", "expires in 1 day", "expires in 5 days".
pub fn expiry_phrase(days_left: i64) -> String {
    match days_left {
        d if d < 0 => "has expired".to_string(),
        1 => "expires in 1 day".to_string(),
        days => format!("expires in {days} days"),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read {file}: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}: not a PEM certificate chain: {detail}")]
    NotPem { file: String, detail: String },
    #[error("{file} holds no certificate")]
    Empty { file: String },
    #[error("{file}: bad certificate: {detail}")]
    BadCertificate { file: String, detail: String },
    #[error("cannot read a private key from {file}: {detail}")]
    NoKey { file: String, detail: String },
    #[error("{key_file} does not match {cert_file}: {detail}")]
    Mismatch { cert_file: String, key_file: String, detail: String },
}

/// Loads a PEM chain and its PEM key; the key must match the leaf certificate.
pub fn load_certificate(cert_file: &str, key_file: &str) -> Result<LoadedCert, CertError> {
    let read = |file: &str| std::fs::read(file).map_err(|source| CertError::Read { file: file.to_string(), source });
    certificate_from_pem(&read(cert_file)?, &read(key_file)?, cert_file, key_file)
}

/// Parses a PEM chain and its PEM key (named `cert_file` and `key_file` in errors).
pub fn certificate_from_pem(
    chain_pem: &[u8],
    key_pem: &[u8],
    cert_file: &str,
    key_file: &str,
) -> Result<LoadedCert, CertError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::NotPem { file: cert_file.to_string(), detail: e.to_string() })?;
    let leaf = chain.first().ok_or_else(|| CertError::Empty { file: cert_file.to_string() })?;
    let (names, not_before, not_after) =
        describe(leaf).map_err(|e| CertError::BadCertificate { file: cert_file.to_string(), detail: e.to_string() })?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| CertError::NoKey { file: key_file.to_string(), detail: e.to_string() })?;
    let certified = CertifiedKey::from_der(chain, key, &provider()).map_err(|e| CertError::Mismatch {
        cert_file: cert_file.to_string(),
        key_file: key_file.to_string(),
        detail: e.to_string(),
    })?;
    Ok(LoadedCert { cert_file: cert_file.to_string(), names, not_before, not_after, key: Arc::new(certified) })
}

/// The DNS names, start and expiry of a certificate.
fn describe(
    der: &CertificateDer<'_>,
) -> Result<(Vec<String>, i64, i64), x509_parser::nom::Err<x509_parser::error::X509Error>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())?;
    let mut names: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push(dns.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        names.extend(cert.subject().iter_common_name().filter_map(|cn| cn.as_str().ok()).map(str::to_ascii_lowercase));
    }
    Ok((names, cert.validity().not_before.timestamp(), cert.validity().not_after.timestamp()))
}

/// Picks the certificate for the SNI name. Certificates from files come first
/// (in file order for a name two of them claim), then the ACME certificate for
/// its names, then wildcards from files; without a match, the first file
/// certificate, else the ACME one. A tls-alpn-01 handshake gets the challenge
/// certificate for its name and nothing else.
#[derive(Debug)]
pub struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `.example.com` → key, for `*.example.com` certificates.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
    acme: Option<Arc<AcmeStore>>,
}

impl SniResolver {
    pub fn new(certs: &[LoadedCert], acme: Option<Arc<AcmeStore>>) -> Self {
        let (mut exact, mut wildcard) = (HashMap::new(), HashMap::new());
        // Earlier certificates win when two claim the same name.
        for cert in certs.iter().rev() {
            for name in &cert.names {
                match name.strip_prefix('*') {
                    Some(suffix) => wildcard.insert(suffix.to_string(), cert.key.clone()),
                    None => exact.insert(name.clone(), cert.key.clone()),
                };
            }
        }
        SniResolver { exact, wildcard, default: certs.first().map(|c| c.key.clone()), acme }
    }

    fn pick(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        // The ACME certificate is only looked at when no file certificate names the host.
        let acme = || self.acme.as_ref().and_then(|store| store.current());
        let Some(name) = sni.map(str::to_ascii_lowercase) else {
            return self.default.clone().or_else(|| acme().map(|c| c.key.clone()));
        };
        if let Some(key) = self.exact.get(&name) {
            return Some(key.clone());
        }
        let acme = acme();
        if let Some(cert) = acme.as_ref().filter(|c| c.names.contains(&name)) {
            return Some(cert.key.clone());
        }
        let wildcard = name.find('.').and_then(|dot| self.wildcard.get(&name[dot..]));
        wildcard.or(self.default.as_ref()).cloned().or_else(|| acme.map(|c| c.key.clone()))
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if hello.alpn().is_some_and(|mut offered| offered.any(|p| p == ACME_TLS_ALPN)) {
            let name = hello.server_name()?;
            return self.acme.as_ref()?.challenge_certificate(name);
        }
        self.pick(hello.server_name())
    }
}

/// Why rustls would not build the server config (it refused the protocol versions).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ServerConfigError(#[from] rustls::Error);

/// The server config: TLS 1.2 and 1.3 only, SNI selection, ALPN `h2` (when
/// enabled) then `http/1.1`, and `acme-tls/1` last when tls-alpn-01 is in use
/// (only a client that offers nothing else gets it).
pub fn server_config(
    certs: &[LoadedCert],
    http2: bool,
    acme: Option<Arc<AcmeStore>>,
) -> Result<Arc<ServerConfig>, ServerConfigError> {
    let alpn_challenge = acme.as_ref().is_some_and(|a| a.settings().challenge == Challenge::TlsAlpn01);
    let resolver = SniResolver::new(certs, acme);
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    if http2 {
        config.alpn_protocols.push(b"h2".to_vec());
    }
    config.alpn_protocols.push(b"http/1.1".to_vec());
    // A client offering only `http/1.0` (`curl --http1.0`) is served as HTTP/1, as nginx does.
    config.alpn_protocols.push(b"http/1.0".to_vec());
    if alpn_challenge {
        config.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
    }
    Ok(Arc::new(config))
}

/// Why the CAs to trust could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read {file}: {detail}")]
    Read { file: String, detail: String },
    #[error("{file}: not a PEM certificate: {detail}")]
    NotPem { file: String, detail: String },
    #[error("{file}: unusable CA certificate: {detail}")]
    Unusable { file: String, detail: String },
    #[error("{file} holds no CA certificate")]
    Empty { file: String },
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
}

/// How an https upstream's certificate is checked.
#[derive(Debug, Clone)]
pub enum UpstreamTrust {
    /// Mozilla's roots (webpki-roots).
    WebPki,
    /// Only CAs from this PEM file.
    CaFile(String),
    /// No verification at all: `tls_insecure_skip_verify = true`.
    Insecure,
}

/// The client config for an https upstream. ALPN is left empty: the connector
/// sets it (`h2` only when the upstream's `http2 = true`).
pub fn client_config(trust: &UpstreamTrust) -> Result<ClientConfig, TrustError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let config = match trust {
        UpstreamTrust::WebPki => {
            let roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        UpstreamTrust::CaFile(file) => {
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(file)
                .map_err(|e| TrustError::Read { file: file.clone(), detail: e.to_string() })?;
            for cert in certs {
                let cert = cert.map_err(|e| TrustError::NotPem { file: file.clone(), detail: e.to_string() })?;
                roots.add(cert).map_err(|e| TrustError::Unusable { file: file.clone(), detail: e.to_string() })?;
            }
            if roots.is_empty() {
                return Err(TrustError::Empty { file: file.clone() });
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        UpstreamTrust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// Accepts any certificate; signatures are still checked so the handshake is sound.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `names`, as PEM chain and key.
    fn pem_for(names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn loaded(names: &[&str]) -> LoadedCert {
        let (chain, key) = pem_for(names);
        certificate_from_pem(chain.as_bytes(), key.as_bytes(), "c.pem", "k.pem").unwrap()
    }

    /// A store whose cache already holds a certificate for `names`.
    fn acme_with(names: &[&str]) -> (tempfile::TempDir, Arc<AcmeStore>) {
        let cache = tempfile::tempdir().unwrap();
        let settings = AcmeSettings {
            domains: names.iter().map(|n| n.to_string()).collect(),
            contact: None,
            directory: "https://ca.test/dir".to_string(),
            cache_dir: cache.path().to_path_buf(),
            challenge: Challenge::TlsAlpn01,
            ca_file: None,
        };
        let folder = cache.path().join("ca.test_dir");
        std::fs::create_dir_all(&folder).unwrap();
        let (chain, key) = pem_for(names);
        std::fs::write(folder.join("cert.pem"), chain).unwrap();
        std::fs::write(folder.join("key.pem"), key).unwrap();
        let store = AcmeStore::shared(settings);
        assert!(store.current().is_some(), "the cached certificate is loaded");
        (cache, store)
    }

    #[test]
    fn sni_mixes_file_and_acme_certificates() {
        let (_cache, acme) = acme_with(&["shop.test"]);
        let acme_key = acme.current().unwrap().key.clone();
        let file = loaded(&["a.test", "*.wild.test"]);
        let resolver = SniResolver::new(std::slice::from_ref(&file), Some(acme.clone()));
        let is = |sni: Option<&str>, want: &Arc<CertifiedKey>| Arc::ptr_eq(&resolver.pick(sni).unwrap(), want);
        assert!(is(Some("shop.test"), &acme_key), "ACME's name gets ACME's certificate");
        assert!(is(Some("SHOP.test"), &acme_key));
        assert!(is(Some("a.test"), &file.key));
        assert!(is(Some("x.wild.test"), &file.key));
        assert!(is(Some("other.test"), &file.key), "unknown names get the first file certificate");
        assert!(is(None, &file.key));

        let acme_only = SniResolver::new(&[], Some(acme));
        assert!(Arc::ptr_eq(&acme_only.pick(None).unwrap(), &acme_key), "without files, ACME's is the default");
        assert!(SniResolver::new(&[], None).pick(Some("a.test")).is_none());
    }

    #[test]
    fn tls_alpn_handshakes_get_only_an_open_challenge_certificate() {
        let (_cache, acme) = acme_with(&["alpn.test"]);
        assert!(acme.challenge_certificate("alpn.test").is_none());
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["alpn.test".to_string()]).unwrap().self_signed(&key).unwrap();
        let der = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
        acme.open_alpn_challenge("alpn.test", cert.der().clone(), der.into()).unwrap();
        assert!(acme.challenge_certificate("ALPN.test").is_some());
        acme.open_http_challenge("tok", "tok.thumb");
        assert_eq!(acme.http_answer("tok").as_deref(), Some("tok.thumb"));
        acme.close_challenges();
        assert!(acme.challenge_certificate("alpn.test").is_none());
        assert!(acme.http_answer("tok").is_none());
    }
}

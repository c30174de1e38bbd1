//! TLS: server certificates chosen by SNI, and client configs for https upstreams.
//!
//! Certificates are loaded (and checked: the key must match the certificate)
//! when the config is loaded, so a reload with a bad certificate fails as a
//! whole and the old one keeps serving. Only TLS 1.2 and 1.3 are offered, with
//! the `ring` provider. Nothing here does IO on the request path.

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

/// Below this many days of validity left, `hookgate check` warns.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// One certificate chain with its key, ready to serve.
#[derive(Clone)]
pub struct LoadedCert {
    pub cert_file: String,
    /// DNS names from the certificate (subjectAltName, else the CN); `*.x` for wildcards.
    pub names: Vec<String>,
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

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// Loads a PEM chain and its PEM key; the key must match the leaf certificate.
pub fn load_certificate(cert_file: &str, key_file: &str) -> Result<LoadedCert, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| format!("cannot read {cert_file}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{cert_file}: not a PEM certificate chain: {e}"))?;
    let leaf = chain.first().ok_or_else(|| format!("{cert_file} holds no certificate"))?;
    let (names, not_after) = describe(leaf).map_err(|e| format!("{cert_file}: {e}"))?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("cannot read a private key from {key_file}: {e}"))?;
    let certified = CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| format!("{key_file} does not match {cert_file}: {e}"))?;
    Ok(LoadedCert { cert_file: cert_file.to_string(), names, not_after, key: Arc::new(certified) })
}

/// The DNS names and expiry of a certificate.
fn describe(der: &CertificateDer<'_>) -> Result<(Vec<String>, i64), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| format!("bad certificate: {e}"))?;
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
    Ok((names, cert.validity().not_after.timestamp()))
}

/// Picks the certificate for the SNI name; the first certificate is the default.
#[derive(Debug)]
pub struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `.example.com` → key, for `*.example.com` certificates.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl SniResolver {
    pub fn new(certs: &[LoadedCert]) -> Option<Self> {
        let default = certs.first()?.key.clone();
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
        Some(SniResolver { exact, wildcard, default })
    }

    fn pick(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = sni.map(str::to_ascii_lowercase) else { return self.default.clone() };
        if let Some(key) = self.exact.get(&name) {
            return key.clone();
        }
        name.find('.').and_then(|dot| self.wildcard.get(&name[dot..])).cloned().unwrap_or_else(|| self.default.clone())
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.pick(hello.server_name()))
    }
}

/// The server config: TLS 1.2 and 1.3 only, SNI selection, ALPN `h2` (when
/// enabled) then `http/1.1`.
pub fn server_config(certs: &[LoadedCert], http2: bool) -> Result<Arc<ServerConfig>, String> {
    let resolver = SniResolver::new(certs).ok_or("no certificates")?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = if http2 { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { vec![b"http/1.1".to_vec()] };
    Ok(Arc::new(config))
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
pub fn client_config(trust: &UpstreamTrust) -> Result<ClientConfig, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?;
    let config = match trust {
        UpstreamTrust::WebPki => {
            let roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        UpstreamTrust::CaFile(file) => {
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(file).map_err(|e| format!("cannot read {file}: {e}"))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("{file}: not a PEM certificate: {e}"))?;
                roots.add(cert).map_err(|e| format!("{file}: unusable CA certificate: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("{file} holds no CA certificate"));
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

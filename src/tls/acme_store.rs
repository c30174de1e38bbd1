//! What ACME has obtained and what it is proving right now.
//!
//! The ACME client task (`crate::acme`) writes here; the TLS handshake (the SNI
//! resolver), the request path (http-01 answers) and the status page read.
//! With `[cluster]` a host also keeps, briefly, the tls-alpn-01 certificates
//! another host's order published in Redis (`lend_alpn_challenge`), and the
//! certificate the leader stored there is installed here like its own. A
//! process holds one store per distinct `[listen.tls.acme]` table: a reload
//! with the same table gets the same store back ([`AcmeStore::shared`]), so the
//! certificate, any challenge in progress and the client task carry over.
//!
//! The store also owns the layout of `cache_dir`, one folder per ACME
//! directory so that staging and production accounts never mix:
//!
//! ```text
//! cache_dir/                      0700
//!   <directory host and path>/    0700
//!     account.json                the ACME account (key and URL), 0600
//!     cert.pem                    the issued chain, leaf first
//!     key.pem                     its private key, 0600
//! ```
//!
//! Not here: the ACME protocol (`crate::acme`).

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::{CertError, LoadedCert, certificate_from_pem, provider};

/// How the ACME server checks that we control a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// A token served over plain HTTP on port 80.
    Http01,
    /// A special certificate in a TLS handshake on port 443 (RFC 8737).
    TlsAlpn01,
}

impl Challenge {
    pub fn name(self) -> &'static str {
        match self {
            Challenge::Http01 => "http-01",
            Challenge::TlsAlpn01 => "tls-alpn-01",
        }
    }
}

/// `[listen.tls.acme]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    /// Lower-case DNS names, all on one certificate.
    pub domains: Vec<String>,
    /// A `mailto:` URL, or none.
    pub contact: Option<String>,
    /// The ACME directory URL.
    pub directory: String,
    pub cache_dir: PathBuf,
    pub challenge: Challenge,
    /// CA certificates (PEM) that the ACME server's own certificate is checked against.
    pub ca_file: Option<String>,
}

/// Why the cache could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the ACME server sent an unusable certificate: {0}")]
    Certificate(#[from] CertError),
    #[error("cannot build the tls-alpn-01 certificate: {0}")]
    ChallengeCertificate(rustls::Error),
}

/// What the status page and `/readyz` show about ACME.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AcmeReport {
    /// `starting`, `obtaining`, `valid` or `failing`.
    pub state: &'static str,
    /// Failed attempts in a row.
    pub failures: u32,
    /// The last failure, with the ACME server's problem document.
    pub last_error: Option<String>,
    /// Unix times.
    pub last_success: Option<u64>,
    pub next_attempt: Option<u64>,
}

#[derive(Debug)]
pub struct AcmeStore {
    settings: AcmeSettings,
    current: ArcSwapOption<LoadedCert>,
    /// Domain → the tls-alpn-01 certificate for it, while its challenge is open.
    alpn: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    /// Token → key authorisation, while an http-01 challenge is open.
    http: Mutex<HashMap<String, String>>,
    /// Domain → a tls-alpn-01 certificate another host's order published
    /// (`[cluster]`), until the instant it is forgotten.
    lent: Mutex<HashMap<String, (Arc<CertifiedKey>, Instant)>>,
    report: Mutex<AcmeReport>,
}

/// A certificate chain and its key, as PEM.
pub type PemPair = (Vec<u8>, Vec<u8>);

/// How long a tls-alpn-01 certificate lent by another host is served: the CA
/// validates within seconds of the order asking; a later handshake looks again.
const LENT_FOR: Duration = Duration::from_secs(30);

/// The live stores, so that a reload with an unchanged table finds its own.
static STORES: Mutex<Vec<Weak<AcmeStore>>> = Mutex::new(Vec::new());

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl AcmeStore {
    /// The live store for these settings, or a new one holding the cached
    /// certificate (if `cache_dir` has one for this directory).
    pub fn shared(settings: AcmeSettings) -> Arc<AcmeStore> {
        let mut stores = lock(&STORES);
        stores.retain(|store| store.strong_count() > 0);
        if let Some(store) = stores.iter().filter_map(Weak::upgrade).find(|s| s.settings == settings) {
            return store;
        }
        let store = Arc::new(AcmeStore::new(settings));
        stores.push(Arc::downgrade(&store));
        store
    }

    fn new(settings: AcmeSettings) -> AcmeStore {
        let store = AcmeStore {
            settings,
            current: ArcSwapOption::empty(),
            alpn: Mutex::default(),
            http: Mutex::default(),
            lent: Mutex::default(),
            report: Mutex::new(AcmeReport { state: "starting", ..AcmeReport::default() }),
        };
        // A certificate for other names still serves those names until the new one arrives.
        match store.load_cached() {
            Ok(cached) => store.current.store(cached.map(Arc::new)),
            Err(e) => tracing::warn!("ignoring the cached ACME certificate: {e}"),
        }
        store
    }

    pub fn settings(&self) -> &AcmeSettings {
        &self.settings
    }

    /// The certificate being served, if ACME has one.
    pub fn current(&self) -> Option<Arc<LoadedCert>> {
        self.current.load_full()
    }

    /// Where this directory's account and certificate are kept.
    pub fn folder(&self) -> PathBuf {
        self.settings.cache_dir.join(self.slug())
    }

    /// The ACME directory as a name for a folder (or a Redis key): its host
    /// and path, each character other than a letter, digit, dot or dash as `_`.
    pub fn slug(&self) -> String {
        self.settings
            .directory
            .split_once("://")
            .map_or(&*self.settings.directory, |(_, rest)| rest)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
            .collect()
    }

    /// The cached chain and key, as `install` wrote them, if both are there.
    pub fn cached_pems(&self) -> Result<Option<PemPair>, StoreError> {
        Ok(read_if_present(&self.cert_path())?.zip(read_if_present(&self.key_path())?))
    }

    pub fn cert_path(&self) -> PathBuf {
        self.folder().join("cert.pem")
    }

    fn key_path(&self) -> PathBuf {
        self.folder().join("key.pem")
    }

    fn account_path(&self) -> PathBuf {
        self.folder().join("account.json")
    }

    fn load_cached(&self) -> Result<Option<LoadedCert>, StoreError> {
        let (cert_path, key_path) = (self.cert_path(), self.key_path());
        let (Some(chain), Some(key)) = (read_if_present(&cert_path)?, read_if_present(&key_path)?) else {
            return Ok(None);
        };
        let cert =
            certificate_from_pem(&chain, &key, &cert_path.display().to_string(), &key_path.display().to_string())?;
        Ok(Some(cert))
    }

    /// Creates `cache_dir` and this directory's folder, both 0700.
    pub fn prepare_folder(&self) -> Result<(), StoreError> {
        for dir in [self.settings.cache_dir.clone(), self.folder()] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)))
                .map_err(|source| StoreError::CreateDir { path: dir.clone(), source })?;
        }
        Ok(())
    }

    /// The saved account (JSON), if any.
    pub fn account(&self) -> Result<Option<Vec<u8>>, StoreError> {
        read_if_present(&self.account_path())
    }

    pub fn save_account(&self, json: &[u8]) -> Result<(), StoreError> {
        write_private(&self.account_path(), json)
    }

    pub fn forget_account(&self) -> Result<(), StoreError> {
        let path = self.account_path();
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Write { path, source: e }),
            _ => Ok(()),
        }
    }

    /// Checks a newly issued certificate, saves it and serves it from the next
    /// handshake on. Connections already open keep the one they started with.
    pub fn install(&self, chain_pem: &str, key_pem: &str) -> Result<Arc<LoadedCert>, StoreError> {
        let (cert_path, key_path) = (self.cert_path(), self.key_path());
        let cert = certificate_from_pem(
            chain_pem.as_bytes(),
            key_pem.as_bytes(),
            &cert_path.display().to_string(),
            &key_path.display().to_string(),
        )?;
        // The key first: a crash between the two leaves a cert.pem that does
        // not match key.pem, which the next start ignores and replaces.
        write_private(&key_path, key_pem.as_bytes())?;
        write_private(&cert_path, chain_pem.as_bytes())?;
        let cert = Arc::new(cert);
        self.current.store(Some(cert.clone()));
        Ok(cert)
    }

    /// Opens a tls-alpn-01 challenge: `domain`'s handshakes that offer only
    /// `acme-tls/1` get this certificate.
    pub fn open_alpn_challenge(
        &self,
        domain: &str,
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
    ) -> Result<(), StoreError> {
        lock(&self.alpn).insert(domain.to_string(), challenge_key(cert, key)?);
        Ok(())
    }

    /// Opens an http-01 challenge: `GET /.well-known/acme-challenge/<token>` answers `key_authorization`.
    pub fn open_http_challenge(&self, token: &str, key_authorization: &str) {
        lock(&self.http).insert(token.to_string(), key_authorization.to_string());
    }

    /// Ends every open challenge.
    pub fn close_challenges(&self) {
        lock(&self.alpn).clear();
        lock(&self.http).clear();
    }

    /// Keeps, for `LENT_FOR`, a tls-alpn-01 certificate that another host's
    /// order published: this host answers the CA's handshake for it.
    pub fn lend_alpn_challenge(
        &self,
        domain: &str,
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
    ) -> Result<(), StoreError> {
        let certified = challenge_key(cert, key)?;
        let mut lent = lock(&self.lent);
        let now = Instant::now();
        lent.retain(|_, (_, until)| *until > now);
        lent.insert(domain.to_ascii_lowercase(), (certified, now + LENT_FOR));
        Ok(())
    }

    pub fn challenge_certificate(&self, domain: &str) -> Option<Arc<CertifiedKey>> {
        let domain = domain.to_ascii_lowercase();
        if let Some(own) = lock(&self.alpn).get(&domain) {
            return Some(own.clone());
        }
        let lent = lock(&self.lent);
        lent.get(&domain).filter(|(_, until)| *until > Instant::now()).map(|(key, _)| key.clone())
    }

    /// The answer to an http-01 request for `token`, while its challenge is open.
    pub fn http_answer(&self, token: &str) -> Option<String> {
        lock(&self.http).get(token).cloned()
    }

    pub fn report(&self) -> AcmeReport {
        lock(&self.report).clone()
    }

    pub fn update_report(&self, change: impl FnOnce(&mut AcmeReport)) {
        change(&mut lock(&self.report));
    }
}

fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Read { path: path.to_path_buf(), source }),
    }
}

/// Writes a 0600 file next to `path`, then renames it over `path`, so a reader
/// sees the old file or the new one, never half of one.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let partial = path.with_extension("partial");
    let fail = |source| StoreError::Write { path: path.to_path_buf(), source };
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&partial).map_err(fail)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(fail)?;
    std::fs::rename(&partial, path).map_err(fail)
}

/// A tls-alpn-01 challenge certificate with its key, ready to present.
/// Not `CertifiedKey::from_der`: its check parses the certificate with
/// webpki, which refuses the critical acmeIdentifier extension.
fn challenge_key(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> Result<Arc<CertifiedKey>, StoreError> {
    let key = provider().key_provider.load_private_key(key).map_err(StoreError::ChallengeCertificate)?;
    Ok(Arc::new(CertifiedKey::new(vec![cert], key)))
}

//! ACME's state in Redis (`[cluster]`): the certificate the leader obtained,
//! and the challenges it is proving, so that every host serves the one and
//! answers the others.
//!
//! Keys, under the prefix, per ACME directory (the same slug as `cache_dir`'s folder):
//! - `acme:<directory>:cert` — the chain and key (PEM), kept until replaced;
//! - `acme:<directory>:http:<token>` — an http-01 key authorization;
//! - `acme:<directory>:alpn:<domain>` — a tls-alpn-01 certificate and key;
//!   challenges expire with the order (`CHALLENGE_TTL`).
//!
//! Every value is sealed with AES-256-GCM under SHA-256 of
//! `encryption_key_file`, a random nonce per write, and the Redis key as
//! associated data (a value moved to another key does not open). Sealing
//! keeps the private keys secret from whoever reads Redis, and it makes
//! Redis's bytes untrusted but checked: a host serves nothing it did not get
//! from a host holding the same key. Without the key nothing is shared
//! (`config` refuses `[cluster]` with `[listen.tls.acme]` and no key file).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use super::{Call, Cluster, ClusterError};
use crate::tls::AcmeStore;

/// How long a challenge answer stays in Redis: a whole order's time.
const CHALLENGE_TTL: Duration = Duration::from_secs(600);

/// The chain and key of a certificate, as PEM.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SharedCertificate {
    pub chain_pem: String,
    pub key_pem: String,
}

/// A tls-alpn-01 challenge certificate and its key (DER, base64).
#[derive(serde::Serialize, serde::Deserialize)]
struct AlpnAnswer {
    cert: String,
    key: String,
}

impl Cluster {
    /// Stores `cert` as the certificate of `store`'s directory.
    pub async fn share_certificate(&self, store: &AcmeStore, cert: &SharedCertificate) -> Result<(), ClusterError> {
        let json = serde_json::to_vec(cert).unwrap_or_default();
        self.put_sealed(&self.acme_key(store, "cert"), &json, None).await
    }

    /// The certificate another host stored, if any (`None` too for a value
    /// that does not open or parse: logged, never served).
    pub async fn shared_certificate(&self, store: &AcmeStore) -> Result<Option<SharedCertificate>, ClusterError> {
        let opened = self.get_sealed(&self.acme_key(store, "cert")).await?;
        Ok(opened.and_then(|bytes| parse(&bytes, "certificate")))
    }

    /// Publishes an http-01 answer for the order in progress.
    pub async fn share_http_challenge(&self, store: &AcmeStore, token: &str, answer: &str) -> Result<(), ClusterError> {
        let key = self.acme_key(store, &format!("http:{token}"));
        self.put_sealed(&key, answer.as_bytes(), Some(CHALLENGE_TTL)).await
    }

    /// The http-01 answer the leader published for `token`, if any.
    pub async fn http_challenge(&self, store: &AcmeStore, token: &str) -> Result<Option<String>, ClusterError> {
        let opened = self.get_sealed(&self.acme_key(store, &format!("http:{token}"))).await?;
        Ok(opened.and_then(|bytes| String::from_utf8(bytes).ok()))
    }

    /// Publishes a tls-alpn-01 certificate (DER) and its key (PKCS#8 DER) for `domain`.
    pub async fn share_alpn_challenge(
        &self,
        store: &AcmeStore,
        domain: &str,
        cert: &[u8],
        key: &[u8],
    ) -> Result<(), ClusterError> {
        let answer = AlpnAnswer { cert: BASE64.encode(cert), key: BASE64.encode(key) };
        let json = serde_json::to_vec(&answer).unwrap_or_default();
        self.put_sealed(&self.acme_key(store, &format!("alpn:{domain}")), &json, Some(CHALLENGE_TTL)).await
    }

    /// The tls-alpn-01 certificate and key (DER) the leader published for `domain`, if any.
    pub async fn alpn_challenge(
        &self,
        store: &AcmeStore,
        domain: &str,
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, ClusterError> {
        let opened = self.get_sealed(&self.acme_key(store, &format!("alpn:{domain}"))).await?;
        let Some(answer) = opened.and_then(|bytes| parse::<AlpnAnswer>(&bytes, "tls-alpn-01 answer")) else {
            return Ok(None);
        };
        Ok(BASE64.decode(answer.cert).ok().zip(BASE64.decode(answer.key).ok()))
    }

    fn acme_key(&self, store: &AcmeStore, what: &str) -> String {
        self.key("acme", &format!("{}:{what}", store.slug()))
    }

    async fn put_sealed(&self, key: &str, plain: &[u8], ttl: Option<Duration>) -> Result<(), ClusterError> {
        let sealed = seal(self.sealing_key()?, key, plain)?;
        let cmd = match ttl {
            Some(ttl) => redis::Cmd::pset_ex(key, sealed, ttl.as_millis() as u64),
            None => redis::Cmd::set(key, sealed),
        };
        self.call::<()>(Call::Acme, &cmd).await
    }

    async fn get_sealed(&self, key: &str) -> Result<Option<Vec<u8>>, ClusterError> {
        let sealing = self.sealing_key()?;
        let stored: Option<Vec<u8>> = self.call(Call::Acme, &redis::Cmd::get(key)).await?;
        let Some(sealed) = stored else { return Ok(None) };
        let opened = open(sealing, key, sealed);
        if opened.is_none() {
            tracing::warn!(%key, "cluster: a value in Redis does not open with this host's encryption_key_file; ignored");
        }
        Ok(opened)
    }

    fn sealing_key(&self) -> Result<&[u8], ClusterError> {
        self.settings.encryption_key.as_ref().map(|k| k.expose()).ok_or(ClusterError::NoEncryptionKey)
    }
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Option<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| tracing::warn!("cluster: ignoring the shared ACME {what} in Redis: {e}"))
        .ok()
}

/// The AEAD key: SHA-256 of the key file's bytes.
fn aead_key(file_bytes: &[u8]) -> LessSafeKey {
    let digest = ring::digest::digest(&ring::digest::SHA256, file_bytes);
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, digest.as_ref()).expect("a SHA-256 digest is an AES-256 key"))
}

/// nonce ‖ ciphertext ‖ tag, with `key_name` as associated data.
fn seal(file_bytes: &[u8], key_name: &str, plain: &[u8]) -> Result<Vec<u8>, ClusterError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).map_err(|_| ClusterError::Redis("no random nonce".into()))?;
    let mut sealed = plain.to_vec();
    aead_key(file_bytes)
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(key_name.as_bytes()), &mut sealed)
        .map_err(|_| ClusterError::Redis("cannot seal".into()))?;
    let mut out = nonce.to_vec();
    out.append(&mut sealed);
    Ok(out)
}

/// The plaintext, or `None` for bytes that are not a value sealed for `key_name` with this key.
fn open(file_bytes: &[u8], key_name: &str, mut sealed: Vec<u8>) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
        return None;
    }
    let mut body = sealed.split_off(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&sealed).ok()?;
    let plain = aead_key(file_bytes).open_in_place(nonce, Aad::from(key_name.as_bytes()), &mut body).ok()?;
    Some(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_key_and_under_their_own_name() {
        let key = b"0123456789abcdef0123456789abcdef";
        let sealed = seal(key, "hookgate:acme:x:cert", b"secret pem").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"), "the plaintext does not show");
        assert_eq!(open(key, "hookgate:acme:x:cert", sealed.clone()).as_deref(), Some(&b"secret pem"[..]));
        assert!(open(b"another key, just as long as one", "hookgate:acme:x:cert", sealed.clone()).is_none());
        assert!(open(key, "hookgate:acme:x:http:t", sealed.clone()).is_none(), "moved to another key");
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(open(key, "hookgate:acme:x:cert", flipped).is_none(), "tampered");
        assert!(open(key, "hookgate:acme:x:cert", b"short".to_vec()).is_none());
        assert_ne!(seal(key, "k", b"same").unwrap(), seal(key, "k", b"same").unwrap(), "a fresh nonce per write");
    }
}

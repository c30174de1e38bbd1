//! tls-alpn-01 handshakes answered from the cluster (`[cluster]`): the leader
//! orders, but the CA's validation handshake may reach any host. On a TLS
//! listener whose ACME challenge is tls-alpn-01, the ClientHello is read
//! first; when it offers only-`acme-tls/1` for one of the ACME names and this
//! host's store has no challenge certificate for it, the one the leader
//! published is fetched from Redis (and kept briefly, see
//! `AcmeStore::lend_alpn_challenge`) before the handshake goes on. Any other
//! handshake goes on at once, with no Redis call.

use std::io;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::Acceptor;
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use crate::cluster::Cluster;
use crate::tls::{ACME_TLS_ALPN, AcmeStore, Challenge};

pub(super) struct SharedAlpn {
    cluster: Arc<Cluster>,
    store: Arc<AcmeStore>,
    config: Arc<ServerConfig>,
}

impl SharedAlpn {
    /// Set up when the cluster shares a tls-alpn-01 ACME store.
    pub(super) fn of(
        cluster: Option<&Arc<Cluster>>,
        store: Option<&Arc<AcmeStore>>,
        config: &Arc<ServerConfig>,
    ) -> Option<SharedAlpn> {
        let store = store.filter(|s| s.settings().challenge == Challenge::TlsAlpn01)?;
        Some(SharedAlpn { cluster: cluster?.clone(), store: store.clone(), config: config.clone() })
    }

    pub(super) async fn accept(&self, stream: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        let start = LazyConfigAcceptor::new(Acceptor::default(), stream).await?;
        let challenged = {
            let hello = start.client_hello();
            let offers = hello.alpn().is_some_and(|mut offered| offered.any(|p| p == ACME_TLS_ALPN));
            hello.server_name().filter(|_| offers).map(str::to_ascii_lowercase)
        };
        if let Some(domain) = challenged {
            self.fetch(&domain).await;
        }
        start.into_stream(self.config.clone()).await
    }

    #[cold]
    async fn fetch(&self, domain: &str) {
        let ours = self.store.settings().domains.iter().any(|d| d == domain);
        // Asked even while this host counts Redis degraded: the leader may have reached it first.
        if !ours || self.store.challenge_certificate(domain).is_some() {
            return;
        }
        match self.cluster.alpn_challenge(&self.store, domain).await {
            Ok(Some((cert, key))) => {
                let key = rustls::pki_types::PrivatePkcs8KeyDer::from(key).into();
                if let Err(e) = self.store.lend_alpn_challenge(domain, cert.into(), key) {
                    tracing::warn!(%domain, "tls-alpn-01: the challenge certificate in Redis is unusable: {e}");
                }
            }
            Ok(None) => tracing::debug!(%domain, "tls-alpn-01: no challenge open for this name in the cluster"),
            Err(e) => tracing::debug!(%domain, "tls-alpn-01: cannot ask the cluster: {e}"),
        }
    }
}

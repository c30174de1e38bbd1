//! One ACME order, start to finish: account, order, challenges, certificate.
//!
//! The protocol is instant-acme's; what is ours is where the answers go (the
//! [`AcmeStore`], which the listeners read), the HTTP client (our own rustls
//! settings and `ca_file`, no system trust store needed), and errors that carry
//! the ACME server's problem document. With `[cluster]` each challenge is
//! also published in Redis before the server is told to validate, so that
//! whichever host the CA reaches answers it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType, HttpClient,
    Identifier, NewAccount, NewOrder, OrderStatus, Problem, RetryPolicy,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::cluster::{Cluster, ClusterError};
use crate::tls::{self, AcmeStore, Challenge, LoadedCert, StoreError, UpstreamTrust};

/// One request to the ACME server, connect included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the server may take to validate the challenges and to issue.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(120);

/// Why an order did not produce a certificate.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot set up the ACME client: {0}")]
    Trust(#[from] tls::TrustError),
    #[error("cannot make the tls-alpn-01 certificate: {0}")]
    ChallengeCertificate(#[from] rcgen::Error),
    #[error("cannot save the ACME account: {0}")]
    Account(#[from] serde_json::Error),
    /// From the ACME server or on the way to it; a problem document is spelled out.
    #[error("{}", describe(.0))]
    Protocol(#[from] instant_acme::Error),
    #[error("cannot share the challenge through the cluster's Redis: {0}")]
    Shared(#[from] ClusterError),
    #[error("the order became invalid: {0}")]
    Invalid(String),
    /// The whole order took longer than this (see `super::ORDER_LIMIT`).
    #[error("the order did not finish within {0:?}")]
    TimedOut(Duration),
}

/// An error with its problem document's fields, when the server sent one.
fn describe(error: &instant_acme::Error) -> String {
    match error {
        instant_acme::Error::Api(problem) => problem_text(problem),
        other => other.to_string(),
    }
}

fn problem_text(problem: &Problem) -> String {
    let mut text = format!(
        "ACME problem type={} status={} detail={:?}",
        problem.r#type.as_deref().unwrap_or("-"),
        problem.status.map_or("-".to_string(), |s| s.to_string()),
        problem.detail.as_deref().unwrap_or(""),
    );
    for sub in &problem.subproblems {
        text.push_str(&format!(
            "; subproblem type={} detail={:?}",
            sub.r#type.as_deref().unwrap_or("-"),
            sub.detail.as_deref().unwrap_or("")
        ));
    }
    text
}

/// Runs one order for every domain in the store's settings and installs the
/// certificate. `cluster`: where the challenges are published too.
pub async fn obtain(store: &AcmeStore, cluster: Option<&Cluster>) -> Result<Arc<LoadedCert>, OrderError> {
    store.prepare_folder()?;
    let http = AcmeHttp::new(store.settings().ca_file.as_deref())?;
    let account = account(store, &http).await?;
    let identifiers: Vec<Identifier> = store.settings().domains.iter().map(|d| Identifier::Dns(d.clone())).collect();
    let order = match account.new_order(&NewOrder::new(&identifiers)).await {
        Err(instant_acme::Error::Api(problem)) if is_unknown_account(&problem) => {
            // The server forgot us (a test server restarted, an account deactivated): start over once.
            tracing::warn!("the ACME server does not know the saved account; registering a new one");
            store.forget_account()?;
            account_with_new_registration(store, &http).await?.new_order(&NewOrder::new(&identifiers)).await?
        }
        other => other?,
    };
    let _open = OpenChallenges(store);
    finish(store, order, cluster).await
}

fn is_unknown_account(problem: &Problem) -> bool {
    problem.r#type.as_deref() == Some("urn:ietf:params:acme:error:accountDoesNotExist")
}

/// Closes the store's challenges however the order ends.
struct OpenChallenges<'a>(&'a AcmeStore);

impl Drop for OpenChallenges<'_> {
    fn drop(&mut self) {
        self.0.close_challenges();
    }
}

/// Answers each pending authorization, waits for validation, then finalises.
async fn finish(
    store: &AcmeStore,
    mut order: instant_acme::Order,
    cluster: Option<&Cluster>,
) -> Result<Arc<LoadedCert>, OrderError> {
    let challenge = store.settings().challenge;
    let kind = match challenge {
        Challenge::Http01 => ChallengeType::Http01,
        Challenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
    };
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            status => {
                return Err(OrderError::Invalid(format!("the authorization for {} is {status:?}", authz.identifier())));
            }
        }
        let name = authz.identifier().to_string();
        let Some(mut handle) = authz.challenge(kind.clone()) else {
            return Err(OrderError::Invalid(format!("the server offers no {} challenge for {name}", challenge.name())));
        };
        let key_authorization = handle.key_authorization();
        match challenge {
            Challenge::Http01 => {
                store.open_http_challenge(&handle.token, key_authorization.as_str());
                if let Some(cluster) = cluster {
                    cluster.share_http_challenge(store, &handle.token, key_authorization.as_str()).await?;
                }
            }
            Challenge::TlsAlpn01 => {
                let (cert, key) = alpn_certificate(&name, key_authorization.digest().as_ref())?;
                if let Some(cluster) = cluster {
                    cluster.share_alpn_challenge(store, &name, cert.as_ref(), key.secret_der()).await?;
                }
                store.open_alpn_challenge(&name, cert, key)?;
            }
        }
        handle.set_ready().await?;
    }
    let retries = RetryPolicy::new().timeout(VALIDATION_TIMEOUT);
    if order.poll_ready(&retries).await? != OrderStatus::Ready {
        return Err(OrderError::Invalid(failed_challenges(&mut order).await));
    }
    let key_pem = order.finalize().await?;
    let chain_pem = order.poll_certificate(&retries).await?;
    Ok(store.install(&chain_pem, &key_pem)?)
}

/// What the server said about each challenge of an invalid order.
async fn failed_challenges(order: &mut instant_acme::Order) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authz)) = authorizations.next().await {
        let Ok(state) = authz.refresh().await else { continue };
        for challenge in state.challenges.iter() {
            if let Some(problem) = &challenge.error {
                reasons.push(format!("{}: {}", state.identifier(), problem_text(problem)));
            }
        }
    }
    if reasons.is_empty() { "the server gave no reason".to_string() } else { reasons.join("; ") }
}

/// The self-signed certificate RFC 8737 §3 asks for: the name, and the key
/// authorisation's digest in a critical acmeIdentifier extension.
fn alpn_certificate(
    name: &str,
    digest: &[u8],
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), rcgen::Error> {
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()])?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.der().clone(), PrivatePkcs8KeyDer::from(key.serialize_der()).into()))
}

/// The saved account, or a new registration saved for next time.
async fn account(store: &AcmeStore, http: &AcmeHttp) -> Result<Account, OrderError> {
    if let Some(json) = store.account()? {
        match serde_json::from_slice::<AccountCredentials>(&json) {
            Ok(credentials) => {
                return Ok(Account::builder_with_http(http.boxed()).from_credentials(credentials).await?);
            }
            Err(e) => tracing::warn!("the saved ACME account is unreadable ({e}); registering a new one"),
        }
    }
    account_with_new_registration(store, http).await
}

async fn account_with_new_registration(store: &AcmeStore, http: &AcmeHttp) -> Result<Account, OrderError> {
    let settings = store.settings();
    let contact: Vec<&str> = settings.contact.iter().map(String::as_str).collect();
    let new = NewAccount { contact: &contact, terms_of_service_agreed: true, only_return_existing: false };
    let (account, credentials) =
        Account::builder_with_http(http.boxed()).create(&new, settings.directory.clone(), None).await?;
    let json = serde_json::to_vec(&credentials)?;
    store.save_account(&json)?;
    tracing::info!(directory = %settings.directory, "registered an ACME account");
    Ok(account)
}

/// The HTTP client instant-acme talks through: https only, our TLS settings.
#[derive(Clone)]
struct AcmeHttp(Client<HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>);

impl AcmeHttp {
    fn new(ca_file: Option<&str>) -> Result<Self, OrderError> {
        let trust = ca_file.map_or(UpstreamTrust::WebPki, |file| UpstreamTrust::CaFile(file.to_string()));
        let tls = tls::client_config(&trust)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(REQUEST_TIMEOUT));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        Ok(AcmeHttp(Client::builder(TokioExecutor::new()).build(connector)))
    }

    fn boxed(&self) -> Box<dyn HttpClient> {
        Box::new(self.clone())
    }
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.0.request(req));
        Box::pin(async move {
            match response.await {
                Ok(Ok(response)) => Ok(BytesResponse::from(response)),
                Ok(Err(e)) => Err(instant_acme::Error::Other(Box::new(e))),
                Err(_) => Err(instant_acme::Error::Other(format!("no answer within {REQUEST_TIMEOUT:?}").into())),
            }
        })
    }
}

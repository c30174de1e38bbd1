//! http-01 answers from the cluster (`[cluster]`): the leader orders, but the
//! CA's validation request may reach any host. A host whose own store has no
//! answer for a `/.well-known/acme-challenge/<token>` request asks Redis for
//! the one the leader published, and answers 404 when there is none.
//!
//! Only those paths, only GET and HEAD, only well-formed tokens: nothing else
//! on the request path touches Redis here. It is asked even while this host
//! counts it degraded: the leader may have reached it first after an outage,
//! and the CA asks only a few times.

use std::sync::Arc;

use http::header::{self, HeaderValue};

use super::State;
use crate::cluster::Cluster;
use crate::routes::LocalResponse;
use crate::tls::AcmeStore;

const PREFIX: &str = "/.well-known/acme-challenge/";

/// An http-01 request this host has no answer for, to be asked of Redis.
pub struct ChallengeLookup {
    cluster: Arc<Cluster>,
    store: Arc<AcmeStore>,
    token: String,
}

/// The lookup for `path`, when it is a challenge this host cannot answer itself.
#[inline(always)]
pub(super) fn shared_challenge(state: &State, method: &http::Method, path: &str) -> Option<ChallengeLookup> {
    let cluster = state.cluster.as_ref()?;
    let token = path.strip_prefix(PREFIX)?;
    lookup(state, cluster, method, token)
}

#[cold]
fn lookup(state: &State, cluster: &Arc<Cluster>, method: &http::Method, token: &str) -> Option<ChallengeLookup> {
    let store = state.config.listen.tls.as_ref()?.acme.as_ref()?;
    let well_formed =
        (1..=128).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let get = method == http::Method::GET || method == http::Method::HEAD;
    if !well_formed || !get || store.http_answer(token).is_some() {
        return None;
    }
    Some(ChallengeLookup { cluster: cluster.clone(), store: store.clone(), token: token.to_string() })
}

impl ChallengeLookup {
    /// The leader's answer, or 404 (none, or Redis did not answer).
    pub async fn answer(self) -> LocalResponse {
        let mut headers = http::HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        match self.cluster.http_challenge(&self.store, &self.token).await {
            Ok(Some(answer)) => LocalResponse::new(http::StatusCode::OK, answer, headers),
            _ => LocalResponse::new(http::StatusCode::NOT_FOUND, "no such ACME challenge\n".to_string(), headers),
        }
    }
}

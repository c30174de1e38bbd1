//! ACME with `[cluster]`: one order for all the hosts.
//!
//! Only the leader orders: it checks its lease (`still_leads`) before the
//! order starts and again before it stores the result. The certificate and
//! its key go to Redis, sealed (`cluster::acme`); every host (the leader too,
//! on taking over) first looks there and serves a newer certificate than its
//! own, writing it to its `cache_dir` so that a restart without Redis still
//! serves it. A leader whose own certificate is newer than Redis's (or Redis
//! has none) stores its own.
//!
//! A follower looks in Redis every `FOLLOW_POLL` while it has no certificate
//! or its certificate is due (which is when the leader orders), else when
//! renewal is due (at most an hour apart), and at once when it becomes
//! leader. While Redis is unreachable no host leads, so none orders, and each
//! keeps serving what it holds. A new leader waits `SETTLE` before its first
//! order, so that hosts rejoining after an outage can answer the CA.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{due_in, order_once, report_valid};
use crate::cluster::{Cluster, ClusterError, Fence, SharedCertificate};
use crate::metrics::{Metrics, unix_now};
use crate::tls::{AcmeStore, LoadedCert, certificate_from_pem};

/// How often a host without a usable certificate looks for the leader's.
const FOLLOW_POLL: Duration = Duration::from_secs(2);
/// A new leader orders no sooner than this after taking the lease: the CA
/// may validate on any host, and after an outage of Redis the others rejoin
/// within a probe (a second) or two.
const SETTLE: Duration = Duration::from_secs(3);

pub(super) async fn keep_certified(store: Arc<AcmeStore>, metrics: Arc<Metrics>, cluster: Arc<Cluster>) {
    let mut leadership = cluster.watch_leadership();
    let mut failures = 0u32;
    // The fence this host leads with, and since when.
    let mut leading: Option<(u64, Instant)> = None;
    // No order before this (after a failed one): a lease lost and taken back does not skip the delay.
    let mut not_before = Instant::now();
    loop {
        let wait = match cluster.leadership() {
            Some(fence) => {
                if leading.is_none_or(|(number, _)| number != fence.number) {
                    leading = Some((fence.number, Instant::now()));
                }
                let settled_at = leading.map_or(not_before, |(_, since)| (since + SETTLE).max(not_before));
                let settling = settled_at.saturating_duration_since(Instant::now());
                let outcome = lead(&store, &metrics, &cluster, (&fence, settling), &mut failures).await;
                match outcome {
                    Look::Again(wait) => wait,
                    Look::Failed(delay) => {
                        not_before = Instant::now() + delay;
                        delay
                    }
                }
            }
            None => follow(&store, &cluster, failures).await,
        };
        // A host that becomes leader (or stops leading) looks again at once.
        if let Ok(Err(_)) = tokio::time::timeout(wait, leadership.changed()).await {
            tokio::time::sleep(wait).await;
        }
    }
}

/// What a leader's look ended with.
enum Look {
    /// Look again after this long.
    Again(Duration),
    /// The order failed: no order before this long.
    Failed(Duration),
}

/// One look as the leader: take a newer certificate from Redis or store
/// ours; order when due and settled.
async fn lead(
    store: &AcmeStore,
    metrics: &Metrics,
    cluster: &Cluster,
    (fence, settling): (&Fence, Duration),
    failures: &mut u32,
) -> Look {
    if sync(store, cluster, Some(fence)).await.is_err() {
        // Without Redis this host cannot tell what the others hold: no order.
        return Look::Again(FOLLOW_POLL);
    }
    let now = unix_now() as i64;
    let wait = due_in(store.current().as_deref(), &store.settings().domains, now);
    if wait > 0 {
        return Look::Again(report_valid(store, *failures, now, wait));
    }
    if !settling.is_zero() {
        return Look::Again(settling);
    }
    if !cluster.still_leads(fence).await {
        return Look::Again(FOLLOW_POLL);
    }
    match order_once(store, metrics, Some(cluster), failures).await {
        Ok(_) if cluster.still_leads(fence).await => {
            if let Err(e) = publish(store, cluster).await {
                tracing::warn!("ACME: cannot store the new certificate in Redis ({e}); trying again at the next look");
                return Look::Again(FOLLOW_POLL);
            }
            Look::Again(Duration::ZERO)
        }
        Ok(_) => {
            tracing::warn!(
                "ACME: the lease passed to another host during the order; this host serves the certificate but does not store it in Redis"
            );
            Look::Again(Duration::ZERO)
        }
        Err(delay) => Look::Failed(delay),
    }
}

/// One look as a follower: serve the leader's certificate if newer.
async fn follow(store: &AcmeStore, cluster: &Cluster, failures: u32) -> Duration {
    if let Err(e) = sync(store, cluster, None).await {
        tracing::debug!("ACME: cannot look for the leader's certificate: {e}");
    }
    let now = unix_now() as i64;
    let wait = due_in(store.current().as_deref(), &store.settings().domains, now);
    if wait > 0 {
        return report_valid(store, failures, now, wait);
    }
    store.update_report(|r| r.state = "following");
    FOLLOW_POLL
}

/// Serves the certificate in Redis when it is newer than this host's; with
/// `fence` (leading), stores this host's when it is the newer one.
async fn sync(store: &AcmeStore, cluster: &Cluster, fence: Option<&Fence>) -> Result<(), ClusterError> {
    let shared = cluster.shared_certificate(store).await?;
    let theirs = shared.as_ref().and_then(|s| parse(s, store));
    let ours = store.current();
    let expiry = |cert: &Option<Arc<LoadedCert>>| cert.as_ref().map_or(i64::MIN, |c| c.not_after);
    if let (Some(shared), true) = (&shared, expiry(&theirs) > expiry(&ours)) {
        match store.prepare_folder().and_then(|()| store.install(&shared.chain_pem, &shared.key_pem)) {
            Ok(cert) => {
                let days_left = cert.days_left(unix_now() as i64);
                tracing::info!(domains = %store.settings().domains.join(", "), days_left, "ACME: serving the certificate the cluster's leader stored in Redis");
            }
            Err(e) => tracing::warn!("ACME: cannot keep the certificate from Redis: {e}"),
        }
        return Ok(());
    }
    if let Some(fence) = fence
        && expiry(&ours) > expiry(&theirs)
        && cluster.still_leads(fence).await
    {
        publish(store, cluster).await?;
    }
    Ok(())
}

/// The certificate in Redis, if it parses and its key matches.
fn parse(shared: &SharedCertificate, store: &AcmeStore) -> Option<Arc<LoadedCert>> {
    let cert = certificate_from_pem(shared.chain_pem.as_bytes(), shared.key_pem.as_bytes(), "(redis)", "(redis)");
    cert.map_err(
        |e| tracing::warn!(directory = %store.settings().directory, "ACME: ignoring the certificate in Redis: {e}"),
    )
    .ok()
    .map(Arc::new)
}

/// Stores this host's certificate (as cached) in Redis for the others.
async fn publish(store: &AcmeStore, cluster: &Cluster) -> Result<(), ClusterError> {
    let Ok(Some((chain, key))) = store.cached_pems() else { return Ok(()) };
    let cert = SharedCertificate {
        chain_pem: String::from_utf8_lossy(&chain).into_owned(),
        key_pem: String::from_utf8_lossy(&key).into_owned(),
    };
    cluster.share_certificate(store, &cert).await?;
    tracing::info!(domains = %store.settings().domains.join(", "), "ACME: stored the certificate in Redis for the cluster's other hosts");
    Ok(())
}

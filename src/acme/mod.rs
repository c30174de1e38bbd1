//! Obtains and renews the `[listen.tls.acme]` certificate.
//!
//! One task per [`AcmeStore`]. It sleeps until the certificate is due, then
//! runs one order (`order::obtain`). Due means: none yet, a configured name
//! missing from it, or less than min(30 days, a third of its lifetime) left,
//! so a 90-day certificate renews 30 days before it expires. A new certificate
//! is saved to `cache_dir` and served from the next handshake on; open
//! connections keep theirs, as on a reload. A failed order logs one line with
//! the ACME server's problem document and is retried after 1 minute, doubling
//! up to 6 hours; the certificate already held keeps serving meanwhile.
//!
//! Restarts reuse `cache_dir`: a valid cached certificate means no order at
//! all, which keeps well inside the CA's rate limits.
//!
//! With `[cluster]` the task is `shared`'s: only the leader orders, and every
//! host serves the certificate the leader stored in Redis.

mod order;
mod shared;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::config::Config;
use crate::metrics::{Metrics, unix_now};
use crate::tls::{AcmeStore, LoadedCert};

/// Renewal starts this long before expiry, or at a third of the lifetime left if that is sooner.
const RENEW_BEFORE: i64 = 30 * 86_400;
const FIRST_RETRY: Duration = Duration::from_secs(60);
const LONGEST_RETRY: Duration = Duration::from_secs(6 * 3600);
/// A sleeping task looks again at least this often (the clock may jump).
const LONGEST_SLEEP: Duration = Duration::from_secs(3600);
/// One whole order, however the server behaves.
const ORDER_LIMIT: Duration = Duration::from_secs(600);

/// The running ACME task, if the config has `[listen.tls.acme]`.
#[derive(Default)]
pub struct Supervisor {
    running: Option<(Arc<AcmeStore>, JoinHandle<()>)>,
}

impl Supervisor {
    /// Keeps one task for `config`'s store: starts it, replaces it when a reload
    /// changed `[listen.tls.acme]` (an unchanged table keeps its store, and so its
    /// task), or stops it when the table is gone. `cluster`: the hosts it shares with.
    pub fn follow(&mut self, config: &Config, metrics: &Arc<Metrics>, cluster: Option<&Arc<Cluster>>) {
        let wanted = config.listen.tls.as_ref().and_then(|tls| tls.acme.clone());
        if let (Some((running, _)), Some(wanted)) = (&self.running, &wanted)
            && Arc::ptr_eq(running, wanted)
        {
            return;
        }
        self.stop();
        if let Some(store) = wanted {
            let domains = store.settings().domains.join(", ");
            tracing::info!(%domains, challenge = store.settings().challenge.name(), directory = %store.settings().directory, "ACME: managing the certificate");
            let task = match cluster {
                Some(cluster) => tokio::spawn(shared::keep_certified(store.clone(), metrics.clone(), cluster.clone())),
                None => tokio::spawn(keep_certified(store.clone(), metrics.clone())),
            };
            self.running = Some((store, task));
        }
    }

    pub fn stop(&mut self) {
        if let Some((_, task)) = self.running.take() {
            task.abort();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Seconds until `cert` should be replaced (0: now).
fn due_in(cert: Option<&LoadedCert>, domains: &[String], now: i64) -> i64 {
    let Some(cert) = cert.filter(|c| domains.iter().all(|d| c.names.contains(d))) else { return 0 };
    let lifetime = (cert.not_after - cert.not_before).max(0);
    let renew_at = cert.not_after - RENEW_BEFORE.min(lifetime / 3);
    (renew_at - now).max(0)
}

fn retry_delay(failures: u32) -> Duration {
    FIRST_RETRY.saturating_mul(1 << failures.saturating_sub(1).min(16)).min(LONGEST_RETRY)
}

async fn keep_certified(store: Arc<AcmeStore>, metrics: Arc<Metrics>) {
    let domains = store.settings().domains.join(", ");
    let mut failures = 0u32;
    let mut first = true;
    loop {
        let now = unix_now() as i64;
        let wait = due_in(store.current().as_deref(), &store.settings().domains, now);
        if wait > 0 && first {
            let due = humantime::format_duration(Duration::from_secs(wait as u64));
            tracing::info!(%domains, "ACME: serving the cached certificate; renewal due in {due}");
        }
        first = false;
        if wait > 0 {
            tokio::time::sleep(report_valid(&store, failures, now, wait)).await;
            continue;
        }
        if let Err(delay) = order_once(&store, &metrics, None, &mut failures).await {
            tokio::time::sleep(delay).await;
        }
    }
}

/// Says the certificate is valid until renewal is due in `wait` seconds;
/// returns how long to sleep.
fn report_valid(store: &AcmeStore, failures: u32, now: i64, wait: i64) -> Duration {
    store.update_report(|r| {
        r.state = if failures == 0 { "valid" } else { r.state };
        r.next_attempt = Some((now + wait) as u64);
    });
    Duration::from_secs(wait as u64).min(LONGEST_SLEEP)
}

/// One order, logged, counted and reported. `Err`: how long to wait before the next.
async fn order_once(
    store: &AcmeStore,
    metrics: &Metrics,
    cluster: Option<&Cluster>,
    failures: &mut u32,
) -> Result<Arc<LoadedCert>, Duration> {
    let domains = store.settings().domains.join(", ");
    store.update_report(|r| r.state = "obtaining");
    let outcome = match tokio::time::timeout(ORDER_LIMIT, order::obtain(store, cluster)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(order::OrderError::TimedOut(ORDER_LIMIT)),
    };
    let now = unix_now() as u64;
    match outcome {
        Ok(cert) => {
            *failures = 0;
            metrics.acme_attempt("success");
            metrics.certificate_expiry(&cert.cert_file, cert.days_left(now as i64));
            tracing::info!(%domains, days_left = cert.days_left(now as i64), "ACME: obtained a certificate; serving it from the next handshake");
            store.update_report(|r| {
                r.state = "valid";
                r.last_success = Some(now);
                r.failures = 0;
            });
            Ok(cert)
        }
        Err(e) => {
            *failures += 1;
            let delay = retry_delay(*failures);
            metrics.acme_attempt("failure");
            let serving = if store.current().is_some() {
                "the current certificate keeps serving"
            } else {
                "no certificate to serve yet"
            };
            tracing::error!(%domains, attempt = *failures, "ACME: obtaining a certificate failed: {e}; {serving}; next attempt in {}", humantime::format_duration(delay));
            store.update_report(|r| {
                r.state = "failing";
                r.failures = *failures;
                r.last_error = Some(e.to_string());
                r.next_attempt = Some(now + delay.as_secs());
            });
            Err(delay)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(names: &[&str], not_before: i64, not_after: i64) -> LoadedCert {
        let key = rcgen::KeyPair::generate().unwrap();
        let issued = rcgen::CertificateParams::new(vec!["a.example".to_string()]).unwrap().self_signed(&key).unwrap();
        let pem = crate::tls::certificate_from_pem(issued.pem().as_bytes(), key.serialize_pem().as_bytes(), "c", "k");
        LoadedCert { names: names.iter().map(|n| n.to_string()).collect(), not_before, not_after, ..pem.unwrap() }
    }

    #[test]
    fn renewal_is_due_at_thirty_days_or_a_third_of_the_lifetime() {
        let domains = vec!["a.example".to_string()];
        let day = 86_400;
        // A 90-day certificate: 30 days before expiry.
        let ninety = cert(&["a.example"], 0, 90 * day);
        assert_eq!(due_in(Some(&ninety), &domains, 0), 60 * day);
        assert_eq!(due_in(Some(&ninety), &domains, 61 * day), 0);
        // A 30-second certificate (a test CA): with 10 seconds left.
        let short = cert(&["a.example"], 1000, 1030);
        assert_eq!(due_in(Some(&short), &domains, 1000), 20);
        // None yet, or a configured name missing: now.
        assert_eq!(due_in(None, &domains, 0), 0);
        let other = cert(&["b.example"], 0, 90 * day);
        assert_eq!(due_in(Some(&other), &domains, 0), 0);
    }

    #[test]
    fn retries_back_off_from_a_minute_to_six_hours() {
        let delays: Vec<u64> = [1, 2, 3, 9, 40].iter().map(|f| retry_delay(*f).as_secs()).collect();
        assert_eq!(delays, vec![60, 120, 240, 60 << 8, 6 * 3600]);
    }
}

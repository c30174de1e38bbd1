//! The status page's certificates: each served certificate with its days
//! left (amber, then red, as expiry nears: trouble), and `[listen.tls.acme]`
//! with how obtaining its certificate goes (failing: trouble).

use serde::Serialize;

use super::{AMBER_DAYS, RED_DAYS};
use crate::config::Config;

#[derive(Debug, Serialize)]
pub struct Certificate {
    pub file: String,
    pub names: Vec<String>,
    pub days_left: i64,
    /// `ok`, `amber` (under 14 days) or `red` (under 3).
    pub level: &'static str,
}

/// `[listen.tls.acme]`: what it manages and how the last attempt went.
#[derive(Debug, Serialize)]
pub struct Acme {
    pub domains: Vec<String>,
    pub challenge: &'static str,
    pub directory: String,
    #[serde(flatten)]
    pub report: crate::tls::AcmeReport,
}

/// Every certificate the TLS listener serves, with its days left.
pub(super) fn served(config: &Config, now: u64, trouble: &mut Vec<String>) -> Vec<Certificate> {
    let served = config.listen.tls.iter().flat_map(|t| t.served_certificates());
    served
        .map(|c| {
            let days_left = c.days_left(now as i64);
            let level = match days_left {
                d if d < RED_DAYS => "red",
                d if d < AMBER_DAYS => "amber",
                _ => "ok",
            };
            if level != "ok" {
                trouble.push(format!("certificate {} {}", c.cert_file, crate::tls::expiry_phrase(days_left)));
            }
            Certificate { file: c.cert_file.clone(), names: c.names.clone(), days_left, level }
        })
        .collect()
}

/// `[listen.tls.acme]` and how obtaining its certificate goes; failing is trouble.
pub(super) fn acme(config: &Config, trouble: &mut Vec<String>) -> Option<Acme> {
    let store = config.listen.tls.as_ref()?.acme.as_ref()?;
    let settings = store.settings();
    let report = store.report();
    if let Some(error) = report.last_error.as_ref().filter(|_| report.state == "failing") {
        trouble.push(format!("ACME is failing ({} attempts): {error}", report.failures));
    }
    Some(Acme {
        domains: settings.domains.clone(),
        challenge: settings.challenge.name(),
        directory: settings.directory.clone(),
        report,
    })
}

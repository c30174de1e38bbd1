//! The status page's signatures section: per route with `verify`, its scheme,
//! its mode and the verdicts since the daemon started.

use serde::Serialize;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::recent::Verdicts;

/// A `verify` route's scheme, mode and verdicts since the daemon started.
#[derive(Debug, Serialize)]
pub struct Signatures {
    pub route: String,
    pub scheme: &'static str,
    /// `enforce` or `log`.
    pub mode: &'static str,
    pub verdicts: Verdicts,
}

/// Every route with `verify`: what it checks and what it found.
pub fn section(config: &Config, metrics: &Metrics) -> Vec<Signatures> {
    let verifying = config.routes.routes().iter().filter_map(|r| Some((r, r.guards.verify.as_ref()?)));
    verifying
        .map(|(route, verify)| Signatures {
            route: route.name.to_string(),
            scheme: verify.scheme.name(),
            mode: verify.mode.as_str(),
            verdicts: metrics.route_window(&route.name).verdicts(),
        })
        .collect()
}

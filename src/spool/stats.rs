//! What each route's kept requests have done, as the depot counts it and
//! the status page and `/metrics` show it.

/// What one route's kept requests have done since the daemon started
/// (dead letters: how many are kept now).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RouteStats {
    pub stored: u64,
    pub delivered: u64,
    pub dead_total: u64,
    /// Dead letters kept now.
    pub dead: u64,
    /// Requests that could not be kept (answered 503).
    pub not_kept: u64,
    pub last_error: Option<String>,
}

/// A route's spool as the status page and `/metrics` show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RouteReport {
    pub route: String,
    pub waiting: usize,
    pub in_flight: usize,
    /// Unix milliseconds of the oldest waiting request.
    pub oldest_ms: Option<i64>,
    #[serde(flatten)]
    pub stats: RouteStats,
}

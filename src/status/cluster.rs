//! The status page's and `hookgate status`'s cluster section (`[cluster]`):
//! this node, the Redis it shares state through, whether it reaches it, and
//! which node leads. A degraded host (Redis unreachable) is trouble: its
//! dedupe and rate limits are per host until Redis answers, and nobody
//! repairs the webhook or orders certificates meanwhile.

use crate::cluster::ClusterReport;
use crate::telegram::cli::age;

/// The cluster's part of the snapshot, with a `trouble` line while degraded.
pub fn section(report: ClusterReport, trouble: &mut Vec<String>) -> ClusterReport {
    if report.state == "degraded" {
        let error = report.last_error.as_deref().unwrap_or("no answer yet");
        trouble.push(format!(
            "cluster: degraded for {}: Redis {} failed ({error}); dedupe and rate limits are per host, \
             and no host repairs the webhook or orders certificates, until it answers",
            age(report.for_seconds),
            report.redis
        ));
    }
    report
}

/// One line, as both the page and the terminal say it:
/// `node edge-1: sharing state through redis://10.0.0.5:6379/0 (for 5 min); leader edge-2`.
pub fn line(node: &str, redis: &str, state: &str, for_seconds: u64, leader: Option<&str>, is_leader: bool) -> String {
    let leader = match (is_leader, leader) {
        (true, _) => "this node leads".to_string(),
        (false, Some(leader)) => format!("leader {leader}"),
        (false, None) => "no leader".to_string(),
    };
    let what = match state {
        "degraded" => format!("degraded: not sharing through {redis}"),
        "sharing" => format!("sharing state through {redis}"),
        _ => format!("connecting to {redis}"),
    };
    format!("node {node}: {what} (for {}); {leader}", age(for_seconds))
}

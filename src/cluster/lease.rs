//! The leader lease: one host at a time repairs the Telegram webhook and
//! orders ACME certificates.
//!
//! The lease is one Redis key holding `node#N`, set with `SET NX PX lease`.
//! `N` comes from a counter that only grows (`INCR`), so each new holding
//! has a fencing value no earlier one had. The holder renews at a third of
//! the lease; the others try to take it ten times a lease, so a killed
//! leader's lease passes within `lease` and a tenth. A host that cannot reach
//! Redis stops leading at once (it cannot renew, and cannot be sure). Before
//! each action the leader checks that the key still holds its own value
//! (`still_holds`): a host that stalled past its lease, and whose lease
//! another took, does not act. At shutdown the lease is deleted if still
//! ours, so another host takes it within a tenth of a lease. A host that
//! stepped down for an outage of Redis takes its lease back when Redis
//! answers and the key still holds its value (nobody took it meanwhile).

use std::sync::Weak;
use std::time::Duration;

use redis::Script;

use super::{Call, Cluster, lock};

/// This host's hold on the lease: the value it wrote, checked before acting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// `node#N`, as in Redis.
    value: String,
    /// `N`: grows with every new holding, whoever holds it.
    pub number: u64,
}

/// Takes the lease when free, or renews it when the value is ours (ARGV[3]);
/// returns {1, value} when this host holds it, {0, holder} when another does.
/// The fencing counter never goes below the caller's clock in milliseconds
/// (ARGV[4]), so it still grows after Redis restarts empty.
const TAKE_OR_RENEW: &str = r"
local held = redis.call('GET', KEYS[1])
if held then
  if held == ARGV[3] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, held}
  end
  return {0, held}
end
local fence = redis.call('INCR', KEYS[2])
if fence < tonumber(ARGV[4]) then
  fence = tonumber(ARGV[4])
  redis.call('SET', KEYS[2], ARGV[4])
end
local value = ARGV[1] .. '#' .. fence
if redis.call('SET', KEYS[1], value, 'NX', 'PX', ARGV[2]) then
  return {1, value}
end
return {0, redis.call('GET', KEYS[1]) or ''}
";

/// Deletes the lease if it still holds ARGV[1].
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Keeps trying to take, or renewing, the lease while the cluster lives.
pub(super) async fn hold(cluster: Weak<Cluster>) {
    let script = Script::new(TAKE_OR_RENEW);
    // The value this host last held, kept when it stepped down for an outage
    // of Redis: if the key still holds it when Redis answers again, nobody
    // took the lease meanwhile, and this host takes it back at once rather
    // than leaving the cluster without a leader until it expires.
    let mut last_held = String::new();
    let mut warned_twin = false;
    loop {
        let Some(cluster) = cluster.upgrade() else { return };
        if cluster.stopping.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let lease = cluster.settings.lease;
        let ours = cluster.leadership().map_or_else(|| last_held.clone(), |fence| fence.value);
        let mut invocation = script.key(cluster.key("lease", "leader"));
        invocation.key(cluster.key("lease", "fence")).arg(cluster.node()).arg(lease.as_millis() as u64).arg(&ours);
        invocation.arg((crate::metrics::unix_now() * 1000.0) as u64);
        match cluster.invoke::<(u8, String)>(Call::Lease, &invocation).await {
            Ok((1, value)) => {
                let number = value.rsplit_once('#').and_then(|(_, n)| n.parse().ok()).unwrap_or(0);
                last_held.clone_from(&value);
                lead(&cluster, Some(Fence { value, number }));
            }
            Ok((_, holder)) => {
                last_held.clear();
                lead(&cluster, None);
                let node = node_of(&holder);
                if node == cluster.node() && !warned_twin {
                    warned_twin = true;
                    tracing::warn!(
                        node,
                        "cluster: another host holds the lease under this host's node name; give each host its own [cluster] node"
                    );
                }
                *lock(&cluster.leader) = Some(node.to_string()).filter(|n| !n.is_empty());
            }
            // `mark_down` has given the lease up.
            Err(_) => *lock(&cluster.leader) = None,
        }
        let wait = if cluster.leadership().is_some() { lease / 3 } else { lease / 10 };
        drop(cluster);
        tokio::time::sleep(wait.max(Duration::from_millis(100))).await;
    }
}

/// Records this host as leading (`Some`) or not, and says so when it changes.
fn lead(cluster: &Cluster, fence: Option<Fence>) {
    // A renewal that raced an outage: `mark_down` has stepped down, and
    // taking the lease back now would leave a degraded host leading.
    let fence = fence.filter(|_| cluster.is_up());
    let node = cluster.node();
    if fence.is_some() {
        *lock(&cluster.leader) = Some(node.to_string());
    }
    let before = hold_as(cluster, fence.clone());
    match (&fence, before) {
        (Some(fence), before) if before.as_ref() != Some(fence) => {
            tracing::info!(%node, fence = fence.number, "cluster: this host is the leader (Telegram repair, ACME orders)");
        }
        (None, Some(_)) => tracing::warn!(%node, "cluster: this host lost the lease to another"),
        _ => {}
    }
}

/// Sets this host's hold on the lease (`None`: it does not lead) and the
/// leader gauge with it; returns the hold it replaced.
fn hold_as(cluster: &Cluster, fence: Option<Fence>) -> Option<Fence> {
    cluster.metrics.leader.set(if fence.is_some() { 1.0 } else { 0.0 });
    let mut before = None;
    cluster.leadership.send_if_modified(|held| {
        let changed = *held != fence;
        before = std::mem::replace(held, fence);
        changed
    });
    before
}

/// Stops leading, if this host led, for `why`; which host leads is unknown now.
pub(super) fn step_down(cluster: &Cluster, why: &str) {
    *lock(&cluster.leader) = None;
    if hold_as(cluster, None).is_some() {
        tracing::warn!(node = %cluster.node(), "cluster: this host stops leading: {why}");
    }
}

/// The node name in a lease value `node#N`.
fn node_of(value: &str) -> &str {
    value.rsplit_once('#').map_or(value, |(node, _)| node)
}

pub(super) async fn still_holds(cluster: &Cluster, fence: &Fence) -> bool {
    let get = redis::Cmd::get(cluster.key("lease", "leader"));
    match cluster.call::<Option<String>>(Call::Lease, &get).await {
        Ok(held) if held.as_deref() == Some(fence.value.as_str()) => true,
        Ok(held) => {
            tracing::warn!(node = %cluster.node(), fence = fence.number, holder = held.as_deref().map(node_of), "cluster: the lease passed to another host; not acting");
            lead(cluster, None);
            false
        }
        Err(_) => false,
    }
}

pub(super) async fn release(cluster: &Cluster) {
    let Some(fence) = cluster.leadership() else { return };
    let script = Script::new(RELEASE);
    let mut invocation = script.key(cluster.key("lease", "leader"));
    invocation.arg(&fence.value);
    if cluster.invoke::<u8>(Call::Lease, &invocation).await.is_ok() {
        tracing::info!(node = %cluster.node(), "cluster: lease released");
    }
    hold_as(cluster, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_value_names_its_node() {
        assert_eq!(node_of("edge-1#17"), "edge-1");
        assert_eq!(node_of("edge#2#3"), "edge#2");
        assert_eq!(node_of("odd"), "odd");
    }
}

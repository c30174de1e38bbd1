//! The leader's view of the webhook, shared (`[cluster]`): a follower makes
//! no Bot API call, so without this its `/readyz` and status page would know
//! nothing of the webhook, and its verdict would say healthy while Telegram
//! cannot reach the backend. The leader publishes what each round learned
//! (its `/readyz` line, the view and the last repair) under
//! `<prefix>telegram:view`; followers show it, naming the leader.
//!
//! The value lives three monitor intervals (at least a minute): a leader that
//! died stops being quoted, and the follower says the leader watches, with
//! none seen yet. The value is untrusted: one that does not parse is ignored.

use std::time::Duration;

use super::webhook_status::{LeaderView, WebhookStatus};
use crate::cluster::{Call, Cluster, ClusterError};

fn key(cluster: &Cluster) -> String {
    cluster.key("telegram", "view")
}

/// Publishes what `status` holds after a round of this host's (the leader's).
pub(super) async fn publish(cluster: &Cluster, status: &WebhookStatus, interval: Duration) {
    let shared = LeaderView {
        node: cluster.node().to_string(),
        diagnosis: status.get(),
        view: status.view(),
        repair: status.last_repair(),
    };
    let keep = (interval * 3).max(Duration::from_secs(60));
    let _ = cluster.set_json(Call::Lease, &key(cluster), &shared, keep).await;
}

/// The leader's last round, if one is shared (`None` too for a value that does not parse).
pub(super) async fn fetch(cluster: &Cluster) -> Result<Option<LeaderView>, ClusterError> {
    cluster.get_json(Call::Lease, &key(cluster), "the Telegram webhook view").await
}

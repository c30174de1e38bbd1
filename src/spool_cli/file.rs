//! `hookgate spool` on the spool file, when no daemon runs (`super` says
//! when that is): the same reads as the daemon's endpoints, and changes made
//! with the store's own operations (`revive`, `delete`), which a daemon's
//! queues take up when it next starts. A folder without a spool file holds
//! nothing, and is left without one.

use std::path::Path;

use super::{Done, ToolError};
use crate::cli::SpoolAction;
use crate::config::Config;
use crate::spool::show::{Shown, redacted};
use crate::spool::{FILE_NAME, Spool, SpoolError, Stored, read};

/// Does `action` on the spool file of `config`.
pub(super) async fn run(config: &Config, action: &SpoolAction) -> Result<Done, ToolError> {
    let path = config.spool.dir.join(FILE_NAME);
    if !path.exists() {
        return absent(action, &path);
    }
    let spool = Spool::open(&config.spool.dir, config.spool.max_bytes).map_err(unusable)?;
    match action {
        SpoolAction::List { .. } => {
            let filter = super::filter(action);
            let listed = spool.read(move |conn| read::list(conn, &filter)).await.map_err(unusable)?;
            Ok(Done::Listed(listed.into_iter().map(redacted).collect()))
        }
        SpoolAction::Show { id } => {
            let stored = stored(&spool, *id).await?;
            let route = config.routes.routes().iter().find(|r| *r.name == *stored.summary.route);
            let secret = route.and_then(|r| r.guards.secret_header.as_ref()).map(|s| s.name.as_str());
            Ok(Done::Shown(Box::new(Shown::of(&stored, secret))))
        }
        SpoolAction::Retry { id: Some(id), .. } => {
            if !stored(&spool, *id).await?.summary.dead {
                return Err(ToolError::NotFound(format!(
                    "request {id} is not a dead letter: it waits for its next attempt"
                )));
            }
            spool.revive(*id).await.map_err(unusable)?;
            Ok(Done::Retried(vec![*id]))
        }
        SpoolAction::Retry { id: None, route, .. } => {
            let route = route.clone();
            let ids = spool.read(move |conn| read::dead_ids(conn, route.as_deref())).await.map_err(unusable)?;
            for id in &ids {
                spool.revive(*id).await.map_err(unusable)?;
            }
            Ok(Done::Retried(ids))
        }
        SpoolAction::Drop { id } => match spool.delete(*id).await.map_err(unusable)? {
            true => Ok(Done::Dropped(*id)),
            false => Err(not_found(*id)),
        },
    }
}

/// What `action` finds where there is no spool file: nothing.
fn absent(action: &SpoolAction, path: &Path) -> Result<Done, ToolError> {
    match action {
        SpoolAction::List { .. } => Ok(Done::Listed(Vec::new())),
        SpoolAction::Retry { id: None, .. } => Ok(Done::Retried(Vec::new())),
        SpoolAction::Show { id } | SpoolAction::Drop { id } | SpoolAction::Retry { id: Some(id), .. } => {
            Err(ToolError::NotFound(format!("no request {id} in the spool: there is no {}", path.display())))
        }
    }
}

async fn stored(spool: &Spool, id: i64) -> Result<Stored, ToolError> {
    spool.read(move |conn| read::stored(conn, id)).await.map_err(unusable)?.ok_or_else(|| not_found(id))
}

fn not_found(id: i64) -> ToolError {
    ToolError::NotFound(format!("no request {id} in the spool"))
}

fn unusable(error: SpoolError) -> ToolError {
    match error {
        SpoolError::InUse { .. } => ToolError::Unavailable(format!(
            "{error}; ask that daemon through the [admin] of its own config, or stop it first"
        )),
        other => ToolError::Unavailable(other.to_string()),
    }
}

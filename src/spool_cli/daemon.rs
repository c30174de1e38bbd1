//! `hookgate spool` through the running daemon: each action is one request
//! to its `/spool` endpoints (see `admin`), whose answer becomes a `Done`,
//! or a `ToolError` that carries the daemon's one line.

use std::net::SocketAddr;

use http::Method;
use serde::Deserialize;

use super::{Done, ToolError};
use crate::cli::SpoolAction;
use crate::control;
use crate::secret::Secret;
use crate::spool::Summary;

/// Asks the daemon at `admin`. `Err`: it could not be asked at all
/// (`control::refused_connection` says whether nothing listens there).
pub(super) async fn run(
    admin: SocketAddr,
    token: Option<&Secret>,
    action: &SpoolAction,
) -> anyhow::Result<Result<Done, ToolError>> {
    let (method, path) = request(action);
    let (status, body) = control::spool(admin, token, method, &path).await?;
    Ok(done(action, status, &body))
}

/// The endpoint that does `action`.
fn request(action: &SpoolAction) -> (Method, String) {
    match action {
        SpoolAction::List { route, dead } => (Method::GET, format!("/spool{}", query(route.as_deref(), *dead))),
        SpoolAction::Show { id } => (Method::GET, format!("/spool/{id}")),
        SpoolAction::Retry { id: Some(id), .. } => (Method::POST, format!("/spool/{id}/retry")),
        SpoolAction::Retry { id: None, route, .. } => {
            (Method::POST, format!("/spool/dead/retry{}", query(route.as_deref(), false)))
        }
        SpoolAction::Drop { id } => (Method::POST, format!("/spool/{id}/drop")),
    }
}

/// `?route=NAME&dead=1`, or nothing.
fn query(route: Option<&str>, dead: bool) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(route) = route {
        query.append_pair("route", route);
    }
    if dead {
        query.append_pair("dead", "1");
    }
    let query = query.finish();
    if query.is_empty() { query } else { format!("?{query}") }
}

/// What the daemon's answer says: 404 and 409 are "not there" (exit 1).
fn done(action: &SpoolAction, status: u16, body: &str) -> Result<Done, ToolError> {
    let line = body.trim();
    match status {
        200 => parse(action, body)
            .map_err(|e| ToolError::Unavailable(format!("the daemon's answer is not what this hookgate expects: {e}"))),
        404 | 409 => Err(ToolError::NotFound(line.to_string())),
        _ => Err(ToolError::Unavailable(format!("the daemon answered {status}: {line}"))),
    }
}

fn parse(action: &SpoolAction, body: &str) -> serde_json::Result<Done> {
    #[derive(Deserialize)]
    struct Listed {
        requests: Vec<Summary>,
    }
    #[derive(Deserialize)]
    struct Retried {
        retried: Vec<i64>,
    }
    #[derive(Deserialize)]
    struct Dropped {
        dropped: i64,
    }
    Ok(match action {
        SpoolAction::List { .. } => Done::Listed(serde_json::from_str::<Listed>(body)?.requests),
        SpoolAction::Show { .. } => Done::Shown(Box::new(serde_json::from_str(body)?)),
        SpoolAction::Retry { .. } => Done::Retried(serde_json::from_str::<Retried>(body)?.retried),
        SpoolAction::Drop { .. } => Done::Dropped(serde_json::from_str::<Dropped>(body)?.dropped),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_is_one_endpoint() {
        let table = [
            (SpoolAction::List { route: None, dead: false }, "GET", "/spool"),
            (
                SpoolAction::List { route: Some("pay notify".into()), dead: true },
                "GET",
                "/spool?route=pay+notify&dead=1",
            ),
            (SpoolAction::Show { id: 4 }, "GET", "/spool/4"),
            (SpoolAction::Retry { id: Some(4), dead: false, route: None }, "POST", "/spool/4/retry"),
            (
                SpoolAction::Retry { id: None, dead: true, route: Some("tg".into()) },
                "POST",
                "/spool/dead/retry?route=tg",
            ),
            (SpoolAction::Drop { id: 4 }, "POST", "/spool/4/drop"),
        ];
        for (action, method, path) in table {
            let (m, p) = request(&action);
            assert_eq!((m.as_str(), p.as_str()), (method, path));
        }
    }

    #[test]
    fn answers_become_outcomes() {
        let drop = SpoolAction::Drop { id: 4 };
        assert!(matches!(done(&drop, 200, "{\"dropped\": 4}"), Ok(Done::Dropped(4))));
        assert!(
            matches!(done(&drop, 404, "no request 4 in the spool\n"), Err(ToolError::NotFound(m)) if m == "no request 4 in the spool")
        );
        assert!(
            matches!(done(&drop, 503, "the spool is off: ...\n"), Err(ToolError::Unavailable(m)) if m.starts_with("the daemon answered 503"))
        );
        assert!(matches!(done(&drop, 200, "not json"), Err(ToolError::Unavailable(_))));
    }
}

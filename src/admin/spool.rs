//! The spool's admin endpoints, which `hookgate spool` calls while the daemon
//! runs: list, show one (secrets redacted), retry dead letters, drop one.
//! Answers are JSON; a refusal is one line of text (404 for an id the spool
//! does not hold, 409 for a retry or a drop of a request being forwarded or delivered right now
//! (a waiting one is attempted at once, skipping the rest of its back-off),
//! 503 while the spool is off or broken). Also what `/readyz` and `/metrics`
//! say of the spool. Not for the rules of who may ask (`gate`), nor for
//! what is kept and delivered (`spool`, `delivery`).

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use super::{Admin, not_allowed, text, typed};
use crate::delivery::Health;
use crate::metrics::SpoolRouteSeries;
use crate::spool::depot::{self, Depot, unix_ms};
use crate::spool::show::{Shown, redacted};
use crate::spool::{Filter, SpoolError, read};
use crate::status::spool::routes;

/// What a path under `/spool` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    /// `GET /spool?route=NAME&dead=1`
    List,
    /// `GET /spool/ID`
    Show(i64),
    /// `POST /spool/ID/retry`
    Retry(i64),
    /// `POST /spool/dead/retry?route=NAME`
    RetryDead,
    /// `POST /spool/ID/drop`
    Drop(i64),
}

impl Endpoint {
    /// The endpoint `path` names; `None` when it names none (404).
    fn of(path: &str) -> Option<Endpoint> {
        let rest = path.strip_prefix("/spool").filter(|rest| rest.is_empty() || rest.starts_with('/'))?;
        let id = |text: &str| text.parse::<i64>().ok();
        match rest.split('/').skip(1).collect::<Vec<_>>().as_slice() {
            [] | [""] => Some(Endpoint::List),
            ["dead", "retry"] => Some(Endpoint::RetryDead),
            [n] => id(n).map(Endpoint::Show),
            [n, "retry"] => id(n).map(Endpoint::Retry),
            [n, "drop"] => id(n).map(Endpoint::Drop),
            _ => None,
        }
    }

    /// What `GET` serves; the rest change the spool and take `POST` only.
    fn reads(&self) -> bool {
        matches!(self, Endpoint::List | Endpoint::Show(_))
    }
}

/// Why a spool endpoint did not do what it was asked; the message is the
/// answer's one line.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("no request {0} in the spool")]
    NotFound(i64),
    #[error("request {0} is being forwarded or delivered now")]
    Busy(i64),
    #[error("the spool is off: no route has store and there is no spool file")]
    Off,
    #[error("the spool is unusable: {0}")]
    Broken(String),
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::NotFound(_) => StatusCode::NOT_FOUND,
            Refusal::Busy(_) => StatusCode::CONFLICT,
            Refusal::Off | Refusal::Broken(_) | Refusal::Spool(SpoolError::Closed) => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Spool(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// `?route=NAME&dead=1`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Query {
    route: Option<String>,
    dead: bool,
}

impl Query {
    fn of(query: Option<&str>) -> Query {
        let mut parsed = Query::default();
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match &*name {
                "route" if !value.is_empty() => parsed.route = Some(value.into_owned()),
                "dead" => parsed.dead = matches!(&*value, "" | "1" | "true" | "yes"),
                _ => {}
            }
        }
        parsed
    }
}

/// Whether `path` is one of the spool's (they all start `/spool`).
pub(super) fn is_spool_path(path: &str) -> bool {
    path == "/spool" || path.starts_with("/spool/")
}

/// Answers a request for a path under `/spool` (`method` is `GET` for `HEAD`).
pub(super) async fn answer(admin: &Admin, method: &Method, path: &str, query: Option<&str>) -> Response<Full<Bytes>> {
    let Some(endpoint) = Endpoint::of(path) else {
        return text(StatusCode::NOT_FOUND, "not found\n".to_string());
    };
    match (endpoint.reads(), method) {
        (true, &Method::GET) | (false, &Method::POST) => {}
        (true, _) => return not_allowed("GET, HEAD"),
        (false, _) => return not_allowed("POST"),
    }
    match serve(admin, endpoint, Query::of(query)).await {
        Ok(json) => typed(StatusCode::OK, json, "application/json"),
        Err(refusal) => text(refusal.status(), format!("{}\n", refusal.to_string().replace('\n', " "))),
    }
}

async fn serve(admin: &Admin, endpoint: Endpoint, query: Query) -> Result<String, Refusal> {
    let depot = match &**admin.spool.load() {
        Health::Open(depot) => depot.clone(),
        Health::Off => return Err(Refusal::Off),
        Health::Broken(error) => return Err(Refusal::Broken(error.clone())),
    };
    match endpoint {
        Endpoint::List => {
            let filter = Filter { route: query.route, dead: query.dead };
            let listed = depot.spool().read(move |conn| read::list(conn, &filter)).await?;
            Ok(json(&Listed { requests: listed.into_iter().map(redacted).collect() }))
        }
        Endpoint::Show(id) => {
            let stored = depot.spool().read(move |conn| read::stored(conn, id)).await?.ok_or(Refusal::NotFound(id))?;
            let state = admin.state.load();
            let route = state.config.routes.routes().iter().find(|r| *r.name == *stored.summary.route);
            let secret = route.and_then(|r| r.guards.secret_header.as_ref()).map(|s| s.name.as_str());
            Ok(json(&Shown::of(&stored, secret)))
        }
        Endpoint::Retry(id) => Ok(json(&Retried { retried: vec![retry(&depot, id).await?] })),
        Endpoint::RetryDead => {
            let route = query.route;
            let ids = depot.spool().read(move |conn| read::dead_ids(conn, route.as_deref())).await?;
            let mut retried = Vec::with_capacity(ids.len());
            for id in ids {
                // One retried or dropped meanwhile is not an error here.
                if depot.retry_dead(id).await? {
                    retried.push(id);
                }
            }
            Ok(json(&Retried { retried }))
        }
        Endpoint::Drop(id) => match depot.drop_request(id).await? {
            depot::Dropped::Done => Ok(json(&Dropped { dropped: id })),
            depot::Dropped::NotKept => Err(Refusal::NotFound(id)),
            depot::Dropped::Delivering => Err(Refusal::Busy(id)),
        },
    }
}

/// Puts the dead letter `id` back in its queue, or makes the waiting
/// request `id` due now (skipping the rest of its back-off).
async fn retry(depot: &Arc<Depot>, id: i64) -> Result<i64, Refusal> {
    if depot.retry_dead(id).await? || depot.retry_now(id) {
        return Ok(id);
    }
    match depot.spool().read(move |conn| read::stored(conn, id)).await? {
        Some(_) => Err(Refusal::Busy(id)),
        None => Err(Refusal::NotFound(id)),
    }
}

#[derive(Serialize)]
struct Listed {
    requests: Vec<read::Summary>,
}

#[derive(Serialize)]
struct Retried {
    retried: Vec<i64>,
}

#[derive(Serialize)]
struct Dropped {
    dropped: i64,
}

fn json(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// `/readyz`'s spool line: only when the spool could not be opened. The
/// daemon stays ready: it serves, and its `store` routes forward live.
pub(super) fn readyz_line(admin: &Admin) -> String {
    match &**admin.spool.load() {
        Health::Broken(error) => format!("spool: unusable: {}\n", error.replace('\n', " ")),
        Health::Off | Health::Open(_) => String::new(),
    }
}

/// Sets the spool's series from the rows the status page shows (see `metrics::spool`).
pub(super) fn refresh_metrics(admin: &Admin) {
    let Health::Open(depot) = &**admin.spool.load() else {
        admin.metrics.spool(None, &[]);
        return;
    };
    let rows = routes(depot, &admin.state.load().config, unix_ms());
    let series: Vec<SpoolRouteSeries<'_>> = rows
        .iter()
        .map(|r| SpoolRouteSeries {
            route: &r.route,
            stored: r.stored,
            delivered: r.delivered,
            dead_total: r.dead_total,
            not_kept: r.not_kept,
            dead: r.dead,
            waiting: r.waiting as u64,
            oldest_seconds: r.oldest_seconds.unwrap_or(0),
        })
        .collect();
    admin.metrics.spool(Some(depot.spool().used_bytes()), &series);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_endpoints() {
        let table = [
            ("/spool", Some(Endpoint::List)),
            ("/spool/", Some(Endpoint::List)),
            ("/spool/42", Some(Endpoint::Show(42))),
            ("/spool/42/retry", Some(Endpoint::Retry(42))),
            ("/spool/42/drop", Some(Endpoint::Drop(42))),
            ("/spool/dead/retry", Some(Endpoint::RetryDead)),
            ("/spool/x", None),
            ("/spool/42/delete", None),
            ("/spool/42/retry/now", None),
            ("/spool//", None),
            ("/spoolx", None),
        ];
        for (path, want) in table {
            assert_eq!(Endpoint::of(path), want, "{path}");
        }
        assert!(!is_spool_path("/spoolx") && is_spool_path("/spool") && is_spool_path("/spool/1"));
    }

    #[test]
    fn queries_name_a_route_and_dead_letters() {
        assert_eq!(Query::of(None), Query::default());
        assert_eq!(
            Query::of(Some("route=pay%20notify&dead=1")),
            Query { route: Some("pay notify".into()), dead: true }
        );
        assert_eq!(Query::of(Some("dead=0&route=")), Query::default());
    }

    #[test]
    fn each_refusal_has_its_status_and_one_line() {
        let table = [
            (Refusal::NotFound(3), 404, "no request 3 in the spool"),
            (Refusal::Busy(3), 409, "request 3 is being forwarded or delivered now"),
            (Refusal::Off, 503, "the spool is off: no route has store and there is no spool file"),
            (Refusal::Broken("bad file".into()), 503, "the spool is unusable: bad file"),
            (Refusal::Spool(SpoolError::Closed), 503, "the spool is closed"),
        ];
        for (refusal, status, message) in table {
            assert_eq!((refusal.status().as_u16(), refusal.to_string().as_str()), (status, message));
        }
    }
}

//! Reading the spool: what is waiting (at start-up), one request whole (to
//! deliver or show it), and the list the operator's tools print. Reads use a
//! connection of their own, beside the writer's (WAL lets both go at once).

use rusqlite::{Connection, OptionalExtension, Row};

/// A waiting request as the delivery queues hold it (no head, no body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: i64,
    pub route: String,
    pub upstream: String,
    pub queue: String,
    pub received_ms: i64,
    pub expires_ms: i64,
    pub attempts: u32,
}

/// One kept request, whole.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stored {
    #[serde(flatten)]
    pub summary: Summary,
    #[serde(skip)]
    pub head: Vec<u8>,
    #[serde(skip)]
    pub body: Vec<u8>,
    #[serde(skip)]
    pub last_answer: Vec<u8>,
}

/// One kept request as `hookgate spool list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub id: i64,
    pub route: String,
    pub upstream: String,
    pub queue: String,
    /// The request line's method and target.
    pub method: String,
    pub target: String,
    pub received_ms: i64,
    pub expires_ms: i64,
    pub size: u64,
    pub dead: bool,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: String,
}

/// Which requests a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub route: Option<String>,
    /// Dead letters only; otherwise the waiting ones only.
    pub dead: bool,
}

/// The columns `summary` reads, as a literal so that statements built on it
/// are constants (and `stored`'s can be cached).
macro_rules! summary_columns {
    () => {
        "id, route, upstream, queue, received_ms, expires_ms, size, dead, attempts, last_status, last_error, \
         substr(head, 1, 512)"
    };
}

/// Every waiting request, oldest first.
pub fn pending(conn: &Connection) -> rusqlite::Result<Vec<Pending>> {
    let mut select = conn.prepare(
        "SELECT id, route, upstream, queue, received_ms, expires_ms, attempts FROM requests WHERE dead = 0 ORDER BY id",
    )?;
    let rows = select.query_map([], |row| {
        Ok(Pending {
            id: row.get(0)?,
            route: row.get(1)?,
            upstream: row.get(2)?,
            queue: row.get(3)?,
            received_ms: row.get(4)?,
            expires_ms: row.get(5)?,
            attempts: row.get(6)?,
        })
    })?;
    rows.collect()
}

/// One request whole, if it is kept. Read once per delivery attempt, so its
/// statement is prepared once per connection (`prepare_cached`): parsing it
/// each time was 55,000 of the 185,000 instructions of a delivery.
pub fn stored(conn: &Connection, id: i64) -> rusqlite::Result<Option<Stored>> {
    const SQL: &str = concat!("SELECT ", summary_columns!(), ", head, body, last_answer FROM requests WHERE id = ?1");
    conn.prepare_cached(SQL)?
        .query_row([id], |row| {
            Ok(Stored { summary: summary(row)?, head: row.get(12)?, body: row.get(13)?, last_answer: row.get(14)? })
        })
        .optional()
}

/// The requests `filter` names, oldest first.
pub fn list(conn: &Connection, filter: &Filter) -> rusqlite::Result<Vec<Summary>> {
    let sql = concat!(
        "SELECT ",
        summary_columns!(),
        " FROM requests WHERE dead = ?1 AND (?2 IS NULL OR route = ?2) ORDER BY id LIMIT 10000"
    );
    let mut select = conn.prepare(sql)?;
    let rows = select.query_map(rusqlite::params![filter.dead, filter.route], summary)?;
    rows.collect()
}

/// The ids of the dead letters `route` names (all when `None`).
pub fn dead_ids(conn: &Connection, route: Option<&str>) -> rusqlite::Result<Vec<i64>> {
    let mut select =
        conn.prepare("SELECT id FROM requests WHERE dead = 1 AND (?1 IS NULL OR route = ?1) ORDER BY id")?;
    let rows = select.query_map([route], |row| row.get(0))?;
    rows.collect()
}

fn summary(row: &Row<'_>) -> rusqlite::Result<Summary> {
    let head: Vec<u8> = row.get(11)?;
    let (method, target) = request_line(&head);
    Ok(Summary {
        id: row.get(0)?,
        route: row.get(1)?,
        upstream: row.get(2)?,
        queue: row.get(3)?,
        received_ms: row.get(4)?,
        expires_ms: row.get(5)?,
        size: row.get::<_, i64>(6)?.max(0) as u64,
        dead: row.get(7)?,
        attempts: row.get(8)?,
        last_status: row.get(9)?,
        last_error: row.get(10)?,
        method,
        target,
    })
}

/// The method and target of a kept head's request line.
fn request_line(head: &[u8]) -> (String, String) {
    let line = head.split(|&b| b == b'\r' || b == b'\n').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let mut word = || String::from_utf8_lossy(words.next().unwrap_or_default()).into_owned();
    (word(), word())
}

/// How many dead letters each route has.
pub fn dead_counts(conn: &Connection) -> rusqlite::Result<Vec<(String, u64)>> {
    let mut select = conn.prepare("SELECT route, COUNT(*) FROM requests WHERE dead = 1 GROUP BY route")?;
    let rows = select.query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)?.max(0) as u64)))?;
    rows.collect()
}

impl From<&Summary> for Pending {
    fn from(s: &Summary) -> Pending {
        Pending {
            id: s.id,
            route: s.route.clone(),
            upstream: s.upstream.clone(),
            queue: s.queue.clone(),
            received_ms: s.received_ms,
            expires_ms: s.expires_ms,
            attempts: s.attempts,
        }
    }
}

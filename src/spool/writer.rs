//! The spool's one writer: a thread of its own (SQLite's calls block) that
//! takes every job waiting in its queue, applies them in one transaction,
//! commits (WAL, `synchronous=FULL`: the commit is on disk when it returns),
//! and only then answers each. Concurrent requests therefore share one fsync.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::{mpsc, oneshot};

use super::{Record, SpoolError};

/// Most jobs one commit takes; the rest wait for the next.
const BATCH: usize = 256;

/// A change to the spool. Each is answered once the commit holding it is on disk.
pub enum Op {
    /// Keep a record (its size already counted). Answers its id.
    Store(Record, u64),
    /// Forget a delivered (or dropped) request. Answers 1, or 0 if it was not there.
    Delete(i64),
    /// A delivery attempt failed and will be retried.
    Attempted { id: i64, attempts: u32, error: String },
    /// A dead letter: kept with its last answer.
    Dead { id: i64, attempts: u32, status: Option<u16>, error: String, answer: Vec<u8> },
    /// A dead letter goes back to the queue, to live as long from `now_ms`
    /// as it had from its arrival. Answers 1, or 0 if it was not a dead letter.
    Revive { id: i64, now_ms: i64 },
}

pub struct Job(pub Op, pub oneshot::Sender<Result<i64, SpoolError>>);

/// Sets the file up (WAL, `synchronous=FULL`, the schema) and checks it is
/// sound. Returns the bytes its kept requests count against `max_bytes`.
pub fn prepare(conn: &Connection) -> rusqlite::Result<u64> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            route TEXT NOT NULL,
            upstream TEXT NOT NULL,
            queue TEXT NOT NULL,
            received_ms INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL,
            head BLOB NOT NULL,
            body BLOB NOT NULL,
            size INTEGER NOT NULL,
            dead INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_status INTEGER,
            last_error TEXT NOT NULL DEFAULT '',
            last_answer BLOB NOT NULL DEFAULT x''
        );",
    )?;
    // Its first few findings, on one line: SQLite starts them with "*** in database main ***\n".
    let mut check = conn.prepare("PRAGMA quick_check(3)")?;
    let found = check.query_map([], |row| row.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    if found != ["ok"] {
        let found = found.join("; ").replace('\n', " ");
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(format!("quick_check: {found}")),
        ));
    }
    drop(check);
    conn.query_row("SELECT COALESCE(SUM(size), 0) FROM requests", [], |row| row.get::<_, i64>(0))
        .map(|used| used.max(0) as u64)
}

/// Starts the writer thread on `conn`; it ends when every sender is dropped,
/// after committing what was sent before.
pub fn start(conn: Connection, used: Arc<AtomicU64>) -> std::io::Result<mpsc::UnboundedSender<Job>> {
    let (jobs, mut queue) = mpsc::unbounded_channel();
    std::thread::Builder::new().name("hookgate-spool".into()).spawn(move || {
        let mut conn = conn;
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(first) = queue.blocking_recv() {
            batch.push(first);
            while batch.len() < BATCH
                && let Ok(job) = queue.try_recv()
            {
                batch.push(job);
            }
            commit(&mut conn, &mut batch, &used);
        }
    })?;
    Ok(jobs)
}

/// Applies `batch` in one transaction and answers each job once the commit
/// returned, or with the error (a store's bytes uncounted) if it failed.
fn commit(conn: &mut Connection, batch: &mut Vec<Job>, used: &AtomicU64) {
    match apply_all(conn, batch) {
        Ok(results) => {
            for (Job(op, done), result) in batch.drain(..).zip(results) {
                if let Op::Delete(_) = op {
                    used.fetch_sub(result.max(0) as u64, Ordering::AcqRel);
                }
                let answer = if let Op::Delete(_) = op { (result > 0) as i64 } else { result };
                let _ = done.send(Ok(answer));
            }
        }
        Err(error) => {
            tracing::error!("spool write failed: {error}");
            let error = Arc::new(error);
            for Job(op, done) in batch.drain(..) {
                if let Op::Store(_, size) = op {
                    used.fetch_sub(size, Ordering::AcqRel);
                }
                let _ = done.send(Err(SpoolError::Write(error.clone())));
            }
        }
    }
}

/// Applies every job; for a delete the result is the bytes it freed.
fn apply_all(conn: &mut Connection, batch: &[Job]) -> rusqlite::Result<Vec<i64>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(batch.len());
    for Job(op, _) in batch {
        results.push(apply(&tx, op)?);
    }
    tx.commit()?;
    Ok(results)
}

fn apply(tx: &Transaction<'_>, op: &Op) -> rusqlite::Result<i64> {
    match op {
        Op::Store(r, size) => {
            tx.prepare_cached(
                "INSERT INTO requests (route, upstream, queue, received_ms, expires_ms, head, body, size)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                r.route,
                r.upstream,
                r.queue,
                r.received_ms,
                r.expires_ms,
                r.head,
                r.body,
                *size as i64
            ])?;
            Ok(tx.last_insert_rowid())
        }
        Op::Delete(id) => tx
            .prepare_cached("DELETE FROM requests WHERE id = ?1 RETURNING size")?
            .query_row([id], |row| row.get::<_, i64>(0))
            .optional()
            .map(|freed| freed.unwrap_or(0)),
        Op::Attempted { id, attempts, error } => tx
            .prepare_cached("UPDATE requests SET attempts = ?2, last_error = ?3 WHERE id = ?1")?
            .execute(params![id, attempts, error])
            .map(|n| n as i64),
        Op::Dead { id, attempts, status, error, answer } => tx
            .prepare_cached(
                "UPDATE requests SET dead = 1, attempts = ?2, last_status = ?3, last_error = ?4, last_answer = ?5
                 WHERE id = ?1",
            )?
            .execute(params![id, attempts, status, error, answer])
            .map(|n| n as i64),
        Op::Revive { id, now_ms } => tx
            .prepare_cached(
                "UPDATE requests SET dead = 0, expires_ms = MAX(expires_ms, ?2 + expires_ms - received_ms)
                 WHERE id = ?1 AND dead = 1",
            )?
            .execute(params![id, now_ms])
            .map(|n| n as i64),
    }
}

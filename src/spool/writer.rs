//! The spool's one writer: a thread of its own (SQLite's calls block) that
//! takes every request waiting in its queue, inserts them in one transaction,
//! commits (WAL, `synchronous=FULL`: the commit is on disk when it returns),
//! and only then answers each. Concurrent requests therefore share one fsync.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, params};
use tokio::sync::{mpsc, oneshot};

use super::{Record, SpoolError};

/// Most requests one commit takes; the rest wait for the next.
const BATCH: usize = 256;

pub enum Job {
    /// Keep a record (its size already counted), answer with its id once committed.
    Store(Record, u64, oneshot::Sender<Result<i64, SpoolError>>),
}

/// Sets the file up (WAL, `synchronous=FULL`, the schema) and checks it is
/// sound. Returns the bytes its kept requests count against `max_bytes`.
pub fn prepare(conn: &Connection) -> rusqlite::Result<u64> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS requests (
            id INTEGER PRIMARY KEY,
            route TEXT NOT NULL,
            upstream TEXT NOT NULL,
            queue TEXT NOT NULL,
            received_ms INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL,
            head BLOB NOT NULL,
            body BLOB NOT NULL,
            size INTEGER NOT NULL
        );",
    )?;
    let check: String = conn.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if check != "ok" {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(format!("quick_check: {check}")),
        ));
    }
    conn.query_row("SELECT COALESCE(SUM(size), 0) FROM requests", [], |row| row.get::<_, i64>(0))
        .map(|used| used.max(0) as u64)
}

/// Starts the writer thread on `conn`; it ends when every sender is dropped.
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

/// Inserts `batch` in one transaction and answers each job: its id once the
/// commit returned, or the error (and its bytes uncounted) if it failed.
fn commit(conn: &mut Connection, batch: &mut Vec<Job>, used: &AtomicU64) {
    match insert_all(conn, batch) {
        Ok(ids) => {
            for (Job::Store(_, _, done), id) in batch.drain(..).zip(ids) {
                let _ = done.send(Ok(id));
            }
        }
        Err(error) => {
            let error = Arc::new(error);
            for Job::Store(_, size, done) in batch.drain(..) {
                used.fetch_sub(size, Ordering::AcqRel);
                let _ = done.send(Err(SpoolError::Write(error.clone())));
            }
        }
    }
}

fn insert_all(conn: &mut Connection, batch: &[Job]) -> rusqlite::Result<Vec<i64>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut ids = Vec::with_capacity(batch.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO requests (route, upstream, queue, received_ms, expires_ms, head, body, size)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for Job::Store(r, size, _) in batch {
            insert.execute(params![
                r.route,
                r.upstream,
                r.queue,
                r.received_ms,
                r.expires_ms,
                r.head,
                r.body,
                *size as i64
            ])?;
            ids.push(tx.last_insert_rowid());
        }
    }
    tx.commit()?;
    Ok(ids)
}

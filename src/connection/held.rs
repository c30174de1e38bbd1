//! HTTP/2 response chunks that wait for the client, each with the time it
//! last made progress. A stream whose window the client keeps shut holds its
//! chunk without a blocked socket write, and other streams' progress on the
//! same connection says nothing of it: the send timer watches the chunk that
//! has waited longest. Made on a connection's first chunk, so a connection
//! that never answers over HTTP/2 carries an empty cell of 16 bytes.

use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use slab::Slab;

/// The chunks a connection's streams have queued and not yet done with.
#[derive(Debug, Default)]
pub struct HeldChunks(OnceLock<Box<Mutex<Slab<u64>>>>);

/// One chunk's place in its connection's `HeldChunks`.
#[derive(Debug, Clone, Copy)]
pub struct HeldChunk(usize);

impl HeldChunks {
    fn lock(&self) -> MutexGuard<'_, Slab<u64>> {
        self.0.get_or_init(Box::default).lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A chunk was queued at `now`.
    pub fn queued(&self, now: u64) -> HeldChunk {
        HeldChunk(self.lock().insert(now))
    }

    /// The client took bytes of the chunk at `now`.
    pub fn progressed(&self, chunk: HeldChunk, now: u64) {
        if let Some(since) = self.lock().get_mut(chunk.0) {
            *since = now;
        }
    }

    /// The chunk is done with (written, or dropped with its stream).
    pub fn done(&self, chunk: HeldChunk) {
        self.lock().try_remove(chunk.0);
    }

    /// Since when the chunk that has waited longest made no progress, if any waits.
    pub fn oldest(&self) -> Option<u64> {
        let held = self.0.get()?;
        held.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|(_, since)| *since).min()
    }
}

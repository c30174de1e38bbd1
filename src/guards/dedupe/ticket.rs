//! The first request's claim on its key (`Ticket`) and the capture of its
//! answer as it passes to the client (`Capture`): remembered when the body
//! ended whole, forgotten (so that waiting repeats claim again) otherwise.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::HeaderValue;

use super::shared::SharedClaim;
use super::{Data, Dedupe, INLINE_ANSWER, Key, MAX_BODY, MAX_CONTENT_TYPE};

/// The right to forward the first request with a key. Dropped before its
/// answer is remembered, it forgets the key, so waiting repeats claim again.
pub struct Ticket {
    /// `None` when the table was full of keys in flight: nothing is remembered.
    pub(super) table: Option<Arc<Dedupe>>,
    pub(super) key: Key,
    /// With `[cluster]`: this request's claim in Redis, where its answer is
    /// stored too (or which is released when it ends unanswered).
    pub(super) shared: Option<Box<SharedClaim>>,
}

impl Ticket {
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The upstream's response head. A 2xx whose body may fit `MAX_BODY`
    /// (`length`: its length when the head says) gets a `Capture` to pass
    /// the body through; anything else forgets the key now.
    pub fn head(self, status: u16, content_type: Option<&[u8]>, length: Option<u64>) -> Option<Box<Capture>> {
        let content_type = content_type.unwrap_or_default();
        let fits = length.is_none_or(|n| n <= MAX_BODY as u64) && content_type.len() <= MAX_CONTENT_TYPE;
        if self.table.is_none() || !(200..300).contains(&status) || !fits {
            return None;
        }
        let type_len = content_type.len() as u16;
        let mut capture =
            Box::new(Capture { ticket: self, status, type_len, len: 0, inline: [0; _], spilled: Vec::new() });
        capture.append(content_type, length.unwrap_or(0) as usize);
        Some(capture)
    }

    /// A whole answer made here (a `store` route's acknowledgement): remembered
    /// like the upstream's would be.
    pub fn remember(self, status: u16, content_type: Option<&HeaderValue>, body: &[u8]) {
        let content_type = content_type.map(HeaderValue::as_bytes);
        if let Some(mut capture) = self.head(status, content_type, Some(body.len() as u64))
            && capture.push(body)
        {
            capture.finish();
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(table) = self.table.take() {
            let forgotten = table.lock().forget_in_flight(self.key.clone());
            drop(forgotten);
        }
        if let Some(shared) = self.shared.take() {
            shared.release();
        }
    }
}

/// The body of a 2xx answer on its way to the client, copied as it passes
/// (at most `MAX_BODY` bytes). `finish` once the whole body reached the
/// client remembers the answer; dropped before that (the body failed, grew
/// too long, or the client left), it forgets the key.
pub struct Capture {
    ticket: Ticket,
    status: u16,
    type_len: u16,
    /// Bytes captured, content type included: in `inline` while they fit,
    /// then all of them in `spilled`.
    len: usize,
    inline: [u8; INLINE_ANSWER],
    spilled: Vec<u8>,
}

impl Capture {
    /// Adds body bytes: `false` when the body grew past `MAX_BODY`, and the
    /// capture should be dropped.
    #[must_use]
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        if self.len - usize::from(self.type_len) + bytes.len() > MAX_BODY {
            return false;
        }
        self.append(bytes, 0);
        true
    }

    /// Appends `bytes`, `more` expected after them (room is made for both
    /// when they leave `inline`).
    fn append(&mut self, bytes: &[u8], more: usize) {
        let len = self.len + bytes.len();
        if self.spilled.is_empty() && len <= INLINE_ANSWER {
            self.inline[self.len..len].copy_from_slice(bytes);
        } else {
            if self.spilled.is_empty() {
                self.spilled.reserve_exact(len + more);
                self.spilled.extend_from_slice(&self.inline[..self.len]);
            }
            self.spilled.extend_from_slice(bytes);
        }
        self.len = len;
    }

    /// The body ended: the answer is remembered for the window.
    pub fn finish(self) {
        let Capture { mut ticket, status, type_len, len, inline, spilled } = self;
        let Some(table) = ticket.table.take() else { return };
        let key = ticket.key.clone();
        if let Some(shared) = ticket.shared.take() {
            let data = if spilled.is_empty() { &inline[..len] } else { &spilled[..] };
            shared.store(status, usize::from(type_len), data);
        }
        let data = if spilled.is_empty() {
            Data::Inline(len as u8, inline)
        } else {
            // Shrunk to its length: a body that grew in pieces has room to spare.
            Data::Shared(Bytes::from(spilled.into_boxed_slice()))
        };
        let replaced = table.lock().answer(key, status, type_len, data, Instant::now());
        drop(replaced);
    }
}

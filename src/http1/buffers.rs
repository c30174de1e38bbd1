//! A small per-worker free list of I/O buffers.
//!
//! A keep-alive connection waiting for its next request holds no buffer: it
//! gives its buffers back here and takes them again when bytes arrive, as
//! nginx releases its buffers on idle keep-alive connections. Each worker is
//! one thread, so the list is a thread-local with no lock.

use std::cell::RefCell;

use bytes::BytesMut;

/// Size of a fresh buffer: a typical head and a good slice of a body.
pub const BUF_SIZE: usize = 16 * 1024;

/// Buffers kept per worker; beyond this they are freed.
const KEEP: usize = 256;

thread_local! {
    static FREE: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with at least `BUF_SIZE` bytes of room.
pub fn take() -> BytesMut {
    FREE.with(|free| free.borrow_mut().pop()).unwrap_or_else(|| BytesMut::with_capacity(BUF_SIZE))
}

/// Gives `buf` back (emptied). Buffers that grew past their size, or any
/// beyond what the list keeps, are freed instead.
pub fn give(mut buf: BytesMut) {
    if buf.capacity() == 0 {
        return;
    }
    // An emptied, unshared buffer gets its whole allocation back without copying.
    buf.clear();
    buf.reserve(BUF_SIZE);
    if buf.capacity() > 4 * BUF_SIZE {
        return;
    }
    FREE.with(|free| {
        let mut free = free.borrow_mut();
        if free.len() < KEEP {
            free.push(buf);
        }
    });
}

/// Swaps `slot`'s buffer out and gives it back, leaving an unallocated one.
pub fn release(slot: &mut BytesMut) {
    give(std::mem::take(slot));
}

/// Makes sure `slot` has a real buffer to read into.
pub fn ensure(slot: &mut BytesMut) {
    if slot.capacity() == 0 {
        *slot = take();
    }
}

thread_local! {
    static FREE_VECS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty byte vector for writing a head into.
pub fn take_vec() -> Vec<u8> {
    FREE_VECS.with(|free| free.borrow_mut().pop()).unwrap_or_else(|| Vec::with_capacity(1024))
}

/// Gives a vector back for reuse (large ones are freed).
pub fn give_vec(mut vec: Vec<u8>) {
    if vec.capacity() > 4 * BUF_SIZE {
        return;
    }
    vec.clear();
    FREE_VECS.with(|free| {
        let mut free = free.borrow_mut();
        if free.len() < KEEP {
            free.push(vec);
        }
    });
}

//! Small per-worker free lists of I/O buffers, request header maps and
//! response heads' header ranges.
//!
//! A keep-alive connection waiting for its next request holds no buffer: it
//! gives its buffers back here and takes them again when bytes arrive, as
//! nginx releases its buffers on idle keep-alive connections. Each worker is
//! one thread, so the list is a thread-local with no lock.
//!
//! The lists shrink back after a burst: every `TRIM_EVERY` (the server's
//! per-thread upkeep calls `trim`), buffers that stayed on a list the whole
//! period (its low-water mark) are freed, so the memory a burst of
//! connections needed goes back to the allocator (and, by `malloc_trim`, to
//! the OS) while a steady load keeps what it uses.

use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::time::Duration;

use bytes::BytesMut;
use http::HeaderMap;

/// Size of a fresh buffer: a typical head and a good slice of a body.
pub const BUF_SIZE: usize = 16 * 1024;

/// Items kept per list and worker; beyond this they are freed.
const KEEP: usize = 256;

/// How often each worker frees the buffers its last period did not need.
pub const TRIM_EVERY: Duration = Duration::from_secs(5);

/// A map or a list of header ranges that had room for more fields than this is freed, not kept.
const KEPT_FIELDS: usize = 64;

/// One worker's free list of one kind, and the fewest items it held since the last trim.
struct FreeList<T> {
    items: RefCell<Vec<T>>,
    low: Cell<usize>,
}

impl<T> FreeList<T> {
    const fn new() -> Self {
        FreeList { items: RefCell::new(Vec::new()), low: Cell::new(0) }
    }

    fn pop(&self) -> Option<T> {
        let mut items = self.items.borrow_mut();
        let item = items.pop();
        self.low.set(self.low.get().min(items.len()));
        item
    }

    fn push(&self, item: T) {
        let mut items = self.items.borrow_mut();
        if items.len() < KEEP {
            items.push(item);
        }
    }

    /// Frees what sat unused since the last trim, and starts the next period.
    fn trim(&self) {
        let mut items = self.items.borrow_mut();
        let keep = items.len() - self.low.get().min(items.len());
        items.truncate(keep);
        items.shrink_to(keep);
        self.low.set(items.len());
    }
}

thread_local! {
    static BUFS: FreeList<BytesMut> = const { FreeList::new() };
    static VECS: FreeList<Vec<u8>> = const { FreeList::new() };
    static MAPS: FreeList<HeaderMap> = const { FreeList::new() };
    static RANGES: FreeList<HeaderRanges> = const { FreeList::new() };
}

/// An empty buffer with at least `BUF_SIZE` bytes of room.
pub fn take() -> BytesMut {
    BUFS.with(FreeList::pop).unwrap_or_else(|| BytesMut::with_capacity(BUF_SIZE))
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
    if buf.capacity() <= 4 * BUF_SIZE {
        BUFS.with(|free| free.push(buf));
    }
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

/// An empty byte vector for writing a head into.
pub fn take_vec() -> Vec<u8> {
    VECS.with(FreeList::pop).unwrap_or_else(|| Vec::with_capacity(1024))
}

/// Gives a vector back for reuse (large ones are freed).
pub fn give_vec(mut vec: Vec<u8>) {
    if vec.capacity() <= 4 * BUF_SIZE {
        vec.clear();
        VECS.with(|free| free.push(vec));
    }
}

/// An empty header map with room for `fields` fields. A request's map came
/// from the allocator and went back to it every time (two blocks, about 450
/// instructions per proxied GET under `bench/instructions.sh`).
pub fn take_map(fields: usize) -> HeaderMap {
    let mut map = MAPS.with(FreeList::pop).unwrap_or_default();
    map.reserve(fields);
    map
}

/// Gives a request's header map back, emptied (so the head's bytes its
/// values shared are let go); large ones are freed.
pub fn give_map(mut map: HeaderMap) {
    if map.capacity() > 0 && map.capacity() <= KEPT_FIELDS {
        map.clear();
        MAPS.with(|free| free.push(map));
    }
}

/// Where each header's name and value sit in a response head's bytes.
pub type HeaderRanges = Vec<(Range<usize>, Range<usize>)>;

/// An empty list of header ranges with room for `fields`.
pub fn take_ranges(fields: usize) -> HeaderRanges {
    let mut ranges = RANGES.with(FreeList::pop).unwrap_or_default();
    ranges.reserve(fields);
    ranges
}

/// Gives a response head's header ranges back (long lists are freed).
pub fn give_ranges(mut ranges: HeaderRanges) {
    if ranges.capacity() > 0 && ranges.capacity() <= KEPT_FIELDS {
        ranges.clear();
        RANGES.with(|free| free.push(ranges));
    }
}

/// Frees the buffers, maps and lists that sat unused on this thread's lists
/// since the last trim, and starts the next period.
pub fn trim() {
    BUFS.with(FreeList::trim);
    VECS.with(FreeList::trim);
    MAPS.with(FreeList::trim);
    RANGES.with(FreeList::trim);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept() -> usize {
        BUFS.with(|free| free.items.borrow().len())
    }

    #[test]
    fn a_burst_is_freed_after_a_quiet_period_and_a_steady_load_keeps_its_buffers() {
        trim();
        let burst: Vec<BytesMut> = (0..10).map(|_| take()).collect();
        burst.into_iter().for_each(give);
        assert_eq!(kept(), 10);
        // The list was empty during the burst: nothing sat unused, nothing is freed.
        trim();
        assert_eq!(kept(), 10);
        // Two in use at a time: the eight that were never taken go.
        for _ in 0..3 {
            let (a, b) = (take(), take());
            give(a);
            give(b);
        }
        trim();
        assert_eq!(kept(), 2);
        // A quiet period: everything goes.
        trim();
        assert_eq!(kept(), 0);
    }

    #[test]
    fn a_header_map_comes_back_empty_with_its_room_and_a_large_one_is_freed() {
        let mut map = take_map(3);
        map.insert(http::header::HOST, http::HeaderValue::from_static("a"));
        let room = map.capacity();
        give_map(map);
        let again = take_map(1);
        assert!(again.is_empty());
        assert_eq!(again.capacity(), room, "the same map, not a new one");
        give_map(again);
        give_map(HeaderMap::with_capacity(4 * KEPT_FIELDS));
        let maps = MAPS.with(|free| free.items.borrow().iter().map(HeaderMap::capacity).collect::<Vec<_>>());
        assert_eq!(maps, [room]);
    }
}

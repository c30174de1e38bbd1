//! Small per-worker free lists of I/O buffers and of request header maps.
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
use std::time::Duration;

use bytes::BytesMut;
use http::HeaderMap;

/// Size of a fresh buffer: a typical head and a good slice of a body.
pub const BUF_SIZE: usize = 16 * 1024;

/// Buffers kept per worker; beyond this they are freed.
const KEEP: usize = 256;

/// How often each worker frees the buffers its last period did not need.
pub const TRIM_EVERY: Duration = Duration::from_secs(5);

thread_local! {
    static FREE: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    /// The fewest buffers `FREE` held since the last trim.
    static FREE_LOW: Cell<usize> = const { Cell::new(0) };
}

/// An empty buffer with at least `BUF_SIZE` bytes of room.
pub fn take() -> BytesMut {
    let buf = FREE.with(|free| pop_noting_low(&mut free.borrow_mut(), &FREE_LOW));
    buf.unwrap_or_else(|| BytesMut::with_capacity(BUF_SIZE))
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
    static FREE_VECS_LOW: Cell<usize> = const { Cell::new(0) };
}

/// An empty byte vector for writing a head into.
pub fn take_vec() -> Vec<u8> {
    let vec = FREE_VECS.with(|free| pop_noting_low(&mut free.borrow_mut(), &FREE_VECS_LOW));
    vec.unwrap_or_else(|| Vec::with_capacity(1024))
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

thread_local! {
    static FREE_MAPS: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
    static FREE_MAPS_LOW: Cell<usize> = const { Cell::new(0) };
}

/// A map that had room for more fields than this is freed, not kept.
const MAP_FIELDS: usize = 64;

/// An empty header map with room for `fields` fields. A request's map came
/// from the allocator and went back to it every time (two blocks, about 450
/// instructions per proxied GET under `bench/instructions.sh`).
pub fn take_map(fields: usize) -> HeaderMap {
    let map = FREE_MAPS.with(|free| pop_noting_low(&mut free.borrow_mut(), &FREE_MAPS_LOW));
    let mut map = map.unwrap_or_default();
    map.reserve(fields);
    map
}

/// Gives a request's header map back, emptied (so the head's bytes its
/// values shared are let go); large ones are freed.
pub fn give_map(mut map: HeaderMap) {
    if map.capacity() == 0 || map.capacity() > MAP_FIELDS {
        return;
    }
    map.clear();
    FREE_MAPS.with(|free| {
        let mut free = free.borrow_mut();
        if free.len() < KEEP {
            free.push(map);
        }
    });
}

fn pop_noting_low<T>(free: &mut Vec<T>, low: &'static std::thread::LocalKey<Cell<usize>>) -> Option<T> {
    let item = free.pop();
    low.with(|low| low.set(low.get().min(free.len())));
    item
}

/// Frees the buffers that sat unused on this thread's lists since the last
/// trim, and starts the next period.
pub fn trim() {
    fn trim_list<T>(free: &RefCell<Vec<T>>, low: &Cell<usize>) {
        let mut free = free.borrow_mut();
        let keep = free.len() - low.get().min(free.len());
        free.truncate(keep);
        free.shrink_to(keep);
        low.set(free.len());
    }
    FREE.with(|free| FREE_LOW.with(|low| trim_list(free, low)));
    FREE_VECS.with(|free| FREE_VECS_LOW.with(|low| trim_list(free, low)));
    FREE_MAPS.with(|free| FREE_MAPS_LOW.with(|low| trim_list(free, low)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept() -> usize {
        FREE.with(|free| free.borrow().len())
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
        give_map(HeaderMap::with_capacity(4 * MAP_FIELDS));
        let maps = FREE_MAPS.with(|free| free.borrow().iter().map(HeaderMap::capacity).collect::<Vec<_>>());
        assert_eq!(maps, [room]);
    }
}

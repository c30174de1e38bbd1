//! An index from paths to the routes that could match them.
//!
//! Exact paths sit in a hash map and prefixes in a trie of path segments, so
//! only routes whose path already matches are checked further. Routes with a
//! regex or no path key are "unindexed" and always checked; their cost is
//! linear in their own number, which the README says.

use std::collections::HashMap;

use super::{PathMatch, Route};

/// foldhash, not std's SipHash: every request looks its path up here (each
/// segment, for the prefixes). The keys come from the config, never from a
/// client, so a client cannot grow a chain; its lookups hash only. SipHash cost
/// about 160 instructions per proxied GET under `bench/instructions.sh`.
type Map<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
pub struct PathIndex {
    exact: Map<Vec<usize>>,
    prefixes: PrefixNode,
    unindexed: Vec<usize>,
}

/// One path segment of the prefix trie; `routes` end exactly here.
#[derive(Debug, Default)]
struct PrefixNode {
    routes: Vec<usize>,
    children: Map<PrefixNode>,
}

impl PathIndex {
    pub fn build(routes: &[Route]) -> Self {
        let mut index = PathIndex::default();
        // Route indices are pushed in file order, so every list stays sorted.
        for (i, route) in routes.iter().enumerate() {
            match &route.matcher.path {
                Some(PathMatch::Exact(path)) => index.exact.entry(path.as_str().into()).or_default().push(i),
                Some(PathMatch::Prefix(prefix)) => {
                    let mut node = &mut index.prefixes;
                    for segment in segments(prefix) {
                        node = node.children.entry(segment.into()).or_default();
                    }
                    node.routes.push(i);
                }
                Some(PathMatch::Regex(_)) | None => index.unindexed.push(i),
            }
        }
        index
    }

    /// The lowest route index whose path could match and for which `check` holds.
    pub fn first_match(&self, path: &str, mut check: impl FnMut(usize) -> bool) -> Option<usize> {
        let mut best = usize::MAX;
        if let Some(list) = self.exact.get(path) {
            scan(list, &mut best, &mut check);
        }
        let mut node = &self.prefixes;
        scan(&node.routes, &mut best, &mut check);
        for segment in segments(path) {
            match node.children.get(segment) {
                Some(child) => {
                    node = child;
                    scan(&node.routes, &mut best, &mut check);
                }
                None => break,
            }
        }
        scan(&self.unindexed, &mut best, &mut check);
        (best != usize::MAX).then_some(best)
    }
}

/// Lowers `best` to the first index in the sorted `list` that passes `check`.
fn scan(list: &[usize], best: &mut usize, check: &mut impl FnMut(usize) -> bool) {
    for &i in list {
        if i >= *best {
            return;
        }
        if check(i) {
            *best = i;
            return;
        }
    }
}

/// The segments of a path after its leading `/`; none for `""` or `/`.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    let rest = path.strip_prefix('/').unwrap_or(path);
    rest.split('/').filter(|_| !rest.is_empty())
}

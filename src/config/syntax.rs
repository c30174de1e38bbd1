//! The key path at a byte offset of a file that does not parse as TOML.
//!
//! A TOML syntax error comes with a span and no key path, and [`Locator`]
//! cannot help: it needs a document that parses. So this walks the text itself,
//! as far as the error, with just enough of TOML's grammar (headers, dotted and
//! quoted keys, strings, arrays and inline tables) to know which key it is in:
//! `max_body = 10MiB` under `[limits]` is `limits.max_body`, the second
//! `[[routes]]` is `routes[1]`, a bad element of a multi-line array is
//! `listen.addrs[1]`. It also remembers where each key was first written, so a
//! duplicate key can say where the first one is. It is tolerant: on anything it
//! does not understand it answers with the path it has. Not for valid files.
//!
//! [`Locator`]: super::locate::Locator

use std::collections::HashMap;
use std::ops::ControlFlow;

use super::locate::{Step, line_at, render};

/// What is written at the offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spot {
    pub path: Vec<Step>,
    pub kind: SpotKind,
    /// For a key or header: the line where the same path was first written.
    pub first_line: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpotKind {
    /// A table header: `[listen]`, `[[routes]]`.
    Header,
    /// The key of a key/value pair (inline tables too).
    Key,
    /// An unquoted value, as written (empty when the value is missing).
    Bare(String),
    /// Anywhere else in a value, or after it on its line.
    Value,
}

/// Where `offset` is in `source`.
pub fn spot(source: &str, offset: usize) -> Spot {
    let mut scan = Scan { src: source.as_bytes(), source, pos: 0, target: offset, first: HashMap::new() };
    let mut at = Spot { path: Vec::new(), kind: SpotKind::Value, first_line: None };
    scan.document(&mut at);
    at
}

struct Scan<'a> {
    src: &'a [u8],
    source: &'a str,
    pos: usize,
    target: usize,
    /// Rendered path → line it was first written on (and, for arrays of
    /// tables, how many elements so far).
    first: HashMap<String, (usize, usize)>,
}

/// `Break` stops the walk: the offset has been found and `at` filled.
type Found = ControlFlow<()>;

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    /// Spaces and tabs only.
    fn spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Whitespace, newlines and comments.
    fn blank(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.pos += 1,
                Some(b'#') => self.skip_line(),
                _ => return,
            }
        }
    }

    fn skip_line(&mut self) {
        while !matches!(self.peek(), None | Some(b'\n')) {
            self.pos += 1;
        }
    }

    /// Fills `at` and stops when the offset lies before `self.pos`.
    fn reached(&self, at: &mut Spot, path: &[Step], kind: SpotKind) -> Found {
        if self.target < self.pos {
            *at = Spot { path: path.to_vec(), kind, first_line: None };
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn document(&mut self, at: &mut Spot) {
        let mut table: Vec<Step> = Vec::new();
        loop {
            self.blank();
            if self.reached(at, &table, SpotKind::Value).is_break() {
                return;
            }
            if self.pos >= self.src.len() {
                *at = Spot { path: table, kind: SpotKind::Value, first_line: None };
                return;
            }
            let start = self.pos;
            let is_header = self.peek() == Some(b'[');
            let written = if is_header { self.header(at, start) } else { self.pair(at, &table) };
            let ControlFlow::Continue(path) = written else { return };
            if is_header {
                table = path.clone();
            }
            // The rest of the line (an unclosed string, trailing junk, a
            // comment) belongs to what was just written.
            self.skip_line();
            if self.target <= self.pos {
                *at = Spot { path, kind: SpotKind::Value, first_line: None };
                return;
            }
        }
    }

    /// `[a.b]` or `[[a.b]]`: the table path it opens.
    fn header(&mut self, at: &mut Spot, start: usize) -> ControlFlow<(), Vec<Step>> {
        self.pos += 1;
        let array = self.peek() == Some(b'[');
        if array {
            self.pos += 1;
        }
        let keys = self.keys();
        while !matches!(self.peek(), None | Some(b']' | b'\n')) {
            self.pos += 1;
        }
        while self.peek() == Some(b']') {
            self.pos += 1;
        }
        let mut path: Vec<Step> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            path.push(Step::Key(key.clone()));
            let last = i + 1 == keys.len();
            let rendered = render(&path);
            if last && array {
                let line = line_at(self.source, start);
                let entry = self.first.entry(rendered).or_insert((line, 0));
                entry.1 += 1;
                path.push(Step::Index(entry.1 - 1));
            } else if let Some(&(_, count)) = self.first.get(&rendered).filter(|(_, count)| *count > 0) {
                // Inside the latest element of an array of tables.
                path.push(Step::Index(count - 1));
            }
        }
        let first_line = if array { None } else { self.first_line(&path, start) };
        if self.target >= start && self.target <= self.pos {
            *at = Spot { path, kind: SpotKind::Header, first_line };
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(path)
    }

    /// Records `path` as written at `start`; if it was written before, the
    /// line where it was first.
    fn first_line(&mut self, path: &[Step], start: usize) -> Option<usize> {
        match self.first.entry(render(path)) {
            std::collections::hash_map::Entry::Occupied(seen) => Some(seen.get().0),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert((line_at(self.source, start), 0));
                None
            }
        }
    }

    /// `key = value` under `table`: the key's path.
    fn pair(&mut self, at: &mut Spot, table: &[Step]) -> ControlFlow<(), Vec<Step>> {
        let start = self.pos;
        let mut path = table.to_vec();
        path.extend(self.keys().into_iter().map(Step::Key));
        let first_line = self.first_line(&path, start);
        if self.target >= start && self.target <= self.pos {
            *at = Spot { path, kind: SpotKind::Key, first_line };
            return ControlFlow::Break(());
        }
        self.spaces();
        if self.peek() != Some(b'=') {
            self.reached(at, &path, SpotKind::Value)?;
            return ControlFlow::Continue(path);
        }
        self.pos += 1;
        self.value(at, &path)?;
        ControlFlow::Continue(path)
    }

    /// A dotted key; stops at `=`, `]` or the end of the line.
    fn keys(&mut self) -> Vec<String> {
        let mut keys = Vec::new();
        loop {
            self.spaces();
            match self.peek() {
                Some(quote @ (b'"' | b'\'')) => {
                    let from = self.pos + 1;
                    self.string(quote);
                    let to = self.pos.saturating_sub(1).max(from);
                    keys.push(String::from_utf8_lossy(&self.src[from..to]).into_owned());
                }
                _ => {
                    let from = self.pos;
                    while matches!(self.peek(), Some(b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')) {
                        self.pos += 1;
                    }
                    if self.pos == from {
                        return keys;
                    }
                    keys.push(String::from_utf8_lossy(&self.src[from..self.pos]).into_owned());
                }
            }
            self.spaces();
            if self.peek() != Some(b'.') {
                return keys;
            }
            self.pos += 1;
        }
    }

    /// A quoted string starting at `self.pos` (one or three quotes), escapes
    /// in basic strings; leaves `self.pos` after it (or at the line's end if
    /// a one-line string is not closed).
    fn string(&mut self, quote: u8) {
        let triple = self.src[self.pos..].starts_with(&[quote; 3]);
        self.pos += if triple { 3 } else { 1 };
        while let Some(c) = self.peek() {
            if c == b'\\' && quote == b'"' {
                self.pos += 2;
            } else if c == quote && (!triple || self.src[self.pos..].starts_with(&[quote; 3])) {
                self.pos += if triple { 3 } else { 1 };
                return;
            } else if c == b'\n' && !triple {
                return;
            } else {
                self.pos += 1;
            }
        }
        self.pos = self.pos.min(self.src.len());
    }

    fn value(&mut self, at: &mut Spot, path: &[Step]) -> Found {
        self.spaces();
        match self.peek() {
            Some(quote @ (b'"' | b'\'')) => {
                self.string(quote);
                // Up to just after it: an unclosed one-line string stops at its line's end.
                if self.target <= self.pos {
                    *at = Spot { path: path.to_vec(), kind: SpotKind::Value, first_line: None };
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            }
            Some(b'[') => self.array(at, path),
            Some(b'{') => self.inline_table(at, path),
            _ => {
                let from = self.pos;
                while !matches!(self.peek(), None | Some(b',' | b']' | b'}' | b'#' | b' ' | b'\t' | b'\r' | b'\n')) {
                    self.pos += 1;
                }
                let bare = String::from_utf8_lossy(&self.src[from..self.pos]).into_owned();
                if self.target >= from && self.target <= self.pos {
                    *at = Spot { path: path.to_vec(), kind: SpotKind::Bare(bare), first_line: None };
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            }
        }
    }

    fn array(&mut self, at: &mut Spot, path: &[Step]) -> Found {
        self.pos += 1;
        let mut index = 0;
        loop {
            self.blank();
            self.reached(at, path, SpotKind::Value)?;
            match self.peek() {
                None => return self.reached(at, path, SpotKind::Value),
                Some(b']') => {
                    self.pos += 1;
                    return ControlFlow::Continue(());
                }
                _ => {}
            }
            let mut element = path.to_vec();
            element.push(Step::Index(index));
            let before = self.pos;
            self.value(at, &element)?;
            self.blank();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    index += 1;
                }
                Some(b']') => {}
                _ if self.pos == before => {
                    // Not a value this scan understands: give its element.
                    self.pos += 1;
                    return self.reached(at, &element, SpotKind::Value);
                }
                _ => return self.reached(at, &element, SpotKind::Value),
            }
        }
    }

    fn inline_table(&mut self, at: &mut Spot, path: &[Step]) -> Found {
        self.pos += 1;
        loop {
            self.spaces();
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return self.reached(at, path, SpotKind::Value);
                }
                None | Some(b'\n') => return self.reached(at, path, SpotKind::Value),
                _ => {}
            }
            let before = self.pos;
            let key = self.pair(at, path)?;
            self.spaces();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ if self.pos == before => {
                    self.pos += 1;
                    return self.reached(at, path, SpotKind::Value);
                }
                _ => return self.reached(at, &key, SpotKind::Value),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(source: &str, needle: &str) -> (String, SpotKind, Option<usize>) {
        let offset = source.rfind(needle).unwrap_or_else(|| panic!("{needle:?} not in {source:?}"));
        let spot = spot(source, offset);
        (render(&spot.path), spot.kind, spot.first_line)
    }

    #[test]
    fn finds_the_key_of_a_bad_value() {
        let source = "[listen]\naddrs = [\"a\"]\n\n[limits]\nmax_body = 10MiB\n";
        assert_eq!(at(source, "10MiB"), ("limits.max_body".into(), SpotKind::Bare("10MiB".into()), None));
        let source = "[[routes]]\nname = \"a\"\n[[routes]]\nname = \"b\"\nrespond = { status = 2x, body = \"\" }\n";
        assert_eq!(at(source, "2x"), ("routes[1].respond.status".into(), SpotKind::Bare("2x".into()), None));
        let source = "[listen]\naddrs = [\n  \"127.0.0.1:0\", # first\n  127.0.0.2:0,\n]\n";
        assert_eq!(at(source, "0.2:0"), ("listen.addrs[1]".into(), SpotKind::Bare("127.0.0.2:0".into()), None));
        let source = "[upstreams.\"my app\"]\nurl = http://x\n";
        assert_eq!(at(source, "http"), ("upstreams.my app.url".into(), SpotKind::Bare("http://x".into()), None));
        assert_eq!(at("[listen]\nfoo = \n", "\n"), ("listen.foo".into(), SpotKind::Bare(String::new()), None));
        assert_eq!(at("[listen]\naddrs = [\"a\"] junk\n", "junk"), ("listen.addrs".into(), SpotKind::Value, None));
        let source = "x = \"\"\"two\nlines\"\"\"\n[log]\nlevel = info\n";
        assert_eq!(at(source, "info"), ("log.level".into(), SpotKind::Bare("info".into()), None));
    }

    #[test]
    fn names_a_duplicate_and_where_it_was_first_written() {
        let source = "[listen]\naddrs = []\naddrs = []\n";
        assert_eq!(at(source, "addrs"), ("listen.addrs".into(), SpotKind::Key, Some(2)));
        let source = "[listen]\naddrs = []\n\n[listen]\n";
        assert_eq!(at(source, "listen"), ("listen".into(), SpotKind::Header, Some(1)));
        let source = "[upstreams.a]\nurl = \"x\"\n[upstreams.a]\n";
        assert_eq!(at(source, "a]"), ("upstreams.a".into(), SpotKind::Header, Some(1)));
        let source = "[[routes]]\nname = \"a\"\n[[routes]]\nname = \"b\"\nheaders = { a = \"1\", a = \"2\" }\n";
        assert_eq!(at(source, "a ="), ("routes[1].headers.a".into(), SpotKind::Key, Some(5)));
    }

    #[test]
    fn an_unclosed_header_is_that_header() {
        assert_eq!(at("[listen\naddrs = []\n", "\naddrs").0, "listen");
    }
}

//! Finds the line of a key path (`routes[2].upstream`) in the TOML source.
//!
//! Serde reports where a *value* failed to parse; checks that run after
//! deserializing (undefined upstream, duplicate name) only know the key path.
//! A [`Locator`] parses the source once, with the `toml` crate's own spanned
//! document (`toml::de::DeTable`), and maps each such path back to a line, so
//! every config error can name it.
//!
//! Why not `toml::Spanned<T>` on the raw fields (issue 17 asked): the 64 checks
//! in `validate`, `guards`, `tls` and `telegram` already carry key paths, which
//! the error text prints anyway; spans on the raw side would change the type of
//! most of `raw.rs`'s ~130 fields and every read of them, and a missing key
//! still needs its parent table's span. The document walked here is made of
//! the same `toml::Spanned` values, and a valid file is parsed only once (this
//! parse happens at the first problem, so it costs nothing when there is none).

use std::cell::OnceCell;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Renders a key path the way errors print it: `routes[2].respond.status`.
pub fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The source and its spanned document, parsed once, at the first problem
/// (a valid file is never parsed a second time).
pub struct Locator<'a> {
    source: &'a str,
    document: OnceCell<Option<Spanned<DeTable<'a>>>>,
}

impl<'a> Locator<'a> {
    pub fn new(source: &'a str) -> Self {
        Locator { source, document: OnceCell::new() }
    }

    /// The 1-based line where the deepest existing part of `path` is written.
    pub fn line_of(&self, path: &[Step]) -> Option<usize> {
        let document = self.document.get_or_init(|| DeTable::parse(self.source).ok()).as_ref()?;
        let offset = table_start(document.get_ref(), document.span(), path);
        Some(line_at(self.source, offset))
    }
}

/// The 1-based line holding byte `offset`.
pub fn line_at(source: &str, offset: usize) -> usize {
    let end = offset.min(source.len());
    source.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Where `path` starts inside `table`: its key's position when the rest of
/// the path cannot be followed, the table's own when the key is missing.
fn table_start(table: &DeTable<'_>, span: Range<usize>, path: &[Step]) -> usize {
    let Some((Step::Key(key), rest)) = path.split_first() else { return span.start };
    let Some((name, value)) = table.iter().find(|(name, _)| name.get_ref() == key) else { return span.start };
    value_start(value, rest).unwrap_or(name.span().start)
}

/// Where `path` starts inside `value`; `None` when the path ends here (the
/// caller then points at the key that names the value).
fn value_start(value: &Spanned<DeValue<'_>>, path: &[Step]) -> Option<usize> {
    match (value.get_ref(), path.first()?) {
        (DeValue::Table(table), Step::Key(_)) => Some(table_start(table, value.span(), path)),
        (DeValue::Array(array), Step::Index(i)) => {
            let element = array.get(*i)?;
            Some(value_start(element, &path[1..]).unwrap_or(element.span().start))
        }
        _ => Some(value.span().start),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Step {
        Step::Key(k.to_string())
    }

    const SOURCE: &str = "[listen]\naddrs = [\"127.0.0.1:0\"]\n\n[[routes]]\nname = \"a\"\n\n[[routes]]\nname = \"b\"\nupstream = \"x\"\nrespond = { status = 200 }\n";

    #[test]
    fn finds_keys_in_tables_arrays_and_inline_tables() {
        let at = Locator::new(SOURCE);
        assert_eq!(at.line_of(&[key("listen"), key("addrs")]), Some(2));
        assert_eq!(at.line_of(&[key("routes"), Step::Index(1), key("upstream")]), Some(9));
        assert_eq!(at.line_of(&[key("routes"), Step::Index(1), key("respond"), key("status")]), Some(10));
    }

    #[test]
    fn falls_back_to_the_nearest_existing_parent() {
        assert_eq!(Locator::new(SOURCE).line_of(&[key("routes"), Step::Index(0), key("upstream")]), Some(4));
    }

    #[test]
    fn renders_paths() {
        assert_eq!(render(&[key("routes"), Step::Index(2), key("upstream")]), "routes[2].upstream");
    }
}

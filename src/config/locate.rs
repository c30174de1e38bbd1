//! Finds the line of a key path (`routes[2].upstream`) in the TOML source.
//!
//! Serde reports where a *value* failed to parse; checks that run after
//! deserializing (undefined upstream, duplicate name) only know the key path.
//! This module maps that path back to a line so every config error can name it.

use toml_edit::{Document, Item, Table, Value};

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

/// The 1-based line where the deepest existing part of `path` is written.
pub fn line_of(source: &str, path: &[Step]) -> Option<usize> {
    let doc = Document::parse(source).ok()?;
    let offset = span_start(doc.as_table(), path)?;
    Some(line_at(source, offset))
}

/// The 1-based line holding byte `offset`.
pub fn line_at(source: &str, offset: usize) -> usize {
    let end = offset.min(source.len());
    source.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

fn span_start(table: &Table, path: &[Step]) -> Option<usize> {
    let Some((Step::Key(key), rest)) = path.split_first() else {
        return table.span().map(|s| s.start);
    };
    let Some(item) = table.get(key) else {
        return table.span().map(|s| s.start);
    };
    let here = table.key(key).and_then(|k| k.span()).or_else(|| item.span()).map(|s| s.start);
    item_span(item, rest).or(here)
}

fn item_span(item: &Item, path: &[Step]) -> Option<usize> {
    if path.is_empty() {
        return None;
    }
    match (item, &path[0]) {
        (Item::Table(table), Step::Key(_)) => span_start(table, path),
        (Item::ArrayOfTables(tables), Step::Index(i)) => {
            let table = tables.get(*i)?;
            span_start(table, &path[1..]).or_else(|| table.span().map(|s| s.start))
        }
        (Item::Value(value), _) => value_span(value, path),
        _ => None,
    }
}

fn value_span(value: &Value, path: &[Step]) -> Option<usize> {
    match (value, path.first()) {
        (_, None) => value.span().map(|s| s.start),
        (Value::InlineTable(table), Some(Step::Key(key))) => {
            let inner = table.get(key)?;
            value_span(inner, &path[1..]).or_else(|| table.key(key).and_then(|k| k.span()).map(|s| s.start))
        }
        (Value::Array(array), Some(Step::Index(i))) => value_span(array.get(*i)?, &path[1..]),
        _ => value.span().map(|s| s.start),
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
        assert_eq!(line_of(SOURCE, &[key("listen"), key("addrs")]), Some(2));
        assert_eq!(line_of(SOURCE, &[key("routes"), Step::Index(1), key("upstream")]), Some(9));
        assert_eq!(line_of(SOURCE, &[key("routes"), Step::Index(1), key("respond"), key("status")]), Some(10));
    }

    #[test]
    fn falls_back_to_the_nearest_existing_parent() {
        assert_eq!(line_of(SOURCE, &[key("routes"), Step::Index(0), key("upstream")]), Some(4));
    }

    #[test]
    fn renders_paths() {
        assert_eq!(render(&[key("routes"), Step::Index(2), key("upstream")]), "routes[2].upstream");
    }
}

//! Reading a Rust file of this crate for the modules it names: its code
//! outside unit tests (comments, literals and `#[cfg(test)]` items left out),
//! then every path through `crate::`, `super::`, `self::` or one of the file's
//! own submodules, in `use` trees and in the code, made absolute from the crate
//! root. A text scan, not a parser: enough for the way this crate is written,
//! and tested in `module_order.rs` on each form it must see or skip.

use std::collections::BTreeSet;

/// A module's path from the crate root: `src/http1/serve.rs` → `["http1", "serve"]`.
pub type Module = Vec<String>;

/// The code as the compiler builds it outside tests: comments gone, string and
/// character literals emptied (a `{` or `crate::` inside one means nothing),
/// and each `#[cfg(test)]` item cut out.
pub fn code_outside_tests(text: &str) -> String {
    strip_test_items(&without_comments_and_literals(text))
}

fn without_comments_and_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let after_word = i > 0 && word(chars[i - 1]);
        if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            // Block comments nest.
            let mut depth = 0;
            loop {
                if at(i) == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if at(i) == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else if i >= chars.len() {
                    break;
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if !after_word && (c == 'r' || (c == 'b' && at(i + 1) == 'r')) && raw_string_hashes(&chars, i).is_some()
        {
            // r"..", r#".."#, br".."
            let hashes = raw_string_hashes(&chars, i).unwrap_or(0);
            i += if c == 'b' { 2 } else { 1 } + hashes + 1;
            while i < chars.len() && !(chars[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#')) {
                i += 1;
            }
            i += 1 + hashes;
            out.push_str("\"\"");
        } else if c == '\'' && (at(i + 1) == '\\' || (at(i + 2) == '\'' && at(i + 1) != '\'')) {
            // A character literal ('x', '\n', '\'', '\u{7f}'); a lifetime ('a) stays.
            i += if at(i + 1) == '\\' { 3 } else { 2 };
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("''");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// How many `#` a raw string starting at `i` (`r` or `br`) has, if one starts there.
fn raw_string_hashes(chars: &[char], i: usize) -> Option<usize> {
    let start = if chars[i] == 'b' { i + 2 } else { i + 1 };
    let hashes = chars[start.min(chars.len())..].iter().take_while(|c| **c == '#').count();
    (chars.get(start + hashes) == Some(&'"')).then_some(hashes)
}

fn strip_test_items(code: &str) -> String {
    const TEST_ONLY: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find(TEST_ONLY) {
        out.push_str(&rest[..at]);
        let item = &rest[at + TEST_ONLY.len()..];
        rest = &item[test_item_len(item)..];
    }
    out.push_str(rest);
    out
}

/// How far the item after a `#[cfg(test)]` reaches. An item (`mod`, `fn`, `use`,
/// `impl`, ...) ends at a `;` outside brackets or with its closing `}`. Anything
/// else (a field, a match arm, an argument) ends at a `,` too, or where the list
/// it sits in closes. Never past the end of the item, so nothing after it is lost.
fn test_item_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut i = 0;
    loop {
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if !text[i..].starts_with("#[") {
            break;
        }
        // Another attribute on the same item.
        i += 1 + bracketed_len(&bytes[i + 1..]);
    }
    let item = is_item(&text[i..]);
    let mut depth = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' if depth == 0 => return i,
            b'}' if depth == 1 => {
                let after = text[i + 1..].trim_start();
                let semicolon = if after.starts_with(';') { text[i + 1..].len() - after.len() + 1 } else { 0 };
                return i + 1 + semicolon;
            }
            b')' | b']' | b'}' => depth -= 1,
            b';' if depth == 0 => return i + 1,
            b',' if depth == 0 && !item => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// The length of `[ ... ]` at the start of `bytes`, brackets balanced.
fn bracketed_len(bytes: &[u8]) -> usize {
    let mut depth = 0;
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'[' => depth += 1,
            b']' if depth == 1 => return i + 1,
            b']' => depth -= 1,
            _ => {}
        }
    }
    bytes.len()
}

/// Whether `text` starts with an item (after its visibility), not a field or an expression.
fn is_item(text: &str) -> bool {
    let mut text = text.trim_start();
    if let Some(rest) = text.strip_prefix("pub") {
        text = rest.trim_start();
        if text.starts_with('(') {
            text = text.split_once(')').map_or("", |(_, rest)| rest).trim_start();
        }
    }
    let first = text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '!')).next().unwrap_or("");
    const ITEMS: &str =
        "mod fn use impl struct enum union trait type const static extern async unsafe macro_rules! let";
    ITEMS.split(' ').any(|keyword| keyword == first)
}

/// The modules `code` (a file of `module`) names, each as a path from the crate
/// root: through `crate::`, `super::` and `self::`, and through the names of the
/// file's own submodules (`mod x;` then `x::Y`), in `use` trees and in the code.
pub fn paths_named(code: &str, module: &Module) -> Vec<Module> {
    let children = submodules(code);
    let mut found = Vec::new();
    let mut rest_of_code = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = find_word(rest, "use") {
        rest_of_code.push_str(&rest[..at]);
        let tree = &rest[at + 3..];
        let end = tree.find(';').unwrap_or(tree.len());
        for path in use_tree_paths(&tree[..end]) {
            found.extend(from_root(&path, module, &children));
        }
        rest = &tree[(end + 1).min(tree.len())..];
    }
    rest_of_code.push_str(rest);
    let starts: Vec<&str> = ["crate", "super", "self"].into_iter().chain(children.iter().copied()).collect();
    for start in starts {
        let mut from = 0;
        while let Some(at) = find_word(&rest_of_code[from..], start) {
            let at = from + at;
            from = at + start.len();
            let path: String =
                rest_of_code[at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            let path = path.trim_end_matches(':');
            if path.contains("::") && !rest_of_code[..at].ends_with("::") {
                found.extend(from_root(&path.split("::").map(String::from).collect::<Vec<_>>(), module, &children));
            }
        }
    }
    found
}

/// The submodules a file declares with `[pub] mod name;`.
fn submodules(code: &str) -> BTreeSet<&str> {
    code.split(';').filter_map(declared_module).collect()
}

/// `[pub] mod name` (an item before its `;`) → `name`.
fn declared_module(item: &str) -> Option<&str> {
    match item.split_whitespace().collect::<Vec<_>>()[..] {
        [.., "mod", name] if name.chars().all(|c| c.is_alphanumeric() || c == '_') => Some(name),
        _ => None,
    }
}

/// Where `word` occurs in `text` as a whole word (not inside a longer name).
fn find_word(text: &str, word: &str) -> Option<usize> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(at) = text[from..].find(word) {
        let at = from + at;
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        if !before.is_some_and(is_word) && !after.is_some_and(is_word) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// `crate::{a, b::{C, d as e}}` → `crate::a`, `crate::b::C`, `crate::b::d`, each split at `::`.
fn use_tree_paths(tree: &str) -> Vec<Vec<String>> {
    // Without `as name` (a `,` or `}` after the name stays) and without spaces.
    let mut kept = String::new();
    let mut words = tree.split_whitespace();
    while let Some(word) = words.next() {
        match word {
            "as" => {
                kept.push_str(words.next().unwrap_or("").trim_start_matches(|c: char| c.is_alphanumeric() || c == '_'))
            }
            word => kept.push_str(word),
        }
    }
    expand(&kept)
        .into_iter()
        .map(|path| {
            let path = path.trim_start_matches("::");
            let path = path.strip_suffix("::*").or_else(|| path.strip_suffix("::self")).unwrap_or(path);
            path.split("::").map(String::from).collect()
        })
        .collect()
}

/// The leaves of a `use` tree without spaces: `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else { return vec![tree.to_string()] };
    let mut depth = 0;
    let mut close = tree.len();
    let mut parts = Vec::new();
    let mut start = open + 1;
    for (i, c) in tree[open..].char_indices().map(|(i, c)| (open + i, c)) {
        match c {
            '{' => depth += 1,
            '}' if depth == 1 => {
                close = i;
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 1 => {
                parts.push(&tree[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&tree[start..close.max(start)]);
    let (prefix, rest) = (&tree[..open], tree.get(close + 1..).unwrap_or(""));
    parts.into_iter().filter(|p| !p.is_empty()).flat_map(|part| expand(&format!("{prefix}{part}{rest}"))).collect()
}

/// A path as written in a file of `module`, from the crate root; `None` for
/// paths that start elsewhere (`std::`, another crate, a local name).
fn from_root(path: &[String], module: &Module, children: &BTreeSet<&str>) -> Option<Module> {
    let (first, rest) = path.split_first()?;
    let mut base = match first.as_str() {
        "crate" => Vec::new(),
        "self" => module.clone(),
        "super" => module[..module.len().saturating_sub(1)].to_vec(),
        child if children.contains(child) => [module.clone(), vec![child.to_string()]].concat(),
        _ => return None,
    };
    let mut rest = rest;
    while let Some(("super", tail)) = rest.split_first().map(|(s, t)| (s.as_str(), t)) {
        base.pop();
        rest = tail;
    }
    Some([base, rest.to_vec()].concat())
}

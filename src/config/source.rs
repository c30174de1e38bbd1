//! A config file's text, bounded before the TOML parser sees it: in size (a
//! config is kilobytes; `/dev/zero` or a stray log file would be read whole)
//! and in how deeply its arrays and inline tables nest (the parser's memory
//! grows with the square of the depth: 12,000 levels, 48 KB, took 4 GB).
//! A reload that fails here leaves the running config serving.

use std::io::Read;
use std::path::Path;

use super::{Problem, locate};

/// The largest config file read: a 20,000-route file is about 2 MiB.
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;
/// The deepest nesting of `[` and `{` accepted; hookgate's own keys need 3.
pub const MAX_DEPTH: usize = 64;

/// The file's text, or why it cannot be the config.
pub fn read(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut text = String::new();
    file.take(MAX_BYTES + 1).read_to_string(&mut text).map_err(|e| format!("cannot read: {e}"))?;
    if text.len() as u64 > MAX_BYTES {
        return Err(format!("larger than {} MiB: not a config file", MAX_BYTES >> 20));
    }
    Ok(text)
}

/// Refuses arrays and inline tables nested deeper than `MAX_DEPTH`, naming
/// the line. Brackets inside strings and comments do not count.
pub fn check_nesting(source: &str) -> Result<(), Problem> {
    let bytes = source.as_bytes();
    let (mut depth, mut i) = (0usize, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => i = memchr::memchr(b'\n', &bytes[i..]).map_or(bytes.len(), |n| i + n),
            quote @ (b'"' | b'\'') => i = string_end(bytes, i, quote),
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    let message = format!("arrays and inline tables nested more than {MAX_DEPTH} deep");
                    return Err(Problem { line: Some(locate::line_at(source, i)), path: String::new(), message });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The index of the last byte of the string opening at `start` (or the
/// text's end, for one never closed: the parser reports that).
fn string_end(bytes: &[u8], start: usize, quote: u8) -> usize {
    let triple = bytes[start..].starts_with(&[quote; 3]);
    let mut i = start + if triple { 3 } else { 1 };
    while i < bytes.len() {
        match bytes[i] {
            // Basic strings escape; literal ones (`'`) do not.
            b'\\' if quote == b'"' => i += 1,
            b'\n' if !triple => return i,
            b if b == quote && (!triple || bytes[i..].starts_with(&[quote; 3])) => {
                return if triple { i + 2 } else { i };
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_counts_brackets_outside_strings_and_comments() {
        let deep = |n: usize| format!("x = {}1{}\n", "{a=".repeat(n), "}".repeat(n));
        assert!(check_nesting(&deep(MAX_DEPTH)).is_ok());
        let err = check_nesting(&format!("a = 1\n{}", deep(MAX_DEPTH + 1))).unwrap_err();
        assert_eq!(err.line, Some(2));
        let brackets = "[".repeat(MAX_DEPTH * 2);
        for quoted in [
            format!("x = \"{brackets}\"\n"),
            format!("x = '{brackets}'\n"),
            format!("x = \"\"\"\n{brackets}\"\n\"\"\"\n"),
            format!("x = '''{brackets}'''\n"),
            format!("x = \"\\\"{brackets}\"\n"),
            format!("# {brackets}\n[[routes]]\n"),
        ] {
            assert!(check_nesting(&quoted).is_ok(), "{quoted}");
        }
    }
}

//! The module graph points one way: a module may import only modules below it
//! in [`ORDER`], the order `src/lib.rs` documents (a request's path from the
//! listeners down to plain data and leaf helpers).
//!
//! Reads every file under `src/` and fails on an import that runs back up, or
//! on a top-level module `ORDER` does not place. Unit tests (`#[cfg(test)]` to
//! the end of a file, and `tests.rs` files) may reach anywhere.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Top first. `main`, `lifecycle`/`report`, `server`, `proxy`,
/// `routes`/`guards`/`upstream`/`access`, `config`, then the leaf helpers.
const ORDER: &[&str] = &[
    "main",
    "internals",
    "init",
    "cli",
    "control",
    "lifecycle",
    "acme",
    "admin",
    "status",
    "telegram",
    "report",
    "logging",
    "server",
    "http1",
    "proxy",
    "upstream",
    "access",
    "connection",
    "config",
    "routes",
    "guards",
    "tls",
    "client_ip",
    "error",
    "metrics",
    "recent",
    "canonical",
    "secret",
    "systemd",
];

#[test]
fn imports_only_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut upward = BTreeSet::new();
    for file in rust_files(&src) {
        let relative = file.strip_prefix(&src).unwrap();
        let from = top_module(relative);
        let Some(from_rank) = rank(&from) else { continue };
        for to in imported_modules(&fs::read_to_string(&file).unwrap(), depth(relative)) {
            if rank(&to).is_some_and(|to_rank| to_rank <= from_rank) && to != from {
                upward.insert(format!("{} imports `{to}`, which is above `{from}`", relative.display()));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that run back up the module order:\n{}",
        upward.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn every_module_has_a_place_in_the_order() {
    let lib = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let declared: BTreeSet<&str> = lib
        .lines()
        .filter_map(|line| line.trim().strip_suffix(';')?.rsplit_once("mod ").map(|(_, name)| name))
        .collect();
    let unplaced: Vec<&&str> = declared.iter().filter(|m| rank(m).is_none()).collect();
    assert!(!declared.is_empty() && unplaced.is_empty(), "modules missing from ORDER: {unplaced:?}");
    let gone: Vec<&&str> = ORDER.iter().filter(|m| **m != "main" && !declared.contains(**m)).collect();
    assert!(gone.is_empty(), "ORDER names modules lib.rs no longer declares: {gone:?}");
}

/// The scanner itself: each way of naming a module is seen, comments and unit tests are not.
#[test]
fn finds_every_form_of_import() {
    let text = "use crate::proxy::State;\n\
                use crate::{access,\n    config::Config};\n\
                // crate::server in a comment\n\
                fn f() { crate::metrics::get(); super::routes::select(); }\n\
                #[cfg(test)]\nmod tests { use crate::lifecycle; }\n";
    let found: BTreeSet<String> = imported_modules(text, 1).into_iter().collect();
    let want: BTreeSet<String> = ["proxy", "access", "config", "metrics", "routes"].map(String::from).into();
    assert_eq!(found, want);
}

fn rank(module: &str) -> Option<usize> {
    ORDER.iter().position(|m| *m == module)
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") && path.file_name().is_some_and(|n| n != "tests.rs") {
            files.push(path);
        }
    }
    files
}

/// `proxy/state.rs` → `proxy`; `lib.rs` → `lib` (the root declares, it does not import).
fn top_module(relative: &Path) -> String {
    let first = relative.components().next().unwrap().as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// How many `super::` reach the crate root from this file.
fn depth(relative: &Path) -> usize {
    let parts = relative.components().count();
    let is_mod_file = relative.file_name().is_some_and(|n| n == "mod.rs");
    if is_mod_file { parts - 1 } else { parts }
}

/// The top-level modules a file names through `crate::` (or enough `super::`).
fn imported_modules(text: &str, depth: usize) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let root = "super::".repeat(depth);
    let code: String = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut found = Vec::new();
    for prefix in ["crate::", root.as_str()] {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().next_back();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                found.extend(names_after(&code[at + prefix.len()..]));
            }
        }
    }
    found
}

/// `proxy::State` → `proxy`; `{access, config::Config}` → both.
fn names_after(rest: &str) -> Vec<String> {
    let ident = |s: &str| s.trim().split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or("").to_string();
    match rest.strip_prefix('{') {
        Some(group) => group.split('}').next().unwrap_or("").split(',').map(ident).filter(|n| !n.is_empty()).collect(),
        None => vec![ident(rest)].into_iter().filter(|n| !n.is_empty()).collect(),
    }
}

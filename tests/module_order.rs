//! The module graph points one way: a module may import only modules below it
//! in the order `src/lib.rs`'s `# Layout` list gives (read from there, so the
//! list a reader sees is the order that is checked), and no file imports a file
//! that imports it back.
//!
//! Reads every file under `src/` and fails on an import that runs back up, on a
//! top-level module the list does not place, and on a circle between files.
//! Unit tests may reach anywhere: `tests.rs` files, and each `#[cfg(test)]` item
//! (a `mod tests { .. }`, a `use ..;`, a fn), are left out, and the rest of the
//! file after such an item is read. Comments and what string and character
//! literals hold are not code. `src/main.rs` is the binary, a crate of its own
//! that reaches the library only as `hookgate::`, so it has no place in the order.

#[path = "module_order/scan.rs"]
mod scan;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use scan::{Module, code_outside_tests, paths_named};

#[test]
fn imports_only_point_down() {
    let order = order();
    let rank = |module: &str| order.iter().position(|m| m == module);
    let mut upward = BTreeSet::new();
    for file in crate_files() {
        let Some(from) = file.module.first() else { continue };
        let Some(from_rank) = rank(from) else { continue };
        for path in paths_named(&file.code, &file.module) {
            let Some(to) = path.first() else { continue };
            if rank(to).is_some_and(|to_rank| to_rank <= from_rank) && to != from {
                upward.insert(format!("{} imports `{to}`, which is above `{from}`", file.relative.display()));
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
    let lib = read("src/lib.rs");
    let declared: BTreeSet<&str> = lib
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .filter_map(|line| line.trim().strip_suffix(';')?.rsplit_once("mod ").map(|(_, name)| name))
        .collect();
    let order = order();
    let placed: BTreeSet<&str> = order.iter().map(String::as_str).collect();
    let unplaced: Vec<&&str> = declared.iter().filter(|m| !placed.contains(**m)).collect();
    assert!(!declared.is_empty() && unplaced.is_empty(), "modules missing from lib.rs's Layout list: {unplaced:?}");
    let gone: Vec<&&str> = placed.iter().filter(|m| !declared.contains(**m)).collect();
    assert!(gone.is_empty(), "lib.rs's Layout list names modules lib.rs no longer declares: {gone:?}");
    assert_eq!(placed.len(), order.len(), "a module is placed twice in lib.rs's Layout list: {order:?}");
}

/// Fails on any circle between the files of the crate.
#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let files = crate_files();
    let names: BTreeMap<&Module, String> =
        files.iter().map(|f| (&f.module, f.relative.display().to_string())).collect();
    let modules: Vec<(Module, String)> = files.iter().map(|f| (f.module.clone(), f.code.clone())).collect();
    let circles = circles(&file_imports(&modules), |m| names[m].clone());
    assert!(circles.is_empty(), "circles between files:\n{}", circles.join("\n"));
}

/// The scanner itself: each way of naming a module is seen, comments and unit tests are not.
#[test]
fn finds_every_form_of_import() {
    let text = "use crate::proxy::State;\n\
                use crate::{access,\n    config::Config};\n\
                // crate::server in a comment\n\
                fn f() { crate::metrics::get(); super::routes::select(); }\n\
                #[cfg(test)]\nmod tests { use crate::lifecycle; }\n";
    let found: BTreeSet<String> = imported_modules(text, &["report"]).into_iter().collect();
    let want: BTreeSet<String> = ["proxy", "access", "config", "metrics", "routes"].map(String::from).into();
    assert_eq!(found, want);
}

/// A `#[cfg(test)]` item is left out, and only that item: what follows it is read.
#[test]
fn only_test_items_are_left_out() {
    let text = "use crate::config::Config;\n\
                #[cfg(test)]\npub use crate::lifecycle::Hidden;\n\
                pub use crate::routes::Route;\n\
                #[cfg(test)]\n#[allow(dead_code)]\nfn helper() -> [u8; 2] { crate::server::f(); [0; 2] }\n\
                fn real() { let s = \"}\"; let c = '{'; let r = r#\"crate::admin \"{\"#; crate::metrics::get(s, c, r); }\n\
                struct S<'a> {\n    #[cfg(test)]\n    probe: Vec<(crate::report::Probe, u8)>,\n    kept: &'a crate::access::Line,\n}\n\
                #[cfg(test)]\nuse crate::status::{self, Page};\n\
                #[cfg(test)]\nmod tests {\n    fn f() { let _ = \"{\"; crate::telegram::x(); }\n}\n\
                /* crate::init /* nested */ crate::cli */\n\
                pub fn last() { crate::guards::g(); }\n";
    let found: BTreeSet<String> = imported_modules(text, &["x"]).into_iter().collect();
    let want: BTreeSet<String> = ["config", "routes", "metrics", "access", "guards"].map(String::from).into();
    assert_eq!(found, want);
}

/// The circle finder: a circle of three files is found; a file that takes its
/// parent module's items, and a parent that takes its children's, are not circles.
#[test]
fn finds_circles_between_files() {
    let module = |path: &str| -> Module { path.split('/').map(String::from).collect() };
    let files = [
        (module("x"), "mod a;\nmod b;\nmod c;\npub use a::A;\nuse self::b::B;\n"),
        (module("x/a"), "use super::Shared;\nuse super::b::B;\n"),
        (module("x/b"), "use crate::x::c::C;\n"),
        (module("x/c"), "fn f() { super::a::g() }\n"),
        (module("y"), "use crate::x::A;\nuse super::x::c::C;\n"),
    ]
    .map(|(m, code)| (m, code_outside_tests(code)));
    let imports = file_imports(&files);
    assert_eq!(imports[&module("x/c")], BTreeSet::from([module("x/a")]));
    assert_eq!(imports[&module("y")], BTreeSet::from([module("x"), module("x/c")]));
    assert_eq!(circles(&imports, |m| m.join("/")), ["x/a, x/b, x/c (x/a -> x/b; x/b -> x/c; x/c -> x/a)"]);
}

/// `src/lib.rs`'s `# Layout` list, top first: on each entry's first line, the
/// module names before its dash (`- [`a`], `b` — what they are for`).
fn order() -> Vec<String> {
    layout_order(&read("src/lib.rs"))
}

fn layout_order(lib: &str) -> Vec<String> {
    let docs = lib.lines().map_while(|line| line.strip_prefix("//!"));
    let layout = docs.skip_while(|line| line.trim() != "# Layout").skip(1).take_while(|line| !line.starts_with(" #"));
    let mut order = Vec::new();
    for entry in layout.filter_map(|line| line.strip_prefix(" - ")) {
        let (names, _) = entry.split_once('—').unwrap_or_else(|| panic!("a Layout entry without a dash: {entry}"));
        for name in names.split(',') {
            let name = name.trim().trim_start_matches('[').trim_end_matches(']');
            let name = name.strip_prefix('`').and_then(|n| n.strip_suffix('`'));
            match name {
                Some(name) if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                    order.push(name.to_string());
                }
                _ => panic!("a Layout entry's names are `module`s or [`module`]s, before its dash: {entry}"),
            }
        }
    }
    order
}

fn read(relative: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)).unwrap()
}

/// A file of the library: where it is, its module, and its code outside unit tests.
struct File {
    relative: PathBuf,
    module: Module,
    code: String,
}

fn crate_files() -> Vec<File> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for path in rust_files(&src) {
        let relative = path.strip_prefix(&src).unwrap().to_path_buf();
        if relative == Path::new("main.rs") {
            continue;
        }
        let code = code_outside_tests(&fs::read_to_string(&path).unwrap());
        files.push(File { module: module_of(&relative), relative, code });
    }
    files
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

/// `proxy/state.rs` → `[proxy, state]`; `proxy/mod.rs` → `[proxy]`; `lib.rs` → `[]`, the root.
fn module_of(relative: &Path) -> Module {
    let mut module: Module =
        relative.with_extension("").iter().map(|part| part.to_string_lossy().into_owned()).collect();
    if module.last().is_some_and(|last| last == "mod" || last == "lib") {
        module.pop();
    }
    module
}

/// The top-level modules a file in `module` names.
fn imported_modules(text: &str, module: &[&str]) -> Vec<String> {
    let module: Module = module.iter().map(|m| m.to_string()).collect();
    paths_named(&code_outside_tests(text), &module).into_iter().filter_map(|path| path.into_iter().next()).collect()
}

/// Which files each file imports: each path named resolves to the deepest
/// module with a file of its own. A file's own module and its parents are left
/// out (a file takes its parent's items, and the parent re-exports the child's).
fn file_imports(files: &[(Module, String)]) -> BTreeMap<Module, BTreeSet<Module>> {
    let known: BTreeSet<&Module> = files.iter().map(|(module, _)| module).collect();
    let mut imports = BTreeMap::new();
    for (module, code) in files {
        let mut targets = BTreeSet::new();
        for path in paths_named(code, module) {
            let Some(target) = (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|m| known.contains(m)) else {
                continue;
            };
            if !module.starts_with(&target) {
                targets.insert(target);
            }
        }
        imports.insert(module.clone(), targets);
    }
    imports
}

/// Each set of files that reach one another through imports (more than one
/// file), as `a, b (a -> b; b -> a)` with each file called by `name`.
fn circles(imports: &BTreeMap<Module, BTreeSet<Module>>, name: impl Fn(&Module) -> String + Copy) -> Vec<String> {
    let reach = |from: &Module| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(m) = todo.pop() {
            for next in imports.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&Module, BTreeSet<Module>> = imports.keys().map(|m| (m, reach(m))).collect();
    let mut circles = BTreeSet::new();
    for (module, reached) in &reaches {
        let circle: BTreeSet<&Module> =
            reached.iter().filter(|other| reaches.get(other).is_some_and(|back| back.contains(*module))).collect();
        if circle.len() > 1 {
            circles.insert(circle);
        }
    }
    circles
        .into_iter()
        .map(|circle| {
            let files: Vec<String> = circle.iter().map(|m| name(m)).collect();
            let ties: Vec<String> = circle
                .iter()
                .flat_map(|from| {
                    imports[*from]
                        .iter()
                        .filter(|to| circle.contains(to))
                        .map(move |to| format!("{} -> {}", name(from), name(to)))
                })
                .collect();
            format!("{} ({})", files.join(", "), ties.join("; "))
        })
        .collect()
}

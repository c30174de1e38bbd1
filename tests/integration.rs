//! Every integration test, one module per file beside this one, in one test
//! binary: `cargo test` runs their tests side by side, four at a time
//! (`.cargo/config.toml`), instead of running 26 binaries one after another
//! (most of a test's time is spent waiting on a daemon, an upstream or a
//! timer). `cargo test --test integration acme::` runs one file's tests.
//!
//! Cargo.toml sets `autotests = false`, so a file in `tests/` runs only when it
//! is listed here (or is a `[[test]]` of its own, like the soak);
//! `every_test_file_is_listed` fails on one that is not.

mod common;

mod access_lines;
mod acme;
mod admin;
mod admin_limits;
mod cli;
mod cloudflare;
mod cluster_acme;
mod cluster_guards;
mod cluster_haproxy;
mod cluster_leader;
mod cluster_status;
mod config_errors;
mod dedupe;
mod engine;
mod forwarding;
mod guards;
mod hostile_upstreams;
mod http2_hostile;
mod http2_pool;
mod http2_rules;
mod init;
mod lifecycle;
mod limits;
mod metrics_reload;
mod module_order;
mod nginx_front;
mod reload;
mod request_targets;
mod slow_readers;
mod smuggling;
mod socket_activation;
mod spool_delivery;
mod spool_faults;
mod spool_outages;
mod spool_tools;
mod status;
mod status_verdict;
mod systemd;
mod telegram;
mod telegram_delivery;
mod telegram_limits;
mod tls;
mod tls_connections;
mod verify_cli;
mod verify_edge;

/// Each `tests/*.rs` file is a module here or a `[[test]]` target in Cargo.toml.
#[test]
fn every_test_file_is_listed() {
    let listed = include_str!("integration.rs");
    let manifest = include_str!("../Cargo.toml");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(module) = name.strip_suffix(".rs") else { continue };
        let own_target = manifest.contains(&format!("path = \"tests/{name}\""));
        if module != "integration" && !own_target && !listed.contains(&format!("\nmod {module};\n")) {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "tests/{missing:?} would never run: list them in tests/integration.rs");
}

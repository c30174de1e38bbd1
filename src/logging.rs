//! Log output: `tracing` lines on stderr, as text for people or JSON for collectors.
//!
//! stderr is what systemd's journal captures, so there is no file handling here.
//! Access-log lines use the target `hookgate::access`, so a filter such as
//! `info,hookgate::access=off` silences them alone.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{Log, LogFormat};

/// Installs the global subscriber. Call once, after the config has loaded.
pub fn init(log: &Log) {
    // The level was validated with the config, so this falls back only in theory.
    let filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    crate::access::format::set_format(log.format);
    match log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

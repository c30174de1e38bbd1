//! `hookgate init`: a commented config for the operator's URLs and names,
//! written from the shipped preset (`config/xboard.toml`) so the two never
//! drift. The result is validated like `hookgate check` before anything is
//! written, and an existing file is never overwritten.

use std::io::Write;
use std::path::Path;

use crate::cli::{InitArgs, Preset};
use crate::config::{Config, ConfigError};

const XBOARD: &str = include_str!("../config/xboard.toml");

/// The preset's placeholders, as the shipped file spells them.
const FRONTEND_URL: &str = "url = \"http://127.0.0.1:3000\"";
const BACKEND_URL: &str = "url = \"http://127.0.0.1:7001\"";
const SITE: &str = "www.example.com";
const API_SITE: &str = "api.example.com";

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} exists; hookgate init never overwrites a config (choose another path with -o)")]
    Exists(String),
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("{0:?} is not a domain name")]
    BadName(String),
    #[error("the config these options make is invalid: {0}")]
    Invalid(#[from] ConfigError),
}

/// The config text for `args`, validated.
pub fn render(args: &InitArgs) -> Result<String, InitError> {
    let Preset::Xboard = args.preset;
    for name in args.domains.iter().chain(&args.api_domain) {
        let plausible = !name.is_empty()
            && name.len() <= 253
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'*');
        if !plausible {
            return Err(InitError::BadName(name.clone()));
        }
    }
    let mut text = format!(
        "# Written by `hookgate init --preset xboard`; the notes below come from the\n\
         # preset and still apply. Check it with `hookgate check -c <this file>`.\n#\n{XBOARD}"
    );
    text = text.replacen(FRONTEND_URL, &format!("url = {}", toml_string(&args.frontend)), 1);
    text = text.replacen(BACKEND_URL, &format!("url = {}", toml_string(&args.backend)), 1);
    text = match &args.api_domain {
        Some(api) => text.replace(API_SITE, api),
        None => without_backend_domain_route(&text),
    };
    if let Some(site) = args.domains.first() {
        text = text.replace(SITE, site);
    }
    if args.domains.len() > 1 {
        let names = args.domains.join(", ");
        text = text.replacen("[listen]\n", &format!("# Public names of this site: {names}.\n[listen]\n"), 1);
    }
    Config::from_toml_str(&text, &args.output.display().to_string())?;
    Ok(text)
}

/// Comments out the backend-domain route when no backend name was given.
fn without_backend_domain_route(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_route = false;
    for line in text.lines() {
        if line == "name = \"backend-domain\"" {
            in_route = true;
            // The `[[routes]]` line just written belongs to this route.
            if let Some(start) = out.trim_end_matches('\n').rfind('\n') {
                out.truncate(start + 1);
            }
            out.push_str("# [[routes]]                     # no --api-domain given\n");
        }
        if in_route && line.is_empty() {
            in_route = false;
        }
        if in_route {
            out.push_str("# ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `value` as a TOML basic string.
fn toml_string(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

/// Writes `text` to `path`, refusing to replace an existing file.
pub fn write_new(path: &Path, text: &str) -> Result<(), InitError> {
    let shown = path.display().to_string();
    let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(InitError::Exists(shown)),
        Err(source) => return Err(InitError::Write { path: shown, source }),
    };
    file.write_all(text.as_bytes()).map_err(|source| InitError::Write { path: shown, source })
}

/// What to run next, for the config at `path`.
pub fn next_steps(path: &Path, site: Option<&str>) -> String {
    let path = path.display();
    let site = site.unwrap_or(SITE);
    format!(
        "wrote {path}\nnext:\n  hookgate check -c {path}\n  hookgate route -c {path} POST 'https://{site}/api/v1/guest/telegram/webhook?access_token=x'\n  hookgate run -c {path}\n"
    )
}

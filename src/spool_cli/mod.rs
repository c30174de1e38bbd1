//! `hookgate spool list|show|retry|drop`: through the running daemon's
//! `/spool` endpoints (`daemon`), or on the spool file itself when no daemon
//! runs (`file`); both give the same [`Done`], printed here. The first line
//! of the output says which way it went.
//!
//! Which way, and why that is safe: a daemon holds the spool's queues in
//! memory, so changing the file behind its back would retry nothing and drop
//! nothing it knows of. The file is therefore opened only when nothing
//! listens at `[admin] addr` (the connection is refused) or the config has
//! no `[admin]` to ask. Any other failure to reach the daemon (a timeout,
//! a refused token) stops the command, since a daemon may be running. Behind
//! that rule stands the spool's lock: a daemon holds `spool.lock` while it
//! has the spool open, so the file is refused (exit 69) while a daemon
//! started without `[admin]`, or from another config naming the same folder,
//! still has it.

mod daemon;
mod file;

use std::fmt::Write;

use crate::cli::SpoolAction;
use crate::config::Config;
use crate::control;
use crate::spool::depot::unix_ms;
use crate::spool::show::{Shown, Text};
use crate::spool::{Summary, read};
use crate::status::spool::size;
use crate::status::table::{Align, Cell, Paint, Table};
use crate::telegram::cli::age;

/// Why a `hookgate spool` command did not do what it was asked. `main`
/// exits 1 for `NotFound` and 69 (EX_UNAVAILABLE) for `Unavailable`.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The request is not kept, or is not a dead letter to retry.
    #[error("{0}")]
    NotFound(String),
    /// Neither the daemon nor the file could be used.
    #[error("{0}")]
    Unavailable(String),
}

impl ToolError {
    /// The same error, saying where it was found.
    fn at(self, place: &str) -> ToolError {
        match self {
            ToolError::NotFound(why) => ToolError::NotFound(format!("{why} ({place})")),
            ToolError::Unavailable(why) => ToolError::Unavailable(format!("{why} ({place})")),
        }
    }
}

/// What a command did, whichever way it went.
#[derive(Debug)]
enum Done {
    Listed(Vec<Summary>),
    Shown(Box<Shown>),
    Retried(Vec<i64>),
    Dropped(i64),
}

/// Runs `action` and returns what to print.
pub async fn run(config: &Config, action: &SpoolAction) -> Result<String, ToolError> {
    let why_the_file = match config.admin {
        None => "this config has no [admin] to ask a daemon".to_string(),
        Some(admin) => match daemon::run(admin, config.admin_token.as_ref(), action).await {
            Ok(done) => {
                let done = done.map_err(|e| e.at(&format!("asked the daemon at {admin}")))?;
                return Ok(format!("via the daemon at {admin}\n{}", render(action, done, false)));
            }
            Err(error) if control::refused_connection(&error) => {
                format!("nothing answers at [admin] addr {admin}")
            }
            Err(error) => {
                return Err(ToolError::Unavailable(format!(
                    "cannot ask the daemon at {admin}: {error:#}; the spool file is left alone while a daemon may \
                     be running"
                )));
            }
        },
    };
    let path = config.spool.dir.join(crate::spool::FILE_NAME);
    let place = format!("working on {} directly: {why_the_file}", path.display());
    // Said first, so an empty list from a mistyped `[spool] dir` does not pass for an empty spool.
    let on_what = match path.exists() {
        true => format!("working on {} directly", path.display()),
        false => format!("there is no {}: nothing was ever kept there", path.display()),
    };
    let done = file::run(config, action).await.map_err(|e| e.at(&place))?;
    Ok(format!("{why_the_file}: {on_what}\n{}", render(action, done, true)))
}

/// What `done` says, for a terminal; `on_file`: the daemon was not running.
fn render(action: &SpoolAction, done: Done, on_file: bool) -> String {
    match done {
        Done::Listed(listed) => list(action, &listed),
        Done::Shown(shown) => show(&shown),
        Done::Retried(ids) => {
            let when =
                if on_file { "to be delivered when the daemon next starts" } else { "attempted now, in its turn" };
            match ids.as_slice() {
                [] => "no dead letters to retry\n".to_string(),
                [id] => format!("request {id} is back in its queue; {when}\n"),
                ids => {
                    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
                    format!("{} dead letters back in their queues ({}); {when}\n", ids.len(), ids.join(", "))
                }
            }
        }
        Done::Dropped(id) => format!("dropped request {id}: it will not be delivered\n"),
    }
}

/// One row per request: id, route, age, method, target, size, attempts, last error.
fn list(action: &SpoolAction, listed: &[Summary]) -> String {
    let (route, dead) = match action {
        SpoolAction::List { route, dead } => (route.as_deref(), *dead),
        _ => (None, false),
    };
    if listed.is_empty() {
        let what = if dead { "no dead letters" } else { "no waiting requests" };
        return route.map_or(format!("{what}\n"), |route| format!("{what} of route {route}\n"));
    }
    use Align::{Left, Right};
    let mut table = Table::new(&[
        ("id", Right),
        ("route", Left),
        ("age", Right),
        ("method", Left),
        ("target", Left),
        ("size", Right),
        ("attempts", Right),
        ("last error", Left),
    ]);
    let now = unix_ms();
    for s in listed {
        table.row(vec![
            Cell::plain(s.id.to_string()),
            Cell::plain(&s.route),
            Cell::plain(age(((now - s.received_ms).max(0) / 1000) as u64)),
            Cell::plain(&s.method),
            Cell::plain(&s.target),
            Cell::plain(size(s.size)),
            Cell::plain(s.attempts.to_string()),
            Cell::plain(if s.last_error.is_empty() { "-" } else { &s.last_error }),
        ]);
    }
    let mut out = String::new();
    table.render(&mut out, Paint(false));
    let what = match (dead, listed.len()) {
        (true, 1) => "dead letter",
        (true, _) => "dead letters",
        (false, _) => "waiting",
    };
    let _ = writeln!(out, "{} {what}", listed.len());
    out
}

/// The summary, then the head and the body as they go upstream, then the last answer.
fn show(shown: &Shown) -> String {
    let s = &shown.summary;
    let now = unix_ms();
    let mut out = String::new();
    let state = if s.dead { "dead letter" } else { "waiting" };
    let _ = writeln!(out, "request {} · route {} → upstream {} · {state}", s.id, s.route, s.upstream);
    let received = age(((now - s.received_ms).max(0) / 1000) as u64);
    let expiry = match s.expires_ms - now {
        left if left > 0 => format!("expires in {}", age((left / 1000) as u64)),
        _ => "expired".to_string(),
    };
    let attempts = if s.attempts == 1 { "1 attempt".to_string() } else { format!("{} attempts", s.attempts) };
    let _ = writeln!(out, "received {received} ago · {expiry} · {attempts} · {}", size(s.size));
    if !s.queue.is_empty() {
        let _ = writeln!(out, "queue: {}", s.queue);
    }
    if !s.last_error.is_empty() {
        let _ = writeln!(out, "last error: {}", s.last_error);
    }
    let _ = writeln!(out, "\n{}\n", shown.head);
    out.push_str(&text_block("body", &shown.body));
    if !shown.last_answer.text.is_empty() {
        let status = s.last_status.map_or(String::new(), |status| format!(" ({status})"));
        out.push_str(&text_block(&format!("\nlast answer{status}"), &shown.last_answer));
    }
    out
}

/// `text` under a heading that says whether it is escaped; nothing for an empty body.
fn text_block(heading: &str, text: &Text) -> String {
    match (text.text.is_empty(), text.utf8) {
        (true, _) => format!("{heading}: empty\n"),
        (false, true) => format!("{heading}:\n{}\n", text.text),
        (false, false) => format!("{heading} (not UTF-8, escaped):\n{}\n", text.text),
    }
}

/// The list filter an action names.
fn filter(action: &SpoolAction) -> read::Filter {
    match action {
        SpoolAction::List { route, dead } => read::Filter { route: route.clone(), dead: *dead },
        _ => read::Filter::default(),
    }
}

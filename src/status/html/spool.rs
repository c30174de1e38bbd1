//! The status page's spool section: the spool's state and file, and per
//! route what waits, how old the oldest is and the dead letters, red where
//! they need attention. Nothing when the spool is off.

use std::fmt::Write;

use super::{duration, esc, thead};
use crate::status::Snapshot;
use crate::status::spool::{ATTENTION_AGE, size};

/// The spool, unless it is off: its state, and per route what waits and what died.
pub(super) fn spool(out: &mut String, s: &Snapshot) {
    let spool = &s.spool;
    let file = esc(spool.file.as_deref().unwrap_or_default());
    match (spool.state, &spool.error) {
        ("off", _) => return,
        (_, Some(error)) => {
            let _ = writeln!(
                out,
                "<h2>Spool</h2><p id=\"spool-state\"><span class=\"badge red\">{}</span> <code>{file}</code>: {}</p>",
                spool.state,
                esc(error)
            );
            return;
        }
        _ => {
            let used = format!("{} of {}", size(spool.bytes), size(spool.max_bytes));
            let _ = write!(
                out,
                "<h2>Spool</h2><p id=\"spool-state\"><span class=\"badge ok\">{}</span> <code>{file}</code>, {used} \
                 used</p>",
                spool.state
            );
        }
    }
    out.push_str("<table id=\"spool\" class=\"cards\">");
    let columns = ["route", "#waiting", "#in flight", "#oldest", "#dead letters", "#stored", "#delivered", "#not kept"];
    thead(out, &[&columns[..], &["last error"]].concat());
    for r in &spool.routes {
        let orphaned = if r.orphaned { " <span class=\"muted\">(orphaned)</span>" } else { "" };
        let oldest = r.oldest_seconds.map_or("–".to_string(), duration);
        let old = r.oldest_seconds.is_some_and(|age| age > ATTENTION_AGE.as_secs());
        let _ = writeln!(
            out,
            "<tr data-spool-route=\"{name}\"><td>{name}{orphaned}</td><td class=\"n\" data-label=\"waiting\">{}</td>\
             <td class=\"n\" data-label=\"in flight\">{}</td><td class=\"n{}\" data-label=\"oldest\">{oldest}</td>\
             <td class=\"n{}\" data-label=\"dead letters\">{}</td><td class=\"n\" data-label=\"stored\">{}</td>\
             <td class=\"n\" data-label=\"delivered\">{}</td><td class=\"n\" data-label=\"not kept\">{}</td>\
             <td data-label=\"last error\">{}</td></tr>",
            r.waiting,
            r.in_flight,
            if old { " red" } else { "" },
            if r.dead > 0 { " red" } else { "" },
            r.dead,
            r.stored,
            r.delivered,
            r.not_kept,
            r.last_error.as_deref().map_or("none".to_string(), esc),
            name = esc(&r.route),
        );
    }
    out.push_str(
        "</tbody></table>\n<p class=\"muted\">Counts since the daemon started; dead letters are those kept now \
         (<code>hookgate spool list --dead</code>).</p>\n",
    );
}

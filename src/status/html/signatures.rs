//! The status page's signatures section: per `verify` route, its scheme and
//! mode and the verdicts since start, red where signatures failed. Nothing
//! when no route has `verify`.

use std::fmt::Write;

use super::{esc, thead};
use crate::status::Snapshot;

pub(super) fn signatures(out: &mut String, s: &Snapshot) {
    if s.signatures.is_empty() {
        return;
    }
    out.push_str("<h2>Signatures</h2><table id=\"signatures\" class=\"cards\">");
    thead(out, &["route", "scheme", "mode", "#ok", "#bad signature", "#stale", "#missing"]);
    for r in &s.signatures {
        let v = &r.verdicts;
        let red = |n: u64| if n > 0 { " red" } else { "" };
        let _ = writeln!(
            out,
            "<tr data-verify-route=\"{name}\"><td>{name}</td><td data-label=\"scheme\">{}</td>\
             <td data-label=\"mode\">{}</td><td class=\"n\" data-label=\"ok\">{}</td>\
             <td class=\"n{}\" data-label=\"bad signature\">{}</td><td class=\"n{}\" data-label=\"stale\">{}</td>\
             <td class=\"n{}\" data-label=\"missing\">{}</td></tr>",
            r.scheme,
            r.mode,
            v.ok,
            red(v.bad_signature),
            v.bad_signature,
            red(v.stale),
            v.stale,
            red(v.missing),
            v.missing,
            name = esc(&r.route),
        );
    }
    out.push_str(
        "</tbody></table>\n<p class=\"muted\">Signature checks since the daemon started; in mode <code>log</code> \
         the failed ones were forwarded all the same.</p>\n",
    );
}

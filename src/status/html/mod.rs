//! The status page at `/`: one server-rendered HTML document with inline CSS
//! and inline SVG sparklines, no script and no external assets. It refreshes
//! itself every 5 s with a `<meta http-equiv="refresh">`, which works with
//! JavaScript off. Every text from the config or the outside is escaped.
//!
//! What needs attention comes first: the verdict with its reasons, then the
//! upstreams and the newest problems, so at 1280 × 900 they are above the
//! fold; then the cluster, the spool, the webhook, the routes, the listeners. Every table is as wide
//! as the page and wraps long text (URLs, match rules, errors) instead of
//! growing past it; under 720 px the wide tables become one card per row.

use std::fmt::Write;

mod signatures;
mod spool;

use super::{Snapshot, Upstream, readable_ms};
use crate::telegram::cli::age as duration;
use signatures::signatures;
use spool::spool;

/// Problems shown before the rest are folded away.
const NEWEST_PROBLEMS: usize = 5;

/// The whole page.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(16 * 1024);
    out.push_str(HEAD);
    header(&mut out, s);
    upstreams(&mut out, &s.upstreams);
    problems(&mut out, s);
    cluster(&mut out, s);
    spool(&mut out, s);
    telegram(&mut out, s);
    routes(&mut out, s);
    signatures(&mut out, s);
    listeners(&mut out, s);
    out.push_str("</body></html>\n");
    out
}

const HEAD: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hookgate status</title>
<style>
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;padding:1.2em 1.5em 2em;max-width:1400px;color:#1d2430;background:#fafbfc}
h1{font-size:1.4em;margin:0 0 .1em}h2{font-size:1.1em;margin:1.3em 0 .4em}p{margin:.35em 0}
code{font-size:.92em;overflow-wrap:anywhere}
table{border-collapse:collapse;background:#fff;box-shadow:0 0 0 1px #dde1e6;width:100%}
table.narrow{width:auto}
th,td{padding:.3em .6em;text-align:left;border-bottom:1px solid #eef0f3;vertical-align:top;overflow-wrap:anywhere}
th{background:#f1f3f6;font-weight:600;white-space:nowrap}tbody th{width:1%}
.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.ok{color:#137333}.amber{color:#b06000}.red{color:#c5221f}.muted{color:#6b7280}
.badge{display:inline-block;padding:.05em .6em;border-radius:1em;color:#fff;font-weight:600;white-space:nowrap}
.badge.ok{background:#137333}.badge.amber{background:#b06000}.badge.red{background:#c5221f}.badge.muted{background:#6b7280}
#trouble{margin:.3em 0 0;padding-left:1.3em}#trouble li{margin:.15em 0}
details summary{cursor:pointer;margin:.5em 0;color:#4a5568}#certificates{margin-top:.6em}
svg{vertical-align:middle}
@media (max-width:720px){
body{padding:.8em .7em 1.5em}tbody th{white-space:normal;width:7em}
table.cards thead{display:none}
table.cards,table.cards tbody{display:block}
table.cards tr{display:flex;flex-wrap:wrap;border-bottom:1px solid #dde1e6;padding:.3em 0}
table.cards td{flex:1 1 100%;border:0;padding:.08em .7em;text-align:left;white-space:normal}
table.cards td.n{flex-basis:50%}
table.cards td:first-child{font-weight:600}
table.cards td.n.whole{flex-basis:100%}
table.cards td[data-label]::before{content:attr(data-label);display:inline-block;width:7.5em;color:#6b7280}
}
</style></head><body>
"#;

/// `[cluster]`, when set: this node, Redis, the leader; red while degraded.
fn cluster(out: &mut String, s: &Snapshot) {
    let Some(c) = &s.cluster else { return };
    let line = super::cluster::line(&c.node, &c.redis, c.state, c.for_seconds, c.leader.as_deref(), c.is_leader);
    let badge = match c.state {
        "degraded" => "red",
        "sharing" => "ok",
        _ => "muted",
    };
    let error = c.last_error.as_deref().filter(|_| c.state == "degraded").map(|e| format!(" (last error: {})", esc(e)));
    let _ = writeln!(
        out,
        "<h2>Cluster</h2><p id=\"cluster\"><span class=\"badge {badge}\">{}</span> {}{}</p>",
        c.state,
        esc(&line),
        error.unwrap_or_default()
    );
}

fn header(out: &mut String, s: &Snapshot) {
    let _ = write!(
        out,
        "<h1>hookgate {}</h1><p id=\"summary\">up {} · config <code>{}</code> loaded {} ago",
        esc(s.version),
        duration(s.uptime_seconds),
        esc(&s.config_file),
        duration(s.now.saturating_sub(s.reload.loaded_at))
    );
    match &s.reload.last_reload {
        None => out.push_str(" · no reload since start-up"),
        Some(r) if r.ok => {
            let _ = write!(
                out,
                " · last reload <span class=\"ok\">succeeded</span> {} ago",
                duration(s.now - r.at.min(s.now))
            );
        }
        Some(r) => {
            let _ = write!(
                out,
                " · last reload <span class=\"red\">failed</span> {} ago: <code id=\"reload-error\">{}</code>",
                duration(s.now - r.at.min(s.now)),
                esc(&r.message)
            );
        }
    }
    out.push_str("</p>\n");
    if s.trouble.is_empty() {
        out.push_str("<p id=\"verdict\"><span class=\"badge ok\">healthy</span></p>\n");
    } else {
        out.push_str("<p id=\"verdict\"><span class=\"badge red\">needs attention</span></p><ul id=\"trouble\">");
        for t in &s.trouble {
            let _ = write!(out, "<li>{}</li>", esc(t));
        }
        out.push_str("</ul>\n");
    }
}

/// A header row; a column whose name starts with `#` is numeric (right-aligned).
/// Under 720 px the header is hidden and each cell shows its `data-label`
/// instead; numeric cells then take half a line (`whole` ones a full line).
fn thead(out: &mut String, columns: &[&str]) {
    out.push_str("<thead><tr>");
    for c in columns {
        match c.strip_prefix('#') {
            Some(c) => {
                let _ = write!(out, "<th class=\"n\">{c}</th>");
            }
            None => {
                let _ = write!(out, "<th>{c}</th>");
            }
        }
    }
    out.push_str("</tr></thead><tbody>\n");
}

fn upstreams(out: &mut String, upstreams: &[Upstream]) {
    out.push_str("<h2>Upstreams</h2><table id=\"upstreams\" class=\"cards\">");
    thead(out, &["upstream", "url", "state", "#connect errors", "#timeouts", "#open (idle)", "last error"]);
    for u in upstreams {
        let last = match (&u.last_error, u.last_error_age_seconds) {
            (Some(e), Some(age)) => format!("<span class=\"red\">{}</span> ({} ago)", esc(e), duration(age)),
            _ => "none".to_string(),
        };
        let _ = writeln!(
            out,
            "<tr data-upstream=\"{name}\"><td>{name}</td><td data-label=\"url\"><code>{}</code></td>\
             <td data-label=\"state\"><span class=\"{}\">{}</span></td>\
             <td class=\"n\" data-label=\"connect errors\">{}</td><td class=\"n\" data-label=\"timeouts\">{}</td>\
             <td class=\"n\" data-label=\"open (idle)\">{} ({})</td><td data-label=\"last error\">{last}</td></tr>",
            esc(&u.url),
            if u.state == "ok" { "ok" } else { "badge red" },
            u.state,
            u.connect_errors,
            u.timeouts,
            u.open_connections,
            u.idle_connections,
            name = esc(&u.name),
        );
    }
    out.push_str("</tbody></table>\n");
}

/// The newest problems in a table, the older ones folded under it.
fn problems(out: &mut String, s: &Snapshot) {
    out.push_str("<h2>Recent problems</h2>");
    if s.problems.is_empty() {
        out.push_str("<p id=\"problems\" class=\"muted\">none</p>\n");
        return;
    }
    let (newest, older) = s.problems.split_at(s.problems.len().min(NEWEST_PROBLEMS));
    problem_table(out, s, "problems", newest);
    if !older.is_empty() {
        let _ = write!(out, "<details><summary>{} older problems</summary>", older.len());
        problem_table(out, s, "older-problems", older);
        out.push_str("</details>\n");
    }
}

fn problem_table(out: &mut String, s: &Snapshot, id: &str, problems: &[crate::recent::Problem]) {
    let _ = write!(out, "<table id=\"{id}\" class=\"cards\">");
    thead(out, &["age", "route", "#status", "reason"]);
    for p in problems {
        let class = if p.status >= 500 { "red" } else { "amber" };
        let _ = writeln!(
            out,
            "<tr><td>{} ago</td><td data-label=\"route\">{}</td><td class=\"n {class}\" data-label=\"status\">{}</td>\
             <td data-label=\"reason\">{}</td></tr>",
            duration(s.now.saturating_sub(p.unix_time)),
            esc(&p.route),
            p.status,
            esc(&p.reason)
        );
    }
    out.push_str("</tbody></table>\n");
}

fn telegram(out: &mut String, s: &Snapshot) {
    let Some(t) = &s.telegram else { return };
    out.push_str("<h2>Telegram webhook</h2><table id=\"telegram\"><tbody>");
    let _ = write!(out, "<tr><th>route</th><td>{}</td></tr>", esc(&t.route));
    match &t.webhook {
        None if !t.monitored => out.push_str(
            "<tr><th>state</th><td><span class=\"badge muted\" id=\"webhook-state\">not monitored</span> \
             monitor_interval is 0s</td></tr>",
        ),
        None => out.push_str(
            "<tr><th>state</th><td><span class=\"badge muted\" id=\"webhook-state\">not checked yet</span></td></tr>",
        ),
        Some(w) if w.unreachable.is_some() => {
            let reached =
                w.reached_at.map_or("never".to_string(), |at| format!("{} ago", duration(s.now.saturating_sub(at))));
            let _ = write!(
                out,
                "<tr><th>state</th><td><span class=\"badge red\" id=\"webhook-state\">{}</span> \
                 <span id=\"webhook-explain\">{}</span></td></tr>\
                 <tr><th>last reached</th><td>{reached}</td></tr>",
                esc(&w.state),
                esc(&w.explain),
            );
        }
        Some(w) => {
            let class = if w.healthy { "ok" } else { "red" };
            let _ = write!(
                out,
                "<tr><th>state</th><td><span class=\"badge {class}\" id=\"webhook-state\">{}</span> \
                 <span id=\"webhook-explain\">{}</span></td></tr>\
                 <tr><th>pending updates</th><td id=\"webhook-pending\">{}</td></tr>\
                 <tr><th>URL matches config</th><td>{}</td></tr>",
                esc(&w.state),
                esc(&w.explain),
                w.pending_updates,
                if w.url_matches_config { "<span class=\"ok\">yes</span>" } else { "<span class=\"red\">no</span>" }
            );
            let error = match (&w.last_error, w.last_error_age_seconds) {
                (Some(e), Some(age)) => format!("{} ({} ago)", esc(e), duration(age)),
                _ => "none".to_string(),
            };
            let _ = write!(out, "<tr><th>last error</th><td>{error}</td></tr>");
        }
    }
    let repair = t.last_repair.as_deref().map_or_else(|| "none".to_string(), esc);
    let mode = if t.repair { "on" } else { "off" };
    let _ = writeln!(out, "<tr><th>repair</th><td>{mode}; last: {repair}</td></tr></tbody></table>");
}

fn routes(out: &mut String, s: &Snapshot) {
    out.push_str("<h2>Routes</h2><table id=\"routes\" class=\"cards\">");
    let columns = ["route", "matches", "upstream", "#req/s", "#2xx", "#3xx", "#4xx", "#5xx", "#p50", "#p99"];
    thead(out, &[&columns[..], &["refused", "last 15 min"]].concat());
    for r in &s.routes {
        let m = &r.last_minute;
        let share = |n: u64| {
            if m.requests == 0 { "–".to_string() } else { format!("{:.0}%", n as f64 * 100.0 / m.requests as f64) }
        };
        let latency = |label: &str, v: Option<f64>| match v {
            Some(v) => format!(
                "<td class=\"n\" data-label=\"{label}\" title=\"at most {v} ms (a histogram bucket's bound)\">{}</td>",
                readable_ms(v)
            ),
            None => format!("<td class=\"n\" data-label=\"{label}\">–</td>"),
        };
        let refused: Vec<String> =
            r.refused.iter().filter(|(_, n)| *n > 0).map(|(kind, n)| format!("{kind} {n}")).collect();
        // The upstream's name (its URL is in the upstreams table), red while it is failing.
        let target = match &r.upstream {
            Some(name) => {
                let failing = s.upstreams.iter().any(|u| &u.name == name && u.state != "ok");
                format!("<span class=\"{}\">{}</span>", if failing { "red" } else { "" }, esc(name))
            }
            None => esc(&r.action),
        };
        let _ = writeln!(
            out,
            "<tr data-route=\"{name}\"><td>{name}</td><td data-label=\"matches\"><code>{}</code></td>\
             <td data-label=\"upstream\" title=\"{}\">{target}</td><td class=\"n whole\" data-label=\"req/s\">{:.2}</td>\
             <td class=\"n\" data-label=\"2xx\">{}</td><td class=\"n\" data-label=\"3xx\">{}</td>\
             <td class=\"n\" data-label=\"4xx\">{}</td><td class=\"n\" data-label=\"5xx\">{}</td>{}{}\
             <td data-label=\"refused\">{}</td><td data-label=\"last 15 min\">{}</td></tr>",
            esc(&r.matches),
            esc(&r.action),
            r.requests_per_second,
            share(m.classes[1]),
            share(m.classes[2]),
            share(m.classes[3]),
            share(m.classes[4]),
            latency("p50", m.p50_ms),
            latency("p99", m.p99_ms),
            if refused.is_empty() { "–".to_string() } else { refused.join(", ") },
            sparkline(&r.per_minute),
            name = esc(&r.name),
        );
    }
    out.push_str(
        "</tbody></table>\n<p class=\"muted\">Shares and latencies over the last minute. A latency is the upper \
         bound of the histogram bucket it falls in, rounded (hover for the exact bound).</p>\n",
    );
}

fn listeners(out: &mut String, s: &Snapshot) {
    out.push_str("<h2>Listeners and certificates</h2><table id=\"listeners\" class=\"narrow\">");
    thead(out, &["address", "kind"]);
    for l in &s.listeners {
        let _ = write!(out, "<tr><td><code>{}</code></td><td>{}</td></tr>", esc(&l.addr), l.kind);
    }
    out.push_str("</tbody></table>\n");
    if s.certificates.is_empty() {
        return;
    }
    out.push_str("<table id=\"certificates\">");
    thead(out, &["certificate", "names", "#days left"]);
    for c in &s.certificates {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"n {}\">{}</td></tr>",
            esc(&c.file),
            esc(&c.names.join(", ")),
            c.level,
            c.days_left
        );
    }
    out.push_str("</tbody></table>\n");
    if let Some(acme) = &s.acme {
        let r = &acme.report;
        let _ = write!(
            out,
            "<p id=\"acme\">ACME ({}, <code>{}</code>) for {}: <b class=\"{}\">{}</b>",
            acme.challenge,
            esc(&acme.directory),
            esc(&acme.domains.join(", ")),
            if r.state == "failing" { "red" } else { "ok" },
            r.state
        );
        if r.failures > 0 {
            let _ = write!(out, "; {} failed attempts in a row", r.failures);
        }
        if let Some(error) = &r.last_error {
            let _ = write!(out, "; last error: <code>{}</code>", esc(error));
        }
        if let Some(next) = r.next_attempt {
            let _ = write!(out, "; next check in {}", duration(next.saturating_sub(s.now)));
        }
        out.push_str("</p>\n");
    }
}

/// Requests per minute as a small bar chart.
fn sparkline(per_minute: &[u64]) -> String {
    let (bar, gap, height) = (6, 1, 20);
    let max = per_minute.iter().copied().max().unwrap_or(0).max(1);
    let width = per_minute.len() * (bar + gap);
    let mut svg = format!(
        "<svg class=\"spark\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\"><title>requests per minute: {}</title>",
        per_minute.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
    );
    for (i, n) in per_minute.iter().enumerate() {
        let h = if *n == 0 { 1 } else { ((*n * height as u64) / max).max(2) as usize };
        let _ = write!(
            svg,
            "<rect x=\"{}\" y=\"{}\" width=\"{bar}\" height=\"{h}\" fill=\"#4a7bd0\"/>",
            i * (bar + gap),
            height - h
        );
    }
    svg.push_str("</svg>");
    svg
}

/// HTML-escapes text for element content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_sparklines_scale() {
        assert_eq!(esc("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
        let svg = sparkline(&[0, 10, 5]);
        assert!(svg.contains("height=\"20\" fill") && svg.contains("height=\"10\" fill"), "{svg}");
        assert!(svg.contains("<title>requests per minute: 0 10 5</title>"));
    }
}

//! The status page at `/`: one server-rendered HTML document with inline CSS
//! and inline SVG sparklines, no script and no external assets. It refreshes
//! itself every 5 s with a `<meta http-equiv="refresh">`, which works with
//! JavaScript off. Every text from the config or the outside is escaped.

use std::fmt::Write;

use super::{Route, Snapshot, Upstream};
use crate::telegram::cli::age as duration;

/// The whole page.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(16 * 1024);
    out.push_str(HEAD);
    header(&mut out, s);
    telegram(&mut out, s);
    routes(&mut out, &s.routes);
    upstreams(&mut out, &s.upstreams);
    listeners(&mut out, s);
    problems(&mut out, s);
    out.push_str("</body></html>\n");
    out
}

const HEAD: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hookgate status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d2430;background:#fafbfc}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.6em 0 .4em}
table{border-collapse:collapse;background:#fff;box-shadow:0 0 0 1px #dde1e6}
th,td{padding:.3em .7em;text-align:left;border-bottom:1px solid #eef0f3;vertical-align:top}
th{background:#f1f3f6;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#137333}.amber{color:#b06000}.red{color:#c5221f}.muted{color:#6b7280}
.badge{display:inline-block;padding:.1em .6em;border-radius:1em;color:#fff;font-weight:600}
.badge.ok{background:#137333}.badge.amber{background:#b06000}.badge.red{background:#c5221f}.badge.muted{background:#6b7280}
svg{vertical-align:middle}
</style></head><body>
"#;

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
        out.push_str("<p id=\"verdict\"><span class=\"badge red\">needs attention</span></p><ul>");
        for t in &s.trouble {
            let _ = write!(out, "<li>{}</li>", esc(t));
        }
        out.push_str("</ul>\n");
    }
}

fn telegram(out: &mut String, s: &Snapshot) {
    let Some(t) = &s.telegram else { return };
    out.push_str("<h2>Telegram webhook</h2><table id=\"telegram\">");
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
                 <tr><th>pending updates</th><td class=\"n\" id=\"webhook-pending\">{}</td></tr>\
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
    let _ = writeln!(out, "<tr><th>repair</th><td>{mode}; last: {repair}</td></tr></table>");
}

fn routes(out: &mut String, routes: &[Route]) {
    out.push_str(
        "<h2>Routes</h2><table id=\"routes\"><tr><th>route</th><th>matches</th><th>upstream</th><th>req/s</th>\
         <th>2xx</th><th>3xx</th><th>4xx</th><th>5xx</th><th>p50</th><th>p99</th><th>refused</th><th>last 15 min</th></tr>\n",
    );
    for r in routes {
        let s = &r.last_minute;
        let share = |n: u64| {
            if s.requests == 0 { "–".to_string() } else { format!("{:.0}%", n as f64 * 100.0 / s.requests as f64) }
        };
        let ms = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("≤{v} ms"));
        let refused: Vec<String> =
            r.refused.iter().filter(|(_, n)| *n > 0).map(|(kind, n)| format!("{kind} {n}")).collect();
        let _ = writeln!(
            out,
            "<tr data-route=\"{name}\"><td>{name}</td><td><code>{}</code></td><td>{}</td><td class=\"n\">{:.2}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.matches),
            esc(&r.action),
            r.requests_per_second,
            share(s.classes[1]),
            share(s.classes[2]),
            share(s.classes[3]),
            share(s.classes[4]),
            ms(s.p50_ms),
            ms(s.p99_ms),
            if refused.is_empty() { "–".to_string() } else { refused.join(", ") },
            sparkline(&r.per_minute),
            name = esc(&r.name),
        );
    }
    out.push_str(
        "</table>\n<p class=\"muted\">Shares and latencies over the last minute; latencies are bucket bounds.</p>\n",
    );
}

fn upstreams(out: &mut String, upstreams: &[Upstream]) {
    out.push_str(
        "<h2>Upstreams</h2><table id=\"upstreams\"><tr><th>upstream</th><th>url</th><th>state</th><th>connect errors</th>\
         <th>timeouts</th><th>open (idle) connections</th><th>last error</th></tr>\n",
    );
    for u in upstreams {
        let last = match (&u.last_error, u.last_error_age_seconds) {
            (Some(e), Some(age)) => format!("<span class=\"red\">{}</span> ({} ago)", esc(e), duration(age)),
            _ => "none".to_string(),
        };
        let _ = writeln!(
            out,
            "<tr data-upstream=\"{name}\"><td>{name}</td><td><code>{}</code></td>\
             <td><span class=\"{}\">{}</span></td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{} ({})</td><td>{last}</td></tr>",
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
    out.push_str("</table>\n");
}

fn listeners(out: &mut String, s: &Snapshot) {
    out.push_str("<h2>Listeners and certificates</h2><table id=\"listeners\"><tr><th>address</th><th>kind</th></tr>");
    for l in &s.listeners {
        let _ = write!(out, "<tr><td><code>{}</code></td><td>{}</td></tr>", esc(&l.addr), l.kind);
    }
    out.push_str("</table>\n");
    if s.certificates.is_empty() {
        return;
    }
    out.push_str("<table id=\"certificates\"><tr><th>certificate</th><th>names</th><th>days left</th></tr>");
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
    out.push_str("</table>\n");
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
            let _ = write!(out, "; next check in {} s", next.saturating_sub(s.now));
        }
        out.push_str("</p>\n");
    }
}

fn problems(out: &mut String, s: &Snapshot) {
    out.push_str("<h2>Recent problems</h2>");
    if s.problems.is_empty() {
        out.push_str("<p id=\"problems\" class=\"muted\">none</p>\n");
        return;
    }
    out.push_str("<table id=\"problems\"><tr><th>age</th><th>route</th><th>status</th><th>reason</th></tr>\n");
    for p in &s.problems {
        let class = if p.status >= 500 { "red" } else { "amber" };
        let _ = writeln!(
            out,
            "<tr><td>{} ago</td><td>{}</td><td class=\"n {class}\">{}</td><td>{}</td></tr>",
            duration(s.now.saturating_sub(p.unix_time)),
            esc(&p.route),
            p.status,
            esc(&p.reason)
        );
    }
    out.push_str("</table>\n");
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

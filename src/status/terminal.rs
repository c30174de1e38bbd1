//! `hookgate status`: the status page's summary as plain text for one
//! terminal screen, read from `/status.json` (so it works against any daemon
//! version that serves it), in the page's order: the verdict, the upstreams,
//! the newest problems, the routes, the spool. Tables are aligned by
//! `table`. Colour only when asked (stdout is a TTY).

use std::fmt::Write;

use serde_json::Value;

use super::table::{Align, Cell, Paint, Table};
use crate::telegram::cli::age;

/// The summary of a `/status.json` document.
pub fn summary(s: &Value, colour: bool) -> String {
    let paint = Paint(colour);
    let mut out = String::new();
    overview(&mut out, s, paint);
    cluster(&mut out, s, paint);
    upstreams(&mut out, s, paint);
    problems(&mut out, s, paint);
    routes(&mut out, s, paint);
    spool(&mut out, s, paint);
    signatures(&mut out, s, paint);
    certificates(&mut out, s);
    out
}

/// Version, uptime and config; the verdict and its trouble; the webhook.
fn overview(out: &mut String, s: &Value, paint: Paint) {
    let loaded = s["now"].as_u64().unwrap_or(0).saturating_sub(s["reload"]["loaded_at"].as_u64().unwrap_or(0));
    let _ = writeln!(
        out,
        "hookgate {} · up {} · {} loaded {} ago",
        text(&s["version"]),
        age(s["uptime_seconds"].as_u64().unwrap_or(0)),
        text(&s["config_file"]),
        age(loaded)
    );
    let trouble: Vec<&str> =
        s["trouble"].as_array().map_or(Vec::new(), |t| t.iter().filter_map(Value::as_str).collect());
    if trouble.is_empty() {
        let _ = writeln!(out, "verdict: {}", paint.apply("healthy", "32"));
    } else {
        let _ = writeln!(out, "verdict: {}", paint.apply("needs attention", "31"));
        for t in &trouble {
            let _ = writeln!(out, "  - {t}");
        }
    }
    if let Some(t) = s["telegram"].as_object() {
        let webhook = &t["webhook"];
        let state = if webhook.is_null() {
            if t["monitored"] == false { "not monitored (monitor_interval is 0s)" } else { "not checked yet" }
                .to_string()
        } else if let Some(why) = webhook["unreachable"].as_str() {
            format!("{}: {why}", paint.apply(text(&webhook["state"]), "31"))
        } else {
            let healthy = webhook["healthy"].as_bool().unwrap_or(false);
            let state = paint.apply(text(&webhook["state"]), if healthy { "32" } else { "31" });
            format!("{state}, {} pending", webhook["pending_updates"].as_u64().unwrap_or(0))
        };
        let repair = t["last_repair"].as_str().unwrap_or("none");
        let _ = writeln!(out, "telegram webhook (route {}): {state}; last repair: {repair}", text(&t["route"]));
    }
}

/// One row per route (and the default): the last minute's traffic.
fn routes(out: &mut String, s: &Value, paint: Paint) {
    use Align::{Left, Right};
    let mut table = Table::new(&[
        ("route (last minute)", Left),
        ("upstream", Left),
        ("req/s", Right),
        ("2xx", Right),
        ("3xx", Right),
        ("4xx", Right),
        ("5xx", Right),
        ("p50", Right),
        ("p99", Right),
        ("refused", Left),
    ]);
    for r in s["routes"].as_array().into_iter().flatten() {
        let m = &r["last_minute"];
        let classes: Vec<u64> = (0..5).map(|i| m["classes"][i].as_u64().unwrap_or(0)).collect();
        let ms = |v: &Value| v.as_f64().map_or("-".to_string(), super::readable_ms);
        let refused: Vec<String> = r["refused"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|pair| pair[1].as_u64().unwrap_or(0) > 0)
            .map(|pair| format!("{} {}", text(&pair[0]), pair[1]))
            .collect();
        let target = r["upstream"].as_str().unwrap_or_else(|| text(&r["action"]));
        table.row(vec![
            Cell::plain(text(&r["name"])),
            Cell::plain(target),
            Cell::plain(format!("{:.2}", r["requests_per_second"].as_f64().unwrap_or(0.0))),
            Cell::plain(classes[1].to_string()),
            Cell::plain(classes[2].to_string()),
            Cell::plain(classes[3].to_string()),
            Cell::painted(classes[4].to_string(), (classes[4] > 0).then_some("31")),
            Cell::plain(ms(&m["p50_ms"])),
            Cell::plain(ms(&m["p99_ms"])),
            Cell::plain(if refused.is_empty() { "-".to_string() } else { refused.join(", ") }),
        ]);
    }
    out.push('\n');
    table.render(out, paint);
}

/// One row per upstream: its state, errors and pooled connections.
fn upstreams(out: &mut String, s: &Value, paint: Paint) {
    use Align::{Left, Right};
    let mut table = Table::new(&[
        ("upstream", Left),
        ("state", Left),
        ("connect errors", Right),
        ("timeouts", Right),
        ("open (idle)", Right),
        ("last error", Left),
    ]);
    for u in s["upstreams"].as_array().into_iter().flatten() {
        let last = match (u["last_error"].as_str(), u["last_error_age_seconds"].as_u64()) {
            (Some(e), Some(a)) => format!("{e} ({} ago)", age(a)),
            _ => "none".to_string(),
        };
        let state = u["state"].as_str().unwrap_or("?");
        let number = |v: &Value| v.as_i64().unwrap_or(0).to_string();
        table.row(vec![
            Cell::plain(text(&u["name"])),
            Cell::painted(state, Some(if state == "ok" { "32" } else { "31" })),
            Cell::plain(number(&u["connect_errors"])),
            Cell::plain(number(&u["timeouts"])),
            Cell::plain(format!("{} ({})", number(&u["open_connections"]), number(&u["idle_connections"]))),
            Cell::plain(last),
        ]);
    }
    out.push('\n');
    table.render(out, paint);
}

/// One row per route with `verify`: its verdicts since start, red where they failed.
fn signatures(out: &mut String, s: &Value, paint: Paint) {
    use Align::{Left, Right};
    let Some(rows) = s["signatures"].as_array().filter(|rows| !rows.is_empty()) else { return };
    out.push('\n');
    let mut table = Table::new(&[
        ("verify route", Left),
        ("scheme", Left),
        ("mode", Left),
        ("ok", Right),
        ("bad signature", Right),
        ("stale", Right),
        ("missing", Right),
    ]);
    for r in rows {
        let count = |key: &str| {
            let n = r["verdicts"][key].as_u64().unwrap_or(0);
            Cell::painted(n.to_string(), (n > 0 && key != "ok").then_some("31"))
        };
        table.row(vec![
            Cell::plain(text(&r["route"])),
            Cell::plain(text(&r["scheme"])),
            Cell::plain(text(&r["mode"])),
            count("ok"),
            count("bad_signature"),
            count("stale"),
            count("missing"),
        ]);
    }
    table.render(out, paint);
}

/// One line for `[cluster]`, when the daemon has it: red while degraded.
fn cluster(out: &mut String, s: &Value, paint: Paint) {
    let Some(c) = s["cluster"].as_object() else { return };
    let state = text(&c["state"]);
    let line = super::cluster::line(
        text(&c["node"]),
        text(&c["redis"]),
        state,
        c["for_seconds"].as_u64().unwrap_or(0),
        c["leader"].as_str(),
        c["is_leader"].as_bool().unwrap_or(false),
    );
    let colour = match state {
        "degraded" => "31",
        "sharing" => "32",
        _ => "33",
    };
    let _ = writeln!(out, "cluster {}", paint.apply(&line, colour));
}

/// The spool, unless it is off (or the daemon predates it): its state, and
/// one row per route, red where it needs attention.
fn spool(out: &mut String, s: &Value, paint: Paint) {
    use Align::{Left, Right};
    let spool = &s["spool"];
    let state = spool["state"].as_str().unwrap_or("off");
    if state == "off" {
        return;
    }
    let file = text(&spool["file"]);
    if let Some(error) = spool["error"].as_str() {
        // Most reasons name the file already.
        let file = if error.contains(file) { String::new() } else { format!("{file}: ") };
        let _ = writeln!(out, "\nspool {}: {file}{error}", paint.apply(state, "31"));
        return;
    }
    let used = |key: &str| super::spool::size(spool[key].as_u64().unwrap_or(0));
    let _ =
        writeln!(out, "\nspool {}: {file}, {} of {} used", paint.apply(state, "32"), used("bytes"), used("max_bytes"));
    let mut table = Table::new(&[
        ("spool route", Left),
        ("waiting", Right),
        ("in flight", Right),
        ("oldest", Right),
        ("dead letters", Right),
        ("stored", Right),
        ("delivered", Right),
        ("not kept", Right),
        ("last error", Left),
    ]);
    for r in spool["routes"].as_array().into_iter().flatten() {
        let number = |key: &str| r[key].as_u64().unwrap_or(0).to_string();
        let attention = r["attention"].as_bool().unwrap_or(false);
        let orphaned = if r["orphaned"] == true { " (orphaned)" } else { "" };
        table.row(vec![
            Cell::painted(format!("{}{orphaned}", text(&r["route"])), attention.then_some("31")),
            Cell::plain(number("waiting")),
            Cell::plain(number("in_flight")),
            Cell::plain(r["oldest_seconds"].as_u64().map_or("-".to_string(), age)),
            Cell::painted(number("dead"), (r["dead"].as_u64().unwrap_or(0) > 0).then_some("31")),
            Cell::plain(number("stored")),
            Cell::plain(number("delivered")),
            Cell::plain(number("not_kept")),
            Cell::plain(r["last_error"].as_str().unwrap_or("none")),
        ]);
    }
    table.render(out, paint);
}

/// Days left on each served certificate; how ACME is doing.
fn certificates(out: &mut String, s: &Value) {
    let acme = s.get("acme").filter(|a| !a.is_null());
    if s["certificates"].as_array().is_some_and(|c| !c.is_empty()) || acme.is_some() {
        out.push('\n');
    }
    for c in s["certificates"].as_array().into_iter().flatten() {
        let days = c["days_left"].as_i64().unwrap_or_default();
        let _ = writeln!(out, "certificate {}: {}", text(&c["file"]), crate::tls::expiry_phrase(days));
    }
    if let Some(acme) = acme {
        let names: Vec<&str> = acme["domains"].as_array().into_iter().flatten().filter_map(|d| d.as_str()).collect();
        let _ = write!(out, "acme ({}) for {}: {}", text(&acme["challenge"]), names.join(", "), text(&acme["state"]));
        if let Some(error) = acme["last_error"].as_str() {
            let _ = write!(out, "; last error: {error}");
        }
        if let (Some(next), Some(now)) = (acme["next_attempt"].as_u64(), s["now"].as_u64()) {
            let _ = write!(out, "; next check in {}", age(next.saturating_sub(now)));
        }
        out.push('\n');
    }
}

/// The five newest recorded problems.
fn problems(out: &mut String, s: &Value, paint: Paint) {
    let problems = s["problems"].as_array().map_or(&[][..], Vec::as_slice);
    if problems.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nrecent problems ({} kept, newest first):", problems.len());
    let mut table =
        Table::new(&[("age", Align::Right), ("route", Align::Left), ("status", Align::Right), ("reason", Align::Left)]);
    for p in problems.iter().take(5) {
        let ago = s["now"].as_u64().unwrap_or(0).saturating_sub(p["unix_time"].as_u64().unwrap_or(0));
        let status = p["status"].as_u64().unwrap_or(0);
        table.row(vec![
            Cell::plain(format!("{} ago", age(ago))),
            Cell::plain(text(&p["route"])),
            Cell::painted(status.to_string(), Some(if status >= 500 { "31" } else { "33" })),
            Cell::plain(text(&p["reason"])),
        ]);
    }
    table.render(out, paint);
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::summary;

    /// Colour goes around the text, not into the widths: without its escape
    /// codes, the coloured summary is the plain one.
    #[test]
    fn colour_does_not_move_the_columns() {
        let s = json!({
            "version": "0.1.0", "uptime_seconds": 5, "now": 100, "config_file": "h.toml", "reload": {"loaded_at": 95},
            "trouble": ["upstream dead: refusing connections"],
            "routes": [
                {"name": "webhook", "upstream": "backend", "requests_per_second": 0.5, "refused": [],
                 "last_minute": {"classes": [0, 1, 0, 0, 12], "p50_ms": 1.024, "p99_ms": 8.192}},
                {"name": "default", "action": "respond 404", "requests_per_second": 12.0, "refused": [["rate", 3]],
                 "last_minute": {"classes": [0, 700, 0, 0, 0], "p50_ms": 0.256, "p99_ms": null}},
            ],
            "upstreams": [
                {"name": "backend", "state": "refusing connections", "connect_errors": 12, "timeouts": 0,
                 "open_connections": 0, "idle_connections": 0, "last_error": "connect: refused", "last_error_age_seconds": 1},
                {"name": "frontend", "state": "ok", "connect_errors": 0, "timeouts": 0,
                 "open_connections": 4, "idle_connections": 3, "last_error": null},
            ],
            "problems": [{"unix_time": 99, "route": "webhook", "status": 502, "reason": "upstream unreachable"}],
        });
        let plain = summary(&s, false);
        let coloured = summary(&s, true);
        assert!(coloured.contains("\x1b[31m12\x1b[0m"), "{coloured}");
        let mut stripped = String::new();
        let mut rest = coloured.as_str();
        while let Some(at) = rest.find('\x1b') {
            stripped.push_str(&rest[..at]);
            rest = &rest[at + rest[at..].find('m').unwrap() + 1..];
        }
        stripped.push_str(rest);
        assert_eq!(stripped, plain);
        assert!(
            plain.contains("webhook              backend       0.50    1    0    0   12    1 ms  8 ms  -"),
            "{plain}"
        );
    }
}

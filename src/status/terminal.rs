//! `hookgate status`: the status page's summary as plain text for one
//! terminal screen, read from `/status.json` (so it works against any daemon
//! version that serves it). Colour only when asked (stdout is a TTY).

use std::fmt::Write;

use serde_json::Value;

use crate::telegram::cli::age;

/// The summary of a `/status.json` document.
pub fn summary(s: &Value, colour: bool) -> String {
    let paint = Paint(colour);
    let mut out = String::new();
    overview(&mut out, s, paint);
    routes(&mut out, s, paint);
    upstreams(&mut out, s);
    certificates(&mut out, s);
    problems(&mut out, s);
    out
}

/// ANSI colour, or none.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn apply(self, text: &str, code: &str) -> String {
        if self.0 { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
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
    let _ = writeln!(
        out,
        "\n{:<24} {:>7} {:>5} {:>5} {:>5} {:>5} {:>9} {:>9}  refused",
        "route (last minute)", "req/s", "2xx", "3xx", "4xx", "5xx", "p50", "p99"
    );
    for r in s["routes"].as_array().into_iter().flatten() {
        let m = &r["last_minute"];
        let classes: Vec<u64> = (0..5).map(|i| m["classes"][i].as_u64().unwrap_or(0)).collect();
        let ms = |v: &Value| v.as_f64().map_or("-".to_string(), |v| format!("≤{v}ms"));
        let refused: Vec<String> = r["refused"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|pair| pair[1].as_u64().unwrap_or(0) > 0)
            .map(|pair| format!("{} {}", text(&pair[0]), pair[1]))
            .collect();
        let fives = if classes[4] > 0 { paint.apply(&classes[4].to_string(), "31") } else { "0".to_string() };
        let _ = writeln!(
            out,
            "{:<24} {:>7.2} {:>5} {:>5} {:>5} {:>5} {:>9} {:>9}  {}",
            text(&r["name"]),
            r["requests_per_second"].as_f64().unwrap_or(0.0),
            classes[1],
            classes[2],
            classes[3],
            fives,
            ms(&m["p50_ms"]),
            ms(&m["p99_ms"]),
            if refused.is_empty() { "-".to_string() } else { refused.join(", ") }
        );
    }
}

/// One row per upstream: errors and pooled connections.
fn upstreams(out: &mut String, s: &Value) {
    let _ = writeln!(
        out,
        "\n{:<16} {:<20} {:>14} {:>9} {:>12}  last error",
        "upstream", "state", "connect errors", "timeouts", "open (idle)"
    );
    for u in s["upstreams"].as_array().into_iter().flatten() {
        let last = match (u["last_error"].as_str(), u["last_error_age_seconds"].as_u64()) {
            (Some(e), Some(a)) => format!("{e} ({} ago)", age(a)),
            _ => "none".to_string(),
        };
        let open = format!("{} ({})", u["open_connections"], u["idle_connections"]);
        let _ = writeln!(
            out,
            "{:<16} {:<20} {:>14} {:>9} {:>12}  {last}",
            text(&u["name"]),
            text(&u["state"]),
            u["connect_errors"],
            u["timeouts"],
            open
        );
    }
}

/// Days left on each served certificate; how ACME is doing.
fn certificates(out: &mut String, s: &Value) {
    for c in s["certificates"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "certificate {}: {} days left", text(&c["file"]), c["days_left"]);
    }
    if let Some(acme) = s.get("acme").filter(|a| !a.is_null()) {
        let names: Vec<&str> = acme["domains"].as_array().into_iter().flatten().filter_map(|d| d.as_str()).collect();
        let _ = write!(out, "acme ({}) for {}: {}", text(&acme["challenge"]), names.join(", "), text(&acme["state"]));
        if let Some(error) = acme["last_error"].as_str() {
            let _ = write!(out, "; last error: {error}");
        }
        out.push('\n');
    }
}

/// The five newest recorded problems.
fn problems(out: &mut String, s: &Value) {
    let problems = s["problems"].as_array().map_or(&[][..], Vec::as_slice);
    if !problems.is_empty() {
        let _ = writeln!(out, "\nrecent problems ({} kept, newest first):", problems.len());
        for p in problems.iter().take(5) {
            let ago = s["now"].as_u64().unwrap_or(0).saturating_sub(p["unix_time"].as_u64().unwrap_or(0));
            let _ = writeln!(out, "  {} ago  {}  {}  {}", age(ago), text(&p["route"]), p["status"], text(&p["reason"]));
        }
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("?")
}

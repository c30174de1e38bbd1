//! `forget_gone` against real configs: what a reload removes is no longer
//! rendered, and what it keeps keeps its counts.

use std::time::Duration;

use super::*;
use crate::config::Config;
use crate::lifecycle::metric_names;
use crate::routes::Action;

/// The handles and windows `State::new` takes for `config`, plus what
/// housekeeping sets.
fn serve(metrics: &Metrics, config: &Config) {
    for route in config.routes.routes() {
        let upstream = match route.action {
            Action::Upstream(i) => config.upstreams[i].name.to_string(),
            Action::Respond(_) => NONE.to_string(),
        };
        metrics.route(&route.name, &upstream).record(200, Duration::from_millis(3), SystemTime::now());
        metrics.rate_limit_keys(&route.name, 1);
    }
    metrics.route(DEFAULT_ROUTE, "app");
    metrics.route(NONE, NONE);
    for upstream in &config.upstreams {
        metrics.upstream(&upstream.name).connect_failed("refused");
    }
    metrics.certificate_expiry("/etc/hookgate/old.pem", 30);
}

fn config(routes: &[(&str, &str)]) -> Config {
    let mut text = "[listen]\naddrs = [\"127.0.0.1:0\"]\n[upstreams.app]\nurl = \"http://127.0.0.1:1\"\n".to_string();
    for (_, upstream) in routes {
        if *upstream != "app" && !text.contains(&format!("[upstreams.{upstream}]")) {
            text += &format!("[upstreams.{upstream}]\nurl = \"http://127.0.0.1:2\"\n");
        }
    }
    for (i, (name, upstream)) in routes.iter().enumerate() {
        text += &format!("[[routes]]\nname = \"{name}\"\npath = \"/{i}\"\nupstream = \"{upstream}\"\n");
    }
    Config::from_toml_str(&format!("{text}[default]\nupstream = \"app\"\n"), "hookgate.toml").unwrap()
}

#[test]
fn a_reload_forgets_the_series_and_windows_of_names_the_config_dropped() {
    let metrics = Metrics::prometheus();
    let before = config(&[("keep", "app"), ("moves", "old"), ("gone", "old")]);
    serve(&metrics, &before);
    let text = metrics.render().unwrap();
    for needle in ["route=\"gone\"", "upstream=\"old\"", "old.pem"] {
        assert!(text.contains(needle), "{needle} in {text}");
    }

    let after = config(&[("keep", "app"), ("moves", "new"), ("fresh", "new")]);
    serve(&metrics, &after);
    metrics.forget_gone(&metric_names(&after));
    let text = metrics.render().unwrap();
    for gone in ["route=\"gone\"", "upstream=\"old\"", "cert_file"] {
        assert!(!text.contains(gone), "{gone} still in {text}");
    }
    for kept in [
        "hookgate_requests_total{route=\"keep\",upstream=\"app\",class=\"2xx\"} 2",
        "hookgate_requests_total{route=\"moves\",upstream=\"new\",class=\"2xx\"} 1",
        "hookgate_request_duration_seconds_count{route=\"moves\"} 2",
        "hookgate_rate_limit_keys{route=\"fresh\"} 1",
        "hookgate_upstream_connect_errors_total{upstream=\"new\"} 1",
        "hookgate_upstream_connect_errors_total{upstream=\"app\"} 2",
        "hookgate_requests_total{route=\"default\",upstream=\"app\",class=\"2xx\"} 0",
        "hookgate_requests_total{route=\"-\",upstream=\"-\",class=\"2xx\"} 0",
        "hookgate_config_reloads_total{result=\"success\"} 0",
        "hookgate_build_info{version=",
    ] {
        assert!(text.contains(kept), "{kept} missing from {text}");
    }
    let routes: Vec<String> = lock(&metrics.route_windows).keys().cloned().collect();
    let mut routes: Vec<&str> = routes.iter().map(String::as_str).collect();
    routes.sort_unstable();
    assert_eq!(routes, ["-", "default", "fresh", "keep", "moves"]);
    let mut upstreams: Vec<String> = lock(&metrics.upstream_windows).keys().cloned().collect();
    upstreams.sort_unstable();
    assert_eq!(upstreams, ["app", "new"]);
}

//! Route selection, path canonicalisation and header rewriting cost.
//!
//! Selection is measured with 10, 1,000 and 10,000 routes (half exact paths,
//! half segment prefixes, as in a large multi-tenant config) for three requests:
//! one that hits the last route, one that hits an early route, and one that
//! falls through to `[default]`. Indexed selection should cost about the same
//! at every size. Run with `cargo bench --bench routing`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{HeaderMap, Method};

use hookgate::Config;
use hookgate::internals;
use hookgate::internals::RequestFacts;

fn config_with_routes(n: usize) -> Config {
    let mut text = String::from("[upstreams.backend]\nurl = \"http://127.0.0.1:7001\"\n");
    text.push_str("[upstreams.frontend]\nurl = \"http://127.0.0.1:3000\"\n");
    for i in 0..n {
        if i % 2 == 0 {
            text.push_str(&format!(
                "[[routes]]\nname = \"r{i}\"\npath = \"/api/v1/tenant{i}/webhook\"\nmethods = [\"POST\"]\nupstream = \"backend\"\n"
            ));
        } else {
            text.push_str(&format!(
                "[[routes]]\nname = \"r{i}\"\npath_prefix = \"/t{i}/notify\"\nupstream = \"backend\"\n"
            ));
        }
    }
    text.push_str("[default]\nupstream = \"frontend\"\n");
    Config::from_toml_str(&text, "bench.toml").expect("bench config is valid")
}

fn select(c: &mut Criterion) {
    let headers = HeaderMap::new();
    let mut group = c.benchmark_group("select");
    for n in [10usize, 1_000, 10_000] {
        let config = config_with_routes(n);
        let last_prefix = format!("/t{}/notify/epay/123", if (n - 1) % 2 == 1 { n - 1 } else { n - 2 });
        let requests = [
            ("last-route", Method::GET, last_prefix),
            ("first-route", Method::POST, "/api/v1/tenant0/webhook".to_string()),
            ("default", Method::GET, "/user/dashboard/orders".to_string()),
        ];
        for (label, method, path) in &requests {
            let facts = RequestFacts { method, host: "www.example.com", path, query: None, headers: &headers };
            assert!(config.routes.select(&facts).route.is_some() == (*label != "default"));
            group.bench_with_input(BenchmarkId::new(*label, n), &facts, |b, facts| {
                b.iter(|| black_box(config.routes.select(black_box(facts))).route.is_some())
            });
        }
    }
    group.finish();
}

fn canonicalize(c: &mut Criterion) {
    let mut group = c.benchmark_group("canonicalize");
    for (label, path) in [
        ("plain", "/api/v1/guest/telegram/webhook"),
        ("escaped", "/api/v1/guest/%74elegram//webhook%20x"),
        ("params", "/api;v=1/guest/telegram/webhook"),
    ] {
        group.bench_function(label, |b| b.iter(|| internals::canonicalize(black_box(path)).is_ok()));
    }
    group.finish();
}

fn rewrite_headers(c: &mut Criterion) {
    use hookgate::internals as headers;
    use http::{HeaderMap, HeaderValue};
    let mut template = HeaderMap::new();
    for (name, value) in [
        ("host", "www.example.com"),
        ("user-agent", "TelegramBot (like TwitterBot)"),
        ("accept", "*/*"),
        ("content-type", "application/json"),
        ("content-length", "1024"),
        ("connection", "keep-alive"),
        ("x-forwarded-for", "203.0.113.9"),
    ] {
        template.insert(http::HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    let host = HeaderValue::from_static("www.example.com");
    let peer = http::HeaderValue::from_static("127.0.0.1");
    c.bench_function("headers/rewrite-request", |b| {
        b.iter_batched(
            || template.clone(),
            |mut h| {
                headers::strip_hop_by_hop(&mut h);
                headers::forwarded(&mut h, &peer, false, "http", Some(&host), http::Version::HTTP_11)
                    .insert_into(&mut h);
                h
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, select, canonicalize, rewrite_headers);
criterion_main!(benches);

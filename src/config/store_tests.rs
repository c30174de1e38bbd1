//! `[spool]` and a route's `store` key: defaults, the file's spelling, and
//! one error per mistake, each naming its key.

use super::*;
use crate::spool::{SpoolSettings, StoreMode, StoreOrder, StoreSpec};

const BASE: &str = r#"
[listen]
addrs = ["127.0.0.1:0"]

[upstreams.backend]
url = "http://127.0.0.1:7001"
"#;

fn load(extra: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(&format!("{BASE}{extra}"), "/etc/hookgate/hookgate.toml")
}

fn route_with(store: &str) -> String {
    format!("[[routes]]\nname = \"telegram\"\npath = \"/hook\"\nupstream = \"backend\"\nstore = {store}\n")
}

#[test]
fn spool_defaults_and_a_relative_dir_beside_the_config() {
    let config = load("").unwrap();
    assert_eq!(
        config.spool,
        SpoolSettings { dir: "/var/lib/hookgate/spool".into(), max_bytes: SpoolSettings::DEFAULT_MAX_BYTES }
    );
    let config = load("[spool]\ndir = \"spool\"\nmax_bytes = \"64MiB\"\n").unwrap();
    assert_eq!(config.spool, SpoolSettings { dir: "/etc/hookgate/spool".into(), max_bytes: 64 << 20 });
}

#[test]
fn a_store_key_is_read_with_its_defaults() {
    let config =
        load(&route_with(r#"{ mode = "fallback", ack = 202, order = "telegram_chat", expire = "2h" }"#)).unwrap();
    let want = StoreSpec {
        mode: StoreMode::Fallback,
        ack: http::StatusCode::ACCEPTED,
        order: StoreOrder::TelegramChat,
        expire: Duration::from_secs(7200),
        concurrency: StoreSpec::DEFAULT_CONCURRENCY,
    };
    assert_eq!(config.routes.routes()[0].store, Some(want));
    let config = load(&route_with(r#"{ mode = "journal" }"#)).unwrap();
    let store = config.routes.routes()[0].store.clone().unwrap();
    assert_eq!(
        (store.mode, store.order, store.expire),
        (StoreMode::Journal, StoreOrder::None, StoreSpec::DEFAULT_EXPIRE)
    );
}

#[test]
fn each_store_mistake_is_one_error_naming_its_key() {
    let cases = [
        (r#"{ mode = "fallback", ack = 500 }"#, "routes[0].store.ack", "500: an acknowledgement is a 2xx status"),
        (r#"{ mode = "journal", ack = 200 }"#, "routes[0].store.ack", "journal passes the upstream's answer through"),
        (r#"{ mode = "always", expire = "0s" }"#, "routes[0].store.expire", "must be above 0"),
        (r#"{ mode = "always", concurrency = 0 }"#, "routes[0].store.concurrency", "must be above 0"),
    ];
    for (store, key, says) in cases {
        let error = load(&route_with(store)).expect_err(store).to_string();
        assert!(error.contains(key) && error.contains(says), "{store}: {error}");
        assert_eq!(error.matches(key).count(), 1, "one error: {error}");
    }
    let error = load(&route_with(r#"{ mode = "sometimes" }"#)).expect_err("unknown mode").to_string();
    assert!(error.contains("mode") && error.contains("fallback"), "{error}");
    let respond =
        "[[routes]]\nname = \"r\"\npath = \"/r\"\nrespond = { status = 204 }\nstore = { mode = \"always\" }\n";
    let error = load(respond).expect_err("store on a respond route").to_string();
    assert!(error.contains("only a route with an upstream has requests to keep"), "{error}");
    let error = load(&route_with(r#"{ mode = "always", expire = 5 }"#)).expect_err("a number for expire").to_string();
    assert!(error.contains("routes[0].store.expire") && error.contains("write e.g. expire = \"5s\""), "{error}");
    let error = load("[spool]\nmax_bytes = \"0B\"\n").expect_err("max_bytes 0").to_string();
    assert!(error.contains("spool.max_bytes") && error.contains("must be above 0"), "{error}");
}

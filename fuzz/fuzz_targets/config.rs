//! The config loader: any text gives a `Config` or errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = hookgate::Config::from_toml_str(text, "fuzz.toml") {
        assert!(!e.to_string().is_empty());
    }
});

//! The canonical path: never a panic; what it accepts has no dot segments,
//! starts with `/`, and canonicalises to itself.
#![no_main]

use hookgate::internals::canonicalize;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Only what a request target can hold reaches the canonicaliser.
    let Ok(target) = text.parse::<http::uri::PathAndQuery>() else { return };
    let raw = target.path();
    let Ok(path) = canonicalize(raw) else { return };
    let text = path.as_str().to_string();
    assert!(text.starts_with('/'), "{text:?}");
    for key in [path.as_str(), path.match_key()] {
        assert!(!key.split('/').any(|s| s == "." || s == ".."), "dot segment left in {key:?} from {raw:?}");
        assert!(!key.contains('\\') && !key.contains('\0'), "{key:?}");
    }
    let again = canonicalize(&text).unwrap_or_else(|e| panic!("{text:?} (from {raw:?}) is refused: {e}"));
    assert_eq!(again.as_str(), text, "not idempotent for {raw:?}");
    assert_eq!(again.match_key(), path.match_key());
});

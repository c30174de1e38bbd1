//! An upstream's response head: never a panic, offsets inside the head, and
//! bodiless statuses never framed with a body.
#![no_main]

use hookgate::internals::{Framing, parse_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flag, buf)) = data.split_first() else { return };
    let head_request = flag & 1 == 1;
    let Ok(Some(head)) = parse_response(buf, head_request, 65536) else { return };
    assert!(head.len <= buf.len() && head.len <= 65536);
    assert!(head.reason.end <= head.len);
    for (name, value) in &head.headers {
        assert!(name.end <= head.len && value.end <= head.len);
    }
    let bodiless = head_request || (100..200).contains(&head.status) || head.status == 204 || head.status == 304;
    if bodiless {
        assert_eq!(head.framing, Framing::Empty, "status {} framed with a body", head.status);
    }
    // The head alone parses the same: nothing after it was looked at.
    let alone =
        parse_response(&buf[..head.len], head_request, 65536).expect("the head alone parses").expect("complete");
    assert_eq!((alone.status, alone.len, alone.framing), (head.status, head.len, head.framing));
});

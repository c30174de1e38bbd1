//! An upstream's response head: never a panic, offsets inside the head,
//! bodiless statuses never framed with a body, and the head hookgate writes
//! for the client framed as hookgate frames the body, whatever the upstream's
//! `Connection` header names.
#![no_main]

use hookgate::internals::{Framing, RESPONSE_FIELDS, client_framing, parse_response, write_response_head};
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
    if head.headers.len() > RESPONSE_FIELDS {
        return; // The engine answers 502 instead of forwarding it.
    }
    for http10 in [false, true] {
        let to = client_framing(head.framing, http10);
        let mut out = Vec::new();
        write_response_head(&mut out, buf, &head, to, true, http10);
        let client = parse_response(&out, head_request, 1 << 20).expect("hookgate's head parses").expect("complete");
        assert_eq!((client.status, client.len), (head.status, out.len()));
        assert_eq!(client.framing, to, "the client reads {:?}", String::from_utf8_lossy(&out));
    }
});

//! The `Date` header on HTTP/1 responses that have none: hookgate's own
//! answers (RFC 9110 §6.6.1: an origin server with a clock must send one on
//! 2xx, 3xx and 4xx responses) and upstream responses that came without one
//! (a recipient with a clock must add one to a response it forwards). The
//! line is formatted once a second per worker thread, not per response.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    /// The second last formatted, and its `date: …\r\n` line.
    static LINE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

/// Appends `date: <IMF-fixdate>\r\n` for the current second.
pub fn write(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
    LINE.with(|line| {
        let (formatted_second, text) = &mut *line.borrow_mut();
        if *formatted_second != second {
            text.clear();
            text.extend_from_slice(b"date: ");
            text.extend_from_slice(httpdate::fmt_http_date(now).as_bytes());
            text.extend_from_slice(b"\r\n");
            *formatted_second = second;
        }
        out.extend_from_slice(text);
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_line_is_an_imf_fixdate_for_now() {
        let mut out = Vec::new();
        super::write(&mut out);
        super::write(&mut out);
        let text = std::str::from_utf8(&out).unwrap();
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), 2, "{text}");
        let value = lines[0].strip_prefix("date: ").unwrap();
        assert_eq!(value.len(), "Sun, 06 Nov 1994 08:49:37 GMT".len());
        let when = httpdate::parse_http_date(value).unwrap();
        let age = std::time::SystemTime::now().duration_since(when).unwrap();
        assert!(age.as_secs() <= 2, "{value} is {age:?} old");
    }
}

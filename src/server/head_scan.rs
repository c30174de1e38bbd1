//! Spots a request head that carries both `Content-Length` and
//! `Transfer-Encoding`, the classic request-smuggling shape.
//!
//! hyper resolves the conflict itself (Transfer-Encoding wins, the connection
//! closes afterwards) and drops `Content-Length` before the service sees the
//! request, so the service cannot tell. This scanner reads the raw head bytes
//! as they arrive, up to the blank line that ends the head, and remembers which
//! of the two header names it saw. It never looks at body bytes.

/// Longest header name that matters here (`transfer-encoding`), plus one.
const NAME_MAX: usize = 18;

#[derive(Debug)]
pub struct HeadScan {
    /// The blank line ending the head was seen; nothing more is read.
    done: bool,
    /// Skipping to the end of the current line.
    skipping: bool,
    /// Some non-empty line was seen (empty lines before the request line are allowed).
    started: bool,
    name: [u8; NAME_MAX],
    len: usize,
    content_length: bool,
    transfer_encoding: bool,
}

impl HeadScan {
    pub fn new() -> Self {
        HeadScan {
            done: false,
            skipping: false,
            started: false,
            name: [0; NAME_MAX],
            len: 0,
            content_length: false,
            transfer_encoding: false,
        }
    }

    /// True when the head seen so far has both framing headers.
    pub fn conflicting(&self) -> bool {
        self.content_length && self.transfer_encoding
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Feeds the next bytes read from the client.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !self.done && !bytes.is_empty() {
            if self.skipping {
                match bytes.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        bytes = &bytes[end + 1..];
                        self.skipping = false;
                        self.len = 0;
                    }
                    None => return,
                }
                continue;
            }
            let b = bytes[0];
            bytes = &bytes[1..];
            match b {
                b'\n' => {
                    let blank = self.len == 0 || (self.len == 1 && self.name[0] == b'\r');
                    if blank && self.started {
                        self.done = true;
                    }
                    self.len = 0;
                }
                b':' => {
                    self.started = true;
                    match &self.name[..self.len] {
                        b"content-length" => self.content_length = true,
                        b"transfer-encoding" => self.transfer_encoding = true,
                        _ => {}
                    }
                    self.skipping = true;
                }
                _ if self.len < NAME_MAX => {
                    if b != b'\r' {
                        self.started = true;
                    }
                    self.name[self.len] = b.to_ascii_lowercase();
                    self.len += 1;
                }
                _ => {
                    self.started = true;
                    self.skipping = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(chunks: &[&[u8]]) -> HeadScan {
        let mut s = HeadScan::new();
        for c in chunks {
            s.feed(c);
        }
        s
    }

    #[test]
    fn finds_both_headers_in_any_case_and_split() {
        let head = b"POST / HTTP/1.1\r\nHost: h\r\nContent-LENGTH: 4\r\ntransfer-encoding: chunked\r\n\r\n";
        assert!(scan(&[head]).conflicting());
        for split in 1..head.len() {
            let s = scan(&[&head[..split], &head[split..]]);
            assert!(s.conflicting(), "split at {split}");
            assert!(s.is_done());
        }
        let bytewise: Vec<&[u8]> = head.chunks(1).collect();
        assert!(scan(&bytewise).conflicting());
    }

    #[test]
    fn one_header_alone_is_fine() {
        assert!(!scan(&[b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n"]).conflicting());
        assert!(!scan(&[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"]).conflicting());
        assert!(!scan(&[b"GET / HTTP/1.1\nHost: h\n\n"]).conflicting());
    }

    #[test]
    fn stops_at_the_end_of_the_head() {
        // A body that mentions the other header must not count.
        let s = scan(&[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\nContent-Length: 5\r\n"]);
        assert!(s.is_done());
        assert!(!s.conflicting());
    }

    #[test]
    fn similar_names_do_not_count() {
        let s =
            scan(&[b"POST / HTTP/1.1\r\nX-Content-Length: 1\r\nTransfer-Encodings: x\r\nContent-Length-X: 1\r\n\r\n"]);
        assert!(!s.conflicting());
    }

    #[test]
    fn leading_blank_lines_do_not_end_the_head() {
        let s = scan(&[b"\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"]);
        assert!(s.conflicting());
    }
}

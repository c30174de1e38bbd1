//! The chunked transfer coding (RFC 9112 §7.1), decoded strictly.
//!
//! Bodies are decoded and validated, never passed through as they came: the
//! next hop gets chunk framing that hookgate wrote itself, so a size line,
//! extension or trailer that another parser could read differently never
//! reaches it. Chunk extensions are checked and dropped; trailer fields are
//! checked and kept, to be written after the last chunk, less those that may
//! not trail (`headers::may_trail`). A size line longer
//! than `MAX_LINE`, more than `MAX_EXTENSIONS` of extensions in one body,
//! trailers larger than the limit, a bare LF or CR, or a size that overflows
//! are errors.

use crate::proxy::headers;

/// Longest chunk-size line (size plus extensions).
const MAX_LINE: usize = 4096;

/// Most extension bytes in one body, all its chunks together (hyper's limit
/// too). Nobody sends extensions for real, and without a total a body of
/// one-byte chunks with long extensions would have hookgate read and drop
/// thousands of bytes for each byte of `max_body` it counts.
const MAX_EXTENSIONS: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid chunked body: {0}")]
pub struct ChunkError(pub &'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of the size.
    Size,
    /// After the size: whitespace, then extensions or the line end.
    AfterSize,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    Trailer,
    TrailerLf,
    EndLf,
    Done,
}

#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    line: usize,
    digits: usize,
    /// Extension bytes so far in this body.
    extensions: usize,
    /// The trailer lines that may be passed on (each with its CRLF; see
    /// `headers::may_trail`), as received.
    trailers: Vec<u8>,
    /// Trailer bytes received, those dropped included.
    trailer_bytes: usize,
    max_trailers: usize,
}

impl ChunkedDecoder {
    pub fn new(max_trailers: usize) -> Self {
        ChunkedDecoder {
            state: State::Size,
            size: 0,
            line: 0,
            digits: 0,
            extensions: 0,
            trailers: Vec::new(),
            trailer_bytes: 0,
            max_trailers,
        }
    }

    /// The last chunk and the trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The trailer lines, each ending in CRLF (empty when there were none).
    pub fn trailers(&self) -> &[u8] {
        &self.trailers
    }

    /// Decodes as much of `input` as it can, appending body bytes to `out`.
    /// Returns how many bytes of `input` were consumed: all of them, or fewer
    /// when the body ended and the rest belongs to the next message.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Data {
                let take = (input.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                out.extend_from_slice(&input[i..i + take]);
                i += take;
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            if self.state == State::Done {
                break;
            }
            self.step(input[i])?;
            i += 1;
        }
        Ok(i)
    }

    fn step(&mut self, b: u8) -> Result<(), ChunkError> {
        self.state = match self.state {
            State::Size | State::AfterSize | State::Extension => return self.size_line(b),
            State::SizeLf if b == b'\n' => {
                self.line = 0;
                if self.size == 0 { State::TrailerStart } else { State::Data }
            }
            State::DataCr if b == b'\r' => State::DataLf,
            State::DataLf if b == b'\n' => State::Size,
            State::TrailerStart if b == b'\r' => State::EndLf,
            State::TrailerStart | State::Trailer if b != b'\r' && b != b'\n' => {
                self.push_trailer(b)?;
                State::Trailer
            }
            State::Trailer if b == b'\r' => State::TrailerLf,
            State::TrailerLf if b == b'\n' => {
                if self.check_trailer_line()? {
                    self.trailers.extend_from_slice(b"\r\n");
                } else {
                    self.trailers.truncate(self.trailers.len() - self.line);
                }
                self.line = 0;
                State::TrailerStart
            }
            State::EndLf if b == b'\n' => State::Done,
            _ => return Err(ChunkError("bad line ending")),
        };
        Ok(())
    }

    fn size_line(&mut self, b: u8) -> Result<(), ChunkError> {
        self.line += 1;
        if self.line > MAX_LINE {
            return Err(ChunkError("chunk size line too long"));
        }
        match (self.state, b) {
            (State::Size, _) if b.is_ascii_hexdigit() => {
                self.digits += 1;
                // At most 15 significant digits (under 2^60); leading zeros are allowed (RFC 9112 §7.1).
                if self.size >= 1 << 56 {
                    return Err(ChunkError("chunk size too large"));
                }
                self.size = self.size * 16 + u64::from((b as char).to_digit(16).unwrap_or(0));
            }
            (State::Size, _) if self.digits == 0 => return Err(ChunkError("missing chunk size")),
            (State::Size | State::AfterSize, b' ' | b'\t') => self.state = State::AfterSize,
            (State::Size | State::AfterSize, b';') => self.state = State::Extension,
            (State::Size | State::AfterSize | State::Extension, b'\r') => {
                self.digits = 0;
                self.state = State::SizeLf;
            }
            // Extension names, values and quoted strings: any visible byte, space or tab.
            (State::Extension, b' ' | b'\t' | 0x21..=0x7e | 0x80..=0xff) => {
                self.extensions += 1;
                if self.extensions > MAX_EXTENSIONS {
                    return Err(ChunkError("chunk extensions too large"));
                }
            }
            _ => return Err(ChunkError("invalid chunk size line")),
        }
        Ok(())
    }

    fn push_trailer(&mut self, b: u8) -> Result<(), ChunkError> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > self.max_trailers {
            return Err(ChunkError("trailers too large"));
        }
        if b < 0x20 && b != b'\t' || b == 0x7f {
            return Err(ChunkError("invalid trailer byte"));
        }
        self.trailers.push(b);
        self.line += 1;
        Ok(())
    }

    /// A trailer line must be `name: value` with a token name. Returns
    /// whether the field may be passed on: framing, routing and the fields
    /// hookgate sets itself never are (RFC 9110 §6.5.1), so a trailer cannot
    /// override them for an upstream that merges trailers into its headers.
    fn check_trailer_line(&self) -> Result<bool, ChunkError> {
        let line = &self.trailers[self.trailers.len() - self.line..];
        let colon = line.iter().position(|&b| b == b':').ok_or(ChunkError("trailer without a colon"))?;
        let valid_name = colon > 0 && http::HeaderName::from_bytes(&line[..colon]).is_ok();
        if !valid_name {
            return Err(ChunkError("invalid trailer name"));
        }
        Ok(headers::may_trail(&line[..colon]))
    }
}

/// Writes one chunk's size line for `len` body bytes.
pub fn write_size(out: &mut Vec<u8>, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = len;
    loop {
        i -= 1;
        digits[i] = HEX[n % 16];
        n /= 16;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], split: usize) -> Result<(Vec<u8>, usize, Vec<u8>, bool), ChunkError> {
        let mut decoder = ChunkedDecoder::new(256);
        let mut out = Vec::new();
        let mut used = 0;
        for piece in input.chunks(split.max(1)) {
            let n = decoder.decode(piece, &mut out)?;
            used += n;
            if n < piece.len() {
                break;
            }
        }
        Ok((out, used, decoder.trailers().to_vec(), decoder.is_done()))
    }

    #[test]
    fn valid_bodies_decode_the_same_at_every_split() {
        let cases: &[(&[u8], &[u8], &[u8])] = &[
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello", b""),
            (b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world", b""),
            (b"A\r\n0123456789\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n", b"0123456789", b"X-Sum: 1\r\nY: 2\r\n"),
            // Fields that may not trail are dropped (a probe of 2026-12-07 found `Host` passed on).
            (
                b"1\r\na\r\n0\r\nHost: evil\r\nX-Sum: 1\r\nContent-Length: 50\r\nX_Forwarded_For: 6.6.6.6\r\n\r\n",
                b"a",
                b"X-Sum: 1\r\n",
            ),
            (b"5 ;ext\r\nhello\r\n0\r\n\r\n", b"hello", b""),
            (b"0\r\n\r\n", b"", b""),
            // Leading zeros do not count against the 15 digits a size may have.
            (b"00000000000000000005\r\nhello\r\n0000000000000000000\r\n\r\n", b"hello", b""),
        ];
        for (input, body, trailers) in cases {
            for split in [1, 2, 3, 7, 1000] {
                let (out, used, got_trailers, done) = decode_all(input, split).unwrap();
                assert_eq!((&out[..], used, &got_trailers[..], done), (*body, input.len(), *trailers, true));
            }
        }
    }

    #[test]
    fn bytes_after_the_last_chunk_are_left_for_the_next_message() {
        let input = b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
        let (out, used, _, done) = decode_all(input, 1000).unwrap();
        assert_eq!((&out[..], used, done), (&b"abc"[..], 13, true));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let cases: &[&[u8]] = &[
            b"x\r\n",
            b"\r\n",
            b"-1\r\n",
            b"5\nhello\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"1000000000000000\r\n",
            b"0001000000000000000\r\n",
            b"5;\x01\r\n",
            b"0\r\nNoColon\r\n\r\n",
            b"0\r\n: empty name\r\n\r\n",
            b"0\r\nX: a\nb\r\n\r\n",
            b"5 5\r\n",
        ];
        for input in cases {
            assert!(decode_all(input, 1000).is_err(), "{:?}", String::from_utf8_lossy(input));
        }
        let long_ext = [b"1;".as_slice(), &[b'a'; 5000], b"\r\n"].concat();
        assert!(decode_all(&long_ext, 1000).is_err());
        let big_trailers = [b"0\r\n".as_slice(), b"X: ", &[b'a'; 300], b"\r\n\r\n"].concat();
        assert!(decode_all(&big_trailers, 1000).is_err());
    }

    #[test]
    fn extensions_are_limited_across_the_whole_body() {
        // Each line is well under MAX_LINE; together they pass MAX_EXTENSIONS.
        let chunk = [b"1;".as_slice(), &[b'e'; 1000], b"\r\nx\r\n"].concat();
        let body = |chunks: usize| [chunk.repeat(chunks), b"0\r\n\r\n".to_vec()].concat();
        let within = MAX_EXTENSIONS / 1001;
        let (out, _, _, done) = decode_all(&body(within), 700).unwrap();
        assert_eq!((out.len(), done), (within, true));
        let error = decode_all(&body(within + 1), 700).unwrap_err();
        assert_eq!(error, ChunkError("chunk extensions too large"));
    }

    #[test]
    fn size_lines_are_lowercase_hex() {
        let mut out = Vec::new();
        for len in [0, 9, 10, 255, 65536] {
            write_size(&mut out, len);
        }
        assert_eq!(out, b"0\r\n9\r\na\r\nff\r\n10000\r\n");
    }
}

//! What one message's framing, connection and routing fields said, noted
//! line by line as the head is parsed (`Facts`), and the values those
//! fields hold (`Content-Length`, `Keep-Alive: timeout=N`).

use http::Version;

use super::{Framing, HeadError};
use crate::proxy::headers::token_is as is;

/// What the framing and connection headers of one message said.
#[derive(Debug, Default)]
pub(super) struct Facts {
    pub content_length: Option<u64>,
    pub transfer_encoding: Option<bool>,
    pub close: bool,
    pub keep_alive: bool,
    /// `Connection` holds a token other than `keep-alive`: a header name to drop.
    pub names_headers: bool,
    pub expects_continue: bool,
    /// `Keep-Alive: timeout=N`, in seconds.
    pub idle_hint: Option<u16>,
    /// How many `Host` fields (requests).
    pub hosts: u8,
    /// An `Upgrade` field is present (requests).
    pub upgrade: bool,
}

impl Facts {
    /// Notes one header; `name` is a token (httparse checked it), in any case.
    pub fn note(&mut self, name: &[u8], value: &[u8]) -> Result<(), HeadError> {
        // The length picks the one name it can be, so at most one is compared.
        match name.len() {
            4 if is(name, b"host") => self.hosts = self.hosts.saturating_add(1),
            6 if is(name, b"expect") => {
                self.expects_continue |= value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
            }
            7 if is(name, b"upgrade") => self.upgrade = true,
            10 if is(name, b"connection") => self.note_connection(value),
            10 if is(name, b"keep-alive") => self.idle_hint = keep_alive_timeout(value),
            14 if is(name, b"content-length") => {
                if self.content_length.is_some() {
                    return Err(HeadError::Malformed("repeated Content-Length"));
                }
                self.content_length = Some(parse_length(value).ok_or(HeadError::Malformed("invalid Content-Length"))?);
            }
            17 if is(name, b"transfer-encoding") => {
                // Only one header holding exactly one coding, `chunked`, is
                // unambiguous. Empty list elements are ignored (RFC 9110 §5.6.1).
                let mut codings = value.split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|c| !c.is_empty());
                let only_chunked =
                    codings.next().is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")) && codings.next().is_none();
                self.transfer_encoding = Some(self.transfer_encoding.is_none() && only_chunked);
            }
            _ => {}
        }
        Ok(())
    }

    fn note_connection(&mut self, value: &[u8]) {
        for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            self.close |= token.eq_ignore_ascii_case(b"close");
            let keep_alive = token.eq_ignore_ascii_case(b"keep-alive");
            self.keep_alive |= keep_alive;
            self.names_headers |= !keep_alive;
        }
    }

    pub fn request_framing(&self, version: Version) -> Result<Framing, HeadError> {
        match (self.transfer_encoding, self.content_length) {
            (Some(_), Some(_)) => Err(HeadError::FramingConflict),
            (Some(true), None) if version == Version::HTTP_11 => Ok(Framing::Chunked),
            (Some(_), None) => Err(HeadError::Malformed("Transfer-Encoding other than chunked")),
            (None, Some(0) | None) => Ok(Framing::Empty),
            (None, Some(n)) => Ok(Framing::Length(n)),
        }
    }

    pub fn keep_alive(&self, version: Version) -> bool {
        !self.close && (version == Version::HTTP_11 || self.keep_alive)
    }
}

/// The `timeout=N` parameter of a `Keep-Alive` header (RFC 2068 §19.7.1.1;
/// Node.js and Apache still send it): the seconds the sender keeps an idle
/// connection open (at most `u16::MAX`). Anything else in the header is ignored.
fn keep_alive_timeout(value: &[u8]) -> Option<u16> {
    value.split(|&b| b == b',').find_map(|param| {
        let (name, seconds) = param.trim_ascii().split_at_checked(b"timeout=".len())?;
        let seconds = name.eq_ignore_ascii_case(b"timeout=").then(|| parse_length(seconds))??;
        Some(u16::try_from(seconds).unwrap_or(u16::MAX))
    })
}

/// A Content-Length value: 1*DIGIT (leading zeros allowed, RFC 9110 §8.6),
/// no sign, no spaces inside, and no overflow.
pub(super) fn parse_length(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

//! The one redacted type: a secret value (a route's header secret, the admin
//! token, the bot token) that never appears in `Debug` output, logs or errors,
//! and is compared in constant time.

use std::fmt;

use subtle::ConstantTimeEq;

/// A secret value read from a file. It never appears in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(Box<[u8]>);

impl Secret {
    pub fn new(bytes: &[u8]) -> Self {
        Secret(bytes.into())
    }

    /// The raw value, for the one place that must send it: registering the
    /// webhook with Telegram. Never log it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Compares in constant time (for equal lengths).
    pub fn matches(&self, candidate: &[u8]) -> bool {
        self.0.as_ref().ct_eq(candidate).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

//! Where a secret file (a bot token, a webhook secret, the admin token) is
//! read from: the file the config names, or, when that cannot be read and
//! systemd passed the service credentials, its copy there.
//!
//! The shipped unit runs as a throw-away `DynamicUser`, which cannot read
//! root's 0600 files, so it passes `/etc/hookgate/credentials/` with
//! `LoadCredential=hookgate:/etc/hookgate/credentials`: systemd reads each file
//! as root at start and offers it as `$CREDENTIALS_DIRECTORY/hookgate_<file
//! name>`. Outside systemd (the CLI as root, a container, a test) the file is
//! read where it is. systemd's copies are fixed for the service's life: a
//! changed secret under the unit applies at the next restart, not a reload.

use std::path::{Path, PathBuf};

/// The credential ID prefix the shipped unit's `LoadCredential=` gives the folder.
const ID_PREFIX: &str = "hookgate_";

/// Why a secret file could not be read: the file's own error (its credential
/// copy is only a fallback), with a hint when permission is what stopped it.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}{}", path.display(), permission_hint(source))]
pub(super) struct Unreadable {
    path: PathBuf,
    source: std::io::Error,
}

/// The bytes of the secret file at `path`, or of its credential copy when the
/// file cannot be read.
pub(super) fn read_secret(path: &Path) -> Result<Vec<u8>, Unreadable> {
    let plain = match std::fs::read(path) {
        Ok(bytes) => return Ok(bytes),
        Err(e) => e,
    };
    if let Some(copy) = credential_copy(path)
        && let Ok(bytes) = std::fs::read(copy)
    {
        return Ok(bytes);
    }
    Err(Unreadable { path: path.to_path_buf(), source: plain })
}

fn permission_hint(error: &std::io::Error) -> &'static str {
    if error.kind() == std::io::ErrorKind::PermissionDenied {
        " (under the shipped systemd unit, put secret files in /etc/hookgate/credentials/, which it passes as credentials)"
    } else {
        ""
    }
}

/// `$CREDENTIALS_DIRECTORY/hookgate_<file name>`, when systemd passed credentials.
fn credential_copy(path: &Path) -> Option<PathBuf> {
    let folder = std::env::var_os("CREDENTIALS_DIRECTORY")?;
    let name = path.file_name()?.to_str()?;
    Some(Path::new(&folder).join(format!("{ID_PREFIX}{name}")))
}

//! A route's `verify` key, from the file to `verify::Verifier`: the scheme by
//! name, its secret files (read like `secret_header`'s, at load and reload)
//! or Alipay's public key file, `tolerance`, `mode`, and `hmac_sha256`'s
//! `header`, `encoding` and `prefix`.

use std::sync::Arc;

use super::locate::Step;
use super::raw::{RawVerify, duration_text};
use super::validate::{Checker, child};
use crate::verify::{Encoding, Keys, Scheme, Verifier};

impl Checker<'_> {
    /// A route's `verify`. `at` is the route's path in the file.
    pub(super) fn verify(&mut self, at: &[Step], raw: RawVerify) -> Option<Arc<Verifier>> {
        let at = child(at, "verify");
        let before = self.problems.len();
        let scheme = self.scheme(&at, &raw)?;
        let tolerance = raw.tolerance.as_ref().map_or(Scheme::DEFAULT_TOLERANCE, |d| d.0.0);
        if raw.tolerance.is_some() && !scheme.is_timestamped() {
            self.problem(&child(&at, "tolerance"), format!("{} signs no timestamp", scheme.name()));
        } else if tolerance.is_zero() {
            self.problem(&child(&at, "tolerance"), "must be above 0");
        }
        let keys = self.keys(&at, &scheme, &raw);
        if self.problems.len() > before {
            return None;
        }
        Some(Arc::new(Verifier::new(scheme, keys?, tolerance, raw.mode.unwrap_or_default())))
    }

    /// The scheme by name, with `hmac_sha256`'s settings (which no other takes).
    fn scheme(&mut self, at: &[Step], raw: &RawVerify) -> Option<Scheme> {
        let generic = raw.header.is_some() || raw.encoding.is_some() || raw.prefix.is_some();
        if raw.scheme == "hmac_sha256" {
            return self.hmac_sha256(at, raw);
        }
        let Some(scheme) = Scheme::by_name(&raw.scheme) else {
            let known = Scheme::NAMES.join(", ");
            self.problem(&child(at, "scheme"), format!("unknown scheme {:?} (schemes: {known})", raw.scheme));
            return None;
        };
        if generic {
            self.problem(at, "header, encoding and prefix are for scheme = \"hmac_sha256\" only");
        }
        Some(scheme)
    }

    fn hmac_sha256(&mut self, at: &[Step], raw: &RawVerify) -> Option<Scheme> {
        let Some(name) = &raw.header else {
            self.problem(at, "hmac_sha256 needs header, the header that carries the signature");
            return None;
        };
        let header = self.request_header_name(&child(at, "header"), name)?;
        let encoding = raw.encoding.unwrap_or(Encoding::Hex);
        Some(Scheme::HmacSha256 { header, encoding, prefix: raw.prefix.clone().unwrap_or_default() })
    }

    /// The secrets (`secret_file` and `secret_files`, together at least one)
    /// or the public key (`public_key_file`), as the scheme takes.
    fn keys(&mut self, at: &[Step], scheme: &Scheme, raw: &RawVerify) -> Option<Keys> {
        let files: Vec<(Vec<Step>, &String)> = raw
            .secret_file
            .iter()
            .map(|file| (child(at, "secret_file"), file))
            .chain(raw.secret_files.iter().flatten().enumerate().map(|(i, file)| {
                let mut here = child(at, "secret_files");
                here.push(Step::Index(i));
                (here, file)
            }))
            .collect();
        if scheme.uses_public_key() {
            if !files.is_empty() {
                self.problem(at, format!("{} is checked with public_key_file, not secrets", scheme.name()));
            }
            let Some(file) = &raw.public_key_file else {
                self.problem(at, format!("{} needs public_key_file (the gateway's public key)", scheme.name()));
                return None;
            };
            return self.public_key(&child(at, "public_key_file"), file);
        }
        if raw.public_key_file.is_some() {
            self.problem(&child(at, "public_key_file"), format!("{} is checked with secrets", scheme.name()));
        }
        if files.is_empty() {
            self.problem(at, "needs secret_file or secret_files (several: any one admits, for rotation)");
            return None;
        }
        let read: Vec<Option<Vec<u8>>> =
            files.iter().map(|(here, file)| Some(self.secret_file(here, file)?.expose().to_vec())).collect();
        match Keys::secrets(scheme, read.into_iter().collect::<Option<_>>()?) {
            Ok(keys) => Some(keys),
            Err(why) => {
                self.problem(at, why);
                None
            }
        }
    }

    fn public_key(&mut self, at: &[Step], file: &str) -> Option<Keys> {
        let path = self.base_dir().join(file);
        let read = super::credentials::read_secret(&path).map_err(|e| e.to_string());
        match read.and_then(|bytes| Keys::public_key(&bytes).map_err(|e| format!("{}: {e}", path.display()))) {
            Ok(keys) => Some(keys),
            Err(why) => {
                self.problem(at, why);
                None
            }
        }
    }
}

/// `verify` as `check` shows it: the scheme and its settings with the
/// defaults filled in, and how many secrets; never a secret or its file.
pub fn verify_as_written(verify: &Verifier) -> String {
    let mut text = format!("verify = {{ scheme = \"{}\"", verify.scheme.name());
    if let Scheme::HmacSha256 { header, encoding, prefix } = &verify.scheme {
        let encoding = match encoding {
            Encoding::Hex => "hex",
            Encoding::Base64 => "base64",
        };
        text.push_str(&format!(", header = \"{header}\", encoding = \"{encoding}\", prefix = {prefix:?}"));
    }
    text.push_str(&format!(", mode = \"{}\"", verify.mode.as_str()));
    if verify.scheme.is_timestamped() {
        text.push_str(&format!(", tolerance = {:?}", duration_text(verify.tolerance)));
    }
    text.push_str(" }");
    match &verify.keys {
        Keys::Secrets(secrets) if secrets.len() > 1 => text.push_str(&format!("  # {} secrets", secrets.len())),
        Keys::Secrets(_) => text.push_str("  # 1 secret"),
        Keys::PublicKey(_) => text.push_str("  # public key"),
    }
    text
}

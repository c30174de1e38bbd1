//! Per-route guards and `[sets.NAME]` as the file writes them: validated into
//! `guards::Guards`, and written back in the file's spelling for `check`.
//!
//! Kept apart from `validate` because guards read files (the secret) and
//! resolve names (CIDR sets); everything else there is pure.

use std::collections::hash_map::Entry;

use http::HeaderValue;
use indexmap::IndexMap;

use super::Step;
use super::cidr::Cidr;
use super::raw::{RawRoute, RawSet, duration_text, size_text};
use super::validate::{Checker, Sets, child};
use crate::guards::dedupe::DedupeSpec;
use crate::guards::{Guards, RateLimit, SecretHeader};
use crate::secret::Secret;

/// Telegram's documented webhook source ranges (core.telegram.org/bots/webhooks).
pub const TELEGRAM: [&str; 2] = ["149.154.160.0/20", "91.108.4.0/22"];

/// Highest `per_second` accepted; above it a rate limit means nothing.
const MAX_RATE: f64 = 1_000_000.0;

impl Checker<'_> {
    pub(super) fn sets(&mut self, raw: IndexMap<String, RawSet>) -> Sets {
        let mut sets = Sets::new();
        sets.insert("telegram".to_string(), TELEGRAM.iter().filter_map(|c| c.parse().ok()).collect());
        // Cloudflare's published ranges, as of `cloudflare::AS_OF` (see there for where they come from).
        sets.insert("cloudflare".to_string(), crate::cloudflare::ranges().to_vec());
        for (name, set) in raw {
            let at = [Step::Key("sets".into()), Step::Key(name.clone())];
            match sets.entry(name) {
                Entry::Occupied(built_in) => {
                    self.problem(&at, format!("{:?} is built in and cannot be redefined", built_in.key()));
                }
                Entry::Vacant(slot) if set.cidrs.is_empty() => {
                    self.problem(&child(&at, "cidrs"), "a set needs at least one CIDR");
                    self.defined.broken_sets.insert(slot.into_key());
                }
                Entry::Vacant(slot) => {
                    slot.insert(set.cidrs.into_iter().map(|c| c.0.0).collect());
                }
            }
        }
        sets
    }

    /// Validates the guard keys of a route, taking them out of `raw`.
    pub(super) fn guards(&mut self, at: &[Step], raw: &mut RawRoute, sets: &Sets) -> Guards {
        let mut guards = Guards::default();
        if let Some(entries) = raw.allow_from.take() {
            guards.allow_from = Some(self.cidrs_or_sets(&child(at, "allow_from"), &entries, sets));
            guards.allow_from_names = entries;
        }
        if let Some(secret) = raw.secret_header.take() {
            guards.secret_header = self.secret_header(&child(at, "secret_header"), secret);
        }
        guards.max_body = raw.max_body.take().map(|size| size.0.0);
        if let Some(limit) = raw.rate_limit.take() {
            let here = child(at, "rate_limit");
            if !(limit.per_second > 0.0 && limit.per_second <= MAX_RATE) {
                self.problem(&child(&here, "per_second"), format!("must be above 0 and at most {MAX_RATE}"));
            }
            if limit.burst == Some(0) || limit.max_keys == Some(0) {
                self.problem(&here, "burst and max_keys must be at least 1");
            }
            guards.rate_limit = Some(RateLimit {
                per_second: limit.per_second,
                burst: limit.burst.unwrap_or_else(|| RateLimit::default_burst(limit.per_second)),
                key: limit.key.unwrap_or_default(),
                max_keys: limit.max_keys.unwrap_or(RateLimit::DEFAULT_MAX_KEYS),
            });
        }
        if let Some(n) = raw.max_in_flight.take() {
            if !(1..=super::validate::MAX_SLOTS).contains(&n) {
                let most = super::validate::MAX_SLOTS;
                self.problem(&child(at, "max_in_flight"), format!("must be between 1 and {most}"));
            }
            guards.max_in_flight = Some(n);
        }
        if let Some(dedupe) = raw.dedupe.take() {
            // `key` was parsed (and refused with its line) by serde.
            let window = dedupe.window.map_or(DedupeSpec::DEFAULT_WINDOW, |d| d.0.0);
            if window.is_zero() || dedupe.max_keys == Some(0) {
                self.problem(&child(at, "dedupe"), "window and max_keys must be above 0");
            }
            let max_keys = dedupe.max_keys.unwrap_or(DedupeSpec::DEFAULT_MAX_KEYS);
            guards.dedupe = Some(DedupeSpec { key: dedupe.key.0, window, max_keys });
        }
        if let Some(verify) = raw.verify.take() {
            guards.verify = self.verify(at, verify);
        }
        guards
    }

    /// A list of CIDRs and set names (`allow_from`, `trusted_proxies`) at
    /// `at`, as networks; each bad entry is a problem at its index.
    pub(super) fn cidrs_or_sets(&mut self, at: &[Step], entries: &[String], sets: &Sets) -> Vec<ipnet::IpNet> {
        let mut nets = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let mut here = at.to_vec();
            here.push(Step::Index(i));
            match entry.parse::<Cidr>() {
                Ok(net) => nets.push(net.0),
                Err(e) if Cidr::is_written_as_one(entry) => self.problem(&here, e),
                Err(_) => self.named_set(&here, entry, sets, &mut nets),
            }
        }
        nets
    }

    /// Adds the CIDRs of the set named `entry` to `nets`.
    fn named_set(&mut self, at: &[Step], entry: &str, sets: &Sets, nets: &mut Vec<ipnet::IpNet>) {
        if let Some(set) = sets.get(entry) {
            nets.extend(set.iter().copied());
        } else if !self.defined.broken_sets.contains(entry) {
            // (A set that is defined but invalid was reported where it is defined.)
            let mut known: Vec<&str> = sets.keys().map(String::as_str).collect();
            known.sort_unstable();
            self.problem(at, format!("{entry:?} is neither a CIDR nor a set (sets: {})", known.join(", ")));
        }
    }

    /// Reads the secret from its file. The value never enters an error message.
    fn secret_header(&mut self, at: &[Step], raw: super::raw::RawSecretHeader) -> Option<SecretHeader> {
        let name = self.request_header_name(&child(at, "name"), &raw.name)?;
        let value = self.secret_file(&child(at, "value_file"), &raw.value_file)?;
        Some(SecretHeader { name, value, strip: raw.strip.unwrap_or(true) })
    }

    /// Reads a secret (one line, usable as a header value) from `file`,
    /// relative to the config file. The value never enters an error message.
    pub(super) fn secret_file(&mut self, at: &[Step], file: &str) -> Option<Secret> {
        let path = self.base_dir().join(file);
        let text = match super::credentials::read_secret(&path) {
            Ok(text) => text,
            Err(why) => {
                self.problem(at, why);
                return None;
            }
        };
        let value = text.trim_ascii();
        if value.is_empty() || HeaderValue::from_bytes(value).is_err() {
            self.problem(at, format!("{} must hold one non-empty line usable as a header value", path.display()));
            return None;
        }
        if is_readable_by_others(&path) && !self.loose_secret_files.contains(&path) {
            self.loose_secret_files.push(path);
        }
        Some(Secret::new(value))
    }
}

/// Whether the file's group or others may read it (a secret should be 0600 or 0400).
fn is_readable_by_others(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o044 != 0)
}

/// The guards as the route table shows them: one `key = value` each, in
/// the file's own spelling with the defaults filled in, so what `check`
/// prints can be pasted back. The secret's value (and its file) is never shown.
pub fn guards_as_written(guards: &Guards) -> Vec<String> {
    let mut lines = Vec::new();
    if guards.allow_from.is_some() {
        let names: Vec<String> = guards.allow_from_names.iter().map(|n| format!("{n:?}")).collect();
        lines.push(format!("allow_from = [{}]", names.join(", ")));
    }
    if let Some(secret) = &guards.secret_header {
        lines.push(format!("secret_header = {{ name = \"{}\", strip = {} }}", secret.name, secret.strip));
    }
    if let Some(max) = guards.max_body {
        lines.push(format!("max_body = {:?}", size_text(max)));
    }
    if let Some(limit) = &guards.rate_limit {
        lines.push(format!(
            "rate_limit = {{ per_second = {}, burst = {}, key = \"{}\", max_keys = {} }}",
            limit.per_second,
            limit.burst,
            limit.key.as_str(),
            limit.max_keys
        ));
    }
    if let Some(n) = guards.max_in_flight {
        lines.push(format!("max_in_flight = {n}"));
    }
    if let Some(dedupe) = &guards.dedupe {
        lines.push(format!(
            "dedupe = {{ key = {:?}, window = {:?}, max_keys = {} }}",
            dedupe.key.to_string(),
            duration_text(dedupe.window),
            dedupe.max_keys
        ));
    }
    if let Some(verify) = &guards.verify {
        lines.push(super::verify::verify_as_written(verify));
    }
    lines
}

//! What `check` and `route` say about `verify`: whether a request (with the
//! body `--body FILE` names) would pass the route's signature check, and
//! the settings that are valid but probably not what was meant.

use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method};

use crate::config::Config;
use crate::verify::{Signed, Verifier, VerifyMode};

/// A `mode = "log"` this long after the file last changed gets a reminder.
const LOG_MODE_REMINDER: Duration = Duration::from_secs(7 * 24 * 3600);

/// Prints the route's signature check and its verdict on the request;
/// returns 401 when `enforce` would refuse it.
pub(super) fn explain(
    out: &mut String,
    verifier: &Verifier,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Option<&[u8]>,
) -> Option<u16> {
    let mode = match verifier.mode {
        VerifyMode::Enforce => "enforce: refused with 401 when it fails",
        VerifyMode::Log => "log: forwarded and counted when it fails",
    };
    let scheme = verifier.scheme.name();
    let Some(body) = body.or((!verifier.scheme.needs_body()).then_some(&[][..])) else {
        let _ = writeln!(out, "  verify {scheme} ({mode}): signs the body; pass --body FILE to check a signature");
        return None;
    };
    let signed = Signed { method, headers, query, body };
    match verifier.check(&signed, SystemTime::now()) {
        Ok(()) => {
            let _ = writeln!(out, "  verify {scheme} ({mode}): the signature holds");
            None
        }
        Err(refused) => {
            let _ = writeln!(out, "  verify {scheme} ({mode}): {} ({refused})", refused.label());
            if !verifier.scheme.needs_body() && signed.body_unread_as_parameters() {
                let _ = writeln!(
                    out,
                    "    the body was not read as parameters: its Content-Type is neither a form nor JSON \
                     (a gateway sends -H 'Content-Type: application/x-www-form-urlencoded')"
                );
            }
            (verifier.mode == VerifyMode::Enforce).then_some(401)
        }
    }
}

/// Warnings about `verify` settings: a scheme that signs the body on a route
/// that admits bodiless methods, and `mode = "log"` left on long after the
/// file (`file`) last changed.
pub(super) fn warnings(config: &Config, file: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let unchanged_for = std::fs::metadata(file).and_then(|m| m.modified()).ok().and_then(|at| at.elapsed().ok());
    for route in config.routes.routes() {
        let Some(verifier) = &route.guards.verify else { continue };
        let scheme = verifier.scheme.name();
        let bodied = |m: &Method| [Method::POST, Method::PUT, Method::PATCH].contains(m);
        if verifier.scheme.needs_body() && !route.matcher.methods.as_ref().is_some_and(|ms| ms.iter().all(bodied)) {
            out.push(format!(
                "route {}: verify scheme {scheme} signs the body, but the route also takes requests that have none \
                 (a GET can never pass): add methods = [\"POST\"]",
                route.name
            ));
        }
        if verifier.mode == VerifyMode::Log
            && let Some(age) = unchanged_for.filter(|age| *age >= LOG_MODE_REMINDER)
        {
            out.push(format!(
                "route {}: verify mode = \"log\" and the file unchanged for {} days: failed signatures still reach \
                 the upstream; once hookgate_verify_total shows only ok, set mode = \"enforce\"",
                route.name,
                age.as_secs() / 86_400
            ));
        }
    }
    out
}

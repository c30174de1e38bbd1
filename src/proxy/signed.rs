//! The `verify` step of a request whose body has been read whole: the
//! route's signature check, counted and logged. In `enforce` a refusal is
//! `ProxyError::BadSignature` (401): the request is never forwarded, kept
//! or claimed as a dedupe key. In `log` it goes on, `Untrusted`: forwarded
//! (and kept, on a `store` route) but never claimed as a dedupe key, so a
//! forgery cannot have its answer given to the genuine request after it.

use std::time::SystemTime;

use http::request::Parts;

use super::State;
use crate::access::RequestContext;
use crate::error::ProxyError;
use crate::verify::{Refused, Signed, Verifier, VerifyMode};

/// Whether a request that goes on may claim its dedupe key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    Trusted,
    /// Its signature failed, and `mode = "log"` forwards it all the same.
    Untrusted,
}

/// Checks the signature of the request (`parts` as it arrived, `body`
/// whole) on a route with `verify` (`verifier`); without one it is trusted.
pub fn check(
    state: &State,
    ctx: &mut RequestContext,
    verifier: Option<&Verifier>,
    parts: &Parts,
    body: &[u8],
) -> Result<Checked, ProxyError> {
    let Some(verifier) = verifier else { return Ok(Checked::Trusted) };
    let signed = Signed::of(parts, body);
    let verdict = verifier.check(&signed, SystemTime::now());
    if let Some(counts) = &state.route_metrics(ctx.route_ref).verify {
        counts.record(verdict.err().map_or("ok", Refused::label));
    }
    let Err(refused) = verdict else { return Ok(Checked::Trusted) };
    let (route, scheme) = (ctx.route_name(), verifier.scheme.name());
    match verifier.mode {
        VerifyMode::Enforce => {
            tracing::info!(%route, scheme, why = %refused, "signature refused: not forwarded");
            ctx.upstream = None;
            Err(ProxyError::BadSignature)
        }
        VerifyMode::Log => {
            tracing::warn!(%route, scheme, why = %refused, "signature check failed; forwarded (verify mode = \"log\")");
            Ok(Checked::Untrusted)
        }
    }
}

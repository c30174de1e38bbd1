//! Who may ask the admin listener, decided before any endpoint runs: the
//! `Host` a request names, the `Origin` of a state-changing one, and the
//! bearer token. Not for what the endpoints answer (`super`), nor for whether
//! a config may leave a listener without a token (`super::check_token`).
//!
//! The listener is for operators' tools and browsers (through `ssh -L`), which
//! makes it a target for web pages those browsers open:
//! - DNS rebinding: a page on `evil.example`, whose name then resolves to
//!   127.0.0.1, reads the admin as its own origin. Its requests still say
//!   `Host: evil.example`, so without a token the `Host` must name this
//!   listener: `localhost`, a 127.x.y.z or `[::1]` address, or the address the
//!   connection came in on, with any port. With a token it is not checked: a
//!   page cannot send the token, and a reverse proxy that adds it (as the
//!   README suggests) may pass its own name.
//! - Cross-site requests: a page elsewhere posts a form to `/reload`. A browser
//!   names that page in `Origin`; a state-changing request (any method but
//!   GET, HEAD, OPTIONS, TRACE) that carries one is served only when it is the
//!   origin the request was sent to (its host and port are the `Host`), token
//!   or not. The `hookgate` commands send no `Origin`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::uri::Authority;
use http::{HeaderMap, Method, Request, StatusCode, Version, header};

use crate::secret::Secret;

/// Why a request was refused before it reached an endpoint. Its message is
/// the answer's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum Refusal {
    /// An HTTP/1.1 request without one valid `Host`, or any with two (RFC 9112 §3.2).
    #[error("{}", self.message().trim_end())]
    BadHost,
    /// Without a token, a `Host` that does not name this listener.
    #[error("{}", self.message().trim_end())]
    ForeignHost,
    /// A state-changing request whose `Origin` is another site.
    #[error("{}", self.message().trim_end())]
    CrossSite,
    /// No bearer token, or the wrong one.
    #[error("{}", self.message().trim_end())]
    Unauthorized,
}

impl Refusal {
    pub(super) fn status(self) -> StatusCode {
        match self {
            Refusal::BadHost => StatusCode::BAD_REQUEST,
            Refusal::ForeignHost => StatusCode::MISDIRECTED_REQUEST,
            Refusal::CrossSite => StatusCode::FORBIDDEN,
            Refusal::Unauthorized => StatusCode::UNAUTHORIZED,
        }
    }

    /// The answer's one line.
    pub(super) fn message(self) -> &'static str {
        match self {
            Refusal::BadHost => "one valid Host header is required\n",
            Refusal::ForeignHost => {
                "the Host must name this admin listener (localhost, 127.0.0.1, [::1]) unless [admin] token_file is set\n"
            }
            Refusal::CrossSite => "cross-site request refused: its Origin is not this admin listener\n",
            Refusal::Unauthorized => "a bearer token is required ([admin] token_file)\n",
        }
    }
}

/// Admits `req`, which came in on the local address `local`, or says why not.
/// `token` is `[admin] token_file`'s, which every path but `/healthz` needs.
pub(super) fn admit<B>(req: &Request<B>, local: IpAddr, token: Option<&Secret>) -> Result<(), Refusal> {
    let host = target_authority(req)?;
    if token.is_none() && host.as_ref().is_some_and(|host| !names_this_listener(host.host(), local)) {
        return Err(Refusal::ForeignHost);
    }
    if !is_safe(req.method()) && !same_origin(req.headers(), host.as_ref()) {
        return Err(Refusal::CrossSite);
    }
    if req.uri().path() != "/healthz" && !authorized(token, req.headers()) {
        return Err(Refusal::Unauthorized);
    }
    Ok(())
}

/// The authority the request was sent to: an absolute-form target's, which
/// outranks `Host` (RFC 9112 §3.2.2), or the one `Host`. `None` only for an
/// HTTP/1.0 request without `Host`, which is allowed.
fn target_authority<B>(req: &Request<B>) -> Result<Option<Authority>, Refusal> {
    if let Some(authority) = req.uri().authority() {
        return Ok(Some(authority.clone()));
    }
    let mut hosts = req.headers().get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if req.version() == Version::HTTP_10 || req.version() == Version::HTTP_09 => Ok(None),
        (Some(value), None) => Authority::try_from(value.as_bytes()).map(Some).map_err(|_| Refusal::BadHost),
        _ => Err(Refusal::BadHost),
    }
}

/// Whether `host` (an authority's host, IPv6 in brackets) names this
/// listener: `localhost`, a loopback address, or `local`, the address the
/// connection came in on.
fn names_this_listener(host: &str, local: IpAddr) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let ip = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().map(IpAddr::V6),
        None => host.parse::<Ipv4Addr>().map(IpAddr::V4),
    };
    ip.is_ok_and(|ip| ip.to_canonical().is_loopback() || ip.to_canonical() == local.to_canonical())
}

/// The methods that change nothing (RFC 9110 §9.2.1).
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// Whether a state-changing request may go ahead: it carries no `Origin`, or
/// one `http(s)://host[:port]` whose host and port are those the request was
/// sent to. `Origin: null` (a sandboxed or privacy-sensitive context) is
/// another site.
fn same_origin(headers: &HeaderMap, target: Option<&Authority>) -> bool {
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let origin = match (origins.next(), origins.next()) {
        (None, _) => return true,
        (Some(origin), None) => origin.as_bytes(),
        _ => return false,
    };
    let Some(target) = target else { return false };
    let Some(authority) = strip_prefix_ignore_case(origin, b"http://")
        .or_else(|| strip_prefix_ignore_case(origin, b"https://"))
        .and_then(|rest| Authority::try_from(rest).ok())
    else {
        return false;
    };
    // An origin carries no user information; one that does is not what a browser sends.
    !authority.as_str().contains('@')
        && authority.host().eq_ignore_ascii_case(target.host())
        && authority.port_u16() == target.port_u16()
}

fn strip_prefix_ignore_case<'a>(value: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &value[prefix.len()..])
}

/// Whether `headers` carry `Authorization: Bearer <token>` (compared in
/// constant time); always true without a token.
fn authorized(token: Option<&Secret>, headers: &HeaderMap) -> bool {
    let Some(token) = token else { return true };
    presented_token(headers).is_some_and(|given| token.matches(given))
}

/// The one bearer token `headers` present, whatever it is: `POST /reload`
/// may show the token the file being loaded names (see `super::reload`).
pub(super) fn presented_token(headers: &HeaderMap) -> Option<&[u8]> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => bearer(value.as_bytes()),
        _ => None,
    }
}

/// The credentials of a `Bearer` authorization: `auth-scheme 1*SP token68`,
/// the scheme compared without regard to case (RFC 9110 §11.1, §11.4), so
/// `bearer` and `BEARER` are `Bearer`.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, credentials) = value.split_at(space);
    scheme.eq_ignore_ascii_case(b"Bearer").then(|| credentials.trim_ascii_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

    /// Method, target, headers, and the gate's verdict.
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], Result<(), Refusal>);

    fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(target);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn bearer_scheme_in_any_case() {
        let table: &[(&[u8], Option<&[u8]>)] = &[
            (b"Bearer tok", Some(b"tok")),
            (b"bearer tok", Some(b"tok")),
            (b"BEARER tok", Some(b"tok")),
            (b"bEaReR  tok", Some(b"tok")),
            (b"Basic tok", None),
            (b"Bearertok", None),
            (b"Bearer", None),
            (b"Bearers tok", None),
        ];
        for (value, want) in table {
            assert_eq!(bearer(value), *want, "{:?}", String::from_utf8_lossy(value));
        }
    }

    #[test]
    fn hosts_that_name_this_listener() {
        let table = [
            ("localhost", true),
            ("LocalHost", true),
            ("localhost.", true),
            ("127.0.0.1", true),
            ("127.1.2.3", true),
            ("[::1]", true),
            ("[::ffff:127.0.0.1]", true),
            ("192.0.2.7", true),
            ("evil.example", false),
            ("localhost.evil.example", false),
            ("evillocalhost", false),
            ("127.0.0.1.evil.example", false),
            ("192.0.2.8", false),
            ("[::2]", false),
            ("::1", false),
            ("0.0.0.0", false),
            ("", false),
        ];
        for (host, want) in table {
            assert_eq!(names_this_listener(host, LOCAL), want, "{host:?}");
        }
    }

    #[test]
    fn admission_without_a_token() {
        let table: &[Case] = &[
            ("GET", "/status.json", &[("host", "localhost:9901")], Ok(())),
            ("GET", "/status.json", &[("host", "127.0.0.1")], Ok(())),
            ("GET", "/status.json", &[("host", "[::1]:9901")], Ok(())),
            ("GET", "/status.json", &[("host", "192.0.2.7:9901")], Ok(())),
            ("GET", "/status.json", &[("host", "evil.example:9901")], Err(Refusal::ForeignHost)),
            ("GET", "/healthz", &[("host", "evil.example")], Err(Refusal::ForeignHost)),
            ("GET", "/", &[("host", "localhost@evil.example")], Err(Refusal::ForeignHost)),
            ("GET", "http://evil.example/", &[("host", "localhost")], Err(Refusal::ForeignHost)),
            ("GET", "http://localhost:9901/", &[("host", "evil.example")], Ok(())),
            ("GET", "/", &[], Err(Refusal::BadHost)),
            ("GET", "/", &[("host", "localhost"), ("host", "localhost")], Err(Refusal::BadHost)),
            ("GET", "/", &[("host", "local host")], Err(Refusal::BadHost)),
            ("POST", "/reload", &[("host", "localhost:9901")], Ok(())),
            ("POST", "/reload", &[("host", "localhost:9901"), ("origin", "http://localhost:9901")], Ok(())),
            ("POST", "/reload", &[("host", "localhost:9901"), ("origin", "HTTP://LOCALHOST:9901")], Ok(())),
            ("POST", "/reload", &[("host", "localhost"), ("origin", "https://localhost")], Ok(())),
            (
                "POST",
                "/reload",
                &[("host", "localhost:9901"), ("origin", "http://evil.example")],
                Err(Refusal::CrossSite),
            ),
            (
                "POST",
                "/reload",
                &[("host", "localhost:9901"), ("origin", "http://localhost:3000")],
                Err(Refusal::CrossSite),
            ),
            ("POST", "/reload", &[("host", "localhost:9901"), ("origin", "http://localhost")], Err(Refusal::CrossSite)),
            ("POST", "/reload", &[("host", "localhost:9901"), ("origin", "null")], Err(Refusal::CrossSite)),
            (
                "POST",
                "/reload",
                &[("host", "localhost:9901"), ("origin", "http://x@localhost:9901")],
                Err(Refusal::CrossSite),
            ),
            (
                "DELETE",
                "/status.json",
                &[("host", "localhost"), ("origin", "http://evil.example")],
                Err(Refusal::CrossSite),
            ),
            ("GET", "/status.json", &[("host", "localhost"), ("origin", "http://evil.example")], Ok(())),
        ];
        for (method, target, headers, want) in table {
            assert_eq!(admit(&request(method, target, headers), LOCAL, None), *want, "{method} {target} {headers:?}");
        }
    }

    #[test]
    fn http_1_0_may_leave_host_out() {
        let mut req = request("GET", "/status.json", &[]);
        *req.version_mut() = Version::HTTP_10;
        assert_eq!(admit(&req, LOCAL, None), Ok(()));
    }

    #[test]
    fn admission_with_a_token() {
        let token = Secret::new(b"tok");
        let table: &[Case] = &[
            ("GET", "/status.json", &[("host", "admin.example.com"), ("authorization", "Bearer tok")], Ok(())),
            ("GET", "/status.json", &[("host", "admin.example.com")], Err(Refusal::Unauthorized)),
            ("GET", "/healthz", &[("host", "admin.example.com")], Ok(())),
            (
                "POST",
                "/reload",
                &[
                    ("host", "admin.example.com"),
                    ("origin", "https://admin.example.com"),
                    ("authorization", "Bearer tok"),
                ],
                Ok(()),
            ),
            (
                "POST",
                "/reload",
                &[("host", "admin.example.com"), ("origin", "http://evil.example"), ("authorization", "Bearer tok")],
                Err(Refusal::CrossSite),
            ),
            ("GET", "/", &[], Err(Refusal::BadHost)),
        ];
        for (method, target, headers, want) in table {
            let got = admit(&request(method, target, headers), LOCAL, Some(&token));
            assert_eq!(got, *want, "{method} {target} {headers:?}");
        }
    }

    #[test]
    fn each_refusal_has_its_status() {
        let table = [
            (Refusal::BadHost, 400),
            (Refusal::ForeignHost, 421),
            (Refusal::CrossSite, 403),
            (Refusal::Unauthorized, 401),
        ];
        for (refusal, status) in table {
            assert_eq!(refusal.status().as_u16(), status, "{refusal:?}");
            assert_eq!(refusal.message().lines().count(), 1, "{refusal:?}");
        }
    }
}

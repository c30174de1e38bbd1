//! `Max-Forwards` on TRACE and OPTIONS (RFC 9110 §7.6.2): an intermediary
//! must check it and count it down before forwarding, and must answer as the
//! final recipient when it is zero. Other methods pass the header on as it
//! came; the RFC lets an intermediary ignore it there.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, StatusCode};

use crate::error::{BadRequest, ProxyError};
use crate::routes::LocalResponse;

/// The methods hookgate forwards, as its own answer to OPTIONS lists them.
const ALLOW: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE";

/// Fields a TRACE answer leaves out: credentials, which the final recipient
/// should not reflect (RFC 9110 §9.3.8).
const NOT_REFLECTED: [HeaderName; 3] = [header::AUTHORIZATION, header::PROXY_AUTHORIZATION, header::COOKIE];

/// For TRACE and OPTIONS carrying `Max-Forwards`: at zero, hookgate's own
/// answer (`Some`); above zero, the header counted down by one in `parts`.
/// A value that is not one decimal number is refused: the count cannot be
/// checked, as the RFC requires. `secret` names the route's secret header,
/// which a TRACE answer leaves out like the credentials.
pub(super) fn count_down(parts: &mut Parts, secret: Option<&HeaderName>) -> Result<Option<LocalResponse>, ProxyError> {
    if parts.method != Method::TRACE && parts.method != Method::OPTIONS {
        return Ok(None);
    }
    let invalid = ProxyError::BadRequest(BadRequest::MaxForwards);
    let mut values = parts.headers.get_all(header::MAX_FORWARDS).iter();
    let remaining = match (values.next(), values.next()) {
        (None, _) => return Ok(None),
        (Some(value), None) => parse(value.as_bytes()).ok_or(invalid)?,
        _ => return Err(invalid),
    };
    if remaining > 0 {
        parts.headers.insert(header::MAX_FORWARDS, HeaderValue::from(remaining - 1));
        return Ok(None);
    }
    Ok(Some(if parts.method == Method::OPTIONS { options_answer() } else { trace_answer(parts, secret) }))
}

/// `1*DIGIT`; a count too large for a `u32` is held at its largest value,
/// which the RFC allows (the lesser of the count and what the recipient supports).
fn parse(value: &[u8]) -> Option<u32> {
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0u32, |count, digit| count.saturating_mul(10).saturating_add(u32::from(digit - b'0'))))
}

/// OPTIONS answered by hookgate itself: what it forwards, no body.
fn options_answer() -> LocalResponse {
    let mut headers = HeaderMap::new();
    headers.insert(header::ALLOW, HeaderValue::from_static(ALLOW));
    LocalResponse::new(StatusCode::OK, String::new(), headers)
}

/// TRACE answered by hookgate itself: the request as received (its line and
/// fields, less credentials and the route's secret) as `message/http`.
fn trace_answer(parts: &Parts, secret: Option<&HeaderName>) -> LocalResponse {
    let mut message = format!("TRACE {} {:?}\r\n", parts.uri, parts.version);
    for (name, value) in &parts.headers {
        if NOT_REFLECTED.contains(name) || secret == Some(name) {
            continue;
        }
        message.push_str(name.as_str());
        message.push_str(": ");
        message.push_str(&String::from_utf8_lossy(value.as_bytes()));
        message.push_str("\r\n");
    }
    message.push_str("\r\n");
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("message/http"));
    LocalResponse::new(StatusCode::OK, message, headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, max_forwards: &[&str]) -> Parts {
        let mut builder = http::Request::builder().method(method).uri("/x?y=1").header("x-probe", "1");
        for value in max_forwards {
            builder = builder.header(header::MAX_FORWARDS, *value);
        }
        builder = builder.header(header::COOKIE, "session=s").header("x-secret", "s");
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn counts_down_above_zero_and_answers_at_zero() {
        // (method, its Max-Forwards fields, outcome): the value forwarded,
        // "-" for none, "answer" for hookgate's own answer, "400" for a refusal.
        let cases: &[(Method, &[&str], &str)] = &[
            (Method::OPTIONS, &["3"], "2"),
            (Method::TRACE, &[" 1 "], "0"),
            (Method::OPTIONS, &["99999999999"], "4294967294"),
            (Method::GET, &["0"], "0"),
            (Method::POST, &["x"], "x"),
            (Method::OPTIONS, &[], "-"),
            (Method::OPTIONS, &["0"], "answer"),
            (Method::TRACE, &["00"], "answer"),
            (Method::TRACE, &["-1"], "400"),
            (Method::OPTIONS, &[""], "400"),
            (Method::OPTIONS, &["1, 2"], "400"),
            (Method::TRACE, &["2", "2"], "400"),
        ];
        for (method, values, want) in cases {
            let mut parts = parts(method.clone(), values);
            let got = match count_down(&mut parts, None) {
                Err(error) => error.status().as_str().to_string(),
                Ok(Some(_)) => "answer".to_string(),
                Ok(None) => parts.headers.get(header::MAX_FORWARDS).map_or("-".into(), |v| v.to_str().unwrap().into()),
            };
            assert_eq!(&got, want, "{method} {values:?}");
        }
    }

    #[test]
    fn the_answers_list_the_methods_and_reflect_no_credentials() {
        let mut options = parts(Method::OPTIONS, &["0"]);
        let answer = count_down(&mut options, None).unwrap().unwrap();
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.headers[header::ALLOW], ALLOW);
        assert!(answer.body.is_empty());

        let mut trace = parts(Method::TRACE, &["0"]);
        let secret = HeaderName::from_static("x-secret");
        let answer = count_down(&mut trace, Some(&secret)).unwrap().unwrap();
        assert_eq!(answer.headers[header::CONTENT_TYPE], "message/http");
        let text = std::str::from_utf8(&answer.body).unwrap();
        assert!(text.starts_with("TRACE /x?y=1 HTTP/1.1\r\n"), "{text}");
        assert!(text.contains("x-probe: 1\r\n") && text.ends_with("\r\n\r\n"), "{text}");
        assert!(!text.contains("cookie") && !text.contains("x-secret"), "{text}");
    }
}

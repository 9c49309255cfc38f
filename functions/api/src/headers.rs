//! Security headers. The web app gets the same ones from CloudFront (the response-headers policy
//! in infra/template.yaml) and from the local runner ([`WebHeaders`]); every API answer gets
//! [`api_headers`], in the Lambda and in the local runner alike.

use axum::http::header::{self, HeaderName, HeaderValue};
use axum::response::Response;

/// The web app's policy, apart from `connect-src`: everything from its own origin, no inline
/// script or style, no plugins, no `<base>`, and no framing at all (a security console that can
/// be framed can be clickjacked into a "Start Session" or a "Revoke"). `img-src` allows `data:`
/// for the stylesheet's inline SVG icons.
pub const WEB_CSP_BASE: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; font-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Browsers only use HTTPS for the host for two years once they saw this over HTTPS (they
/// ignore it over plain HTTP, so the local runner can send it too).
pub const HSTS: &str = "max-age=63072000; includeSubDomains";
pub const REFERRER_POLICY: &str = "no-referrer";
/// No powerful feature is used by the app; none may be used by anything it embeds. (The
/// clipboard is left to the browser's own prompt: the app copies new tokens to it.)
pub const PERMISSIONS_POLICY: &str = "accelerometer=(), camera=(), display-capture=(), \
     geolocation=(), gyroscope=(), magnetometer=(), microphone=(), \
     payment=(), usb=()";

/// JSON only: nothing in an API answer may run, load or be framed.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The web app's Content-Security-Policy: its own origin plus `connect` (the API and the
/// identity provider, when they live elsewhere) for `fetch`.
pub fn web_csp(connect: &[String]) -> String {
    let mut connect_src = String::from("'self'");
    for origin in connect {
        connect_src.push(' ');
        connect_src.push_str(origin);
    }
    format!("{WEB_CSP_BASE}; connect-src {connect_src}")
}

/// The origin (scheme, host and port) of a URL, as a CSP source; `None` if it has none.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    let valid = matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    valid.then(|| format!("{scheme}://{}", host.to_ascii_lowercase()))
}

fn headers_common(csp: HeaderValue) -> [(HeaderName, HeaderValue); 6] {
    [
        (header::CONTENT_SECURITY_POLICY, csp),
        (
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static(REFERRER_POLICY),
        ),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static(PERMISSIONS_POLICY),
        ),
    ]
}

/// Adds the API's headers to an API answer: the security headers with [`API_CSP`], and
/// `Cache-Control: no-store` — answers carry sessions, tokens and audit events that no browser
/// or proxy cache may keep.
pub async fn api_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in headers_common(HeaderValue::from_static(API_CSP)) {
        headers.insert(name, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The web app's headers, for a host that serves it (the local runner).
#[derive(Debug, Clone)]
pub struct WebHeaders(Vec<(HeaderName, HeaderValue)>);

impl WebHeaders {
    /// With `connect` the origins the app fetches from besides its own.
    pub fn new(connect: &[String]) -> Self {
        let csp = HeaderValue::from_str(&web_csp(connect))
            .expect("origins are checked by origin_of, so the policy is a valid header value");
        Self(headers_common(csp).into())
    }

    /// Adds them to a response that has none of its own (API answers keep theirs).
    pub fn apply(&self, response: &mut Response) {
        let headers = response.headers_mut();
        for (name, value) in &self.0 {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc").as_deref(),
            Some("https://cognito-idp.eu-west-1.amazonaws.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:4444").as_deref(),
            Some("http://127.0.0.1:4444")
        );
        assert_eq!(origin_of("HTTPS://Example.com?x").as_deref(), None);
        assert_eq!(
            origin_of("https://Example.com?x").as_deref(),
            Some("https://example.com")
        );
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(origin_of("https://a.example; script-src *"), None);
        assert_eq!(origin_of("https:///path"), None);
    }

    #[test]
    fn cloudfront_sends_the_same_headers_as_the_local_runner() {
        let template = include_str!("../../../infra/template.yaml");
        // The policy is the first string of the `!Sub` list (its second adds the probe hosts).
        let csp = template
            .lines()
            .map(str::trim)
            .skip_while(|l| !l.starts_with("ContentSecurityPolicy: !Sub"))
            .find(|l| l.contains("connect-src"))
            .expect("the template has a CSP");
        assert!(
            csp.contains(&format!("\"{WEB_CSP_BASE}; connect-src 'self' ")),
            "{csp}"
        );
        let max_age = HSTS
            .strip_prefix("max-age=")
            .and_then(|r| r.split(';').next())
            .unwrap();
        for line in [
            format!("Value: \"{PERMISSIONS_POLICY}\""),
            format!("AccessControlMaxAgeSec: {max_age}"),
            "IncludeSubdomains: true".into(),
            format!("ReferrerPolicy: {REFERRER_POLICY}"),
            "FrameOption: DENY".into(),
            "ContentTypeOptions:".into(),
        ] {
            assert!(
                template.lines().any(|l| l.trim() == line),
                "the template lacks {line}"
            );
        }
    }

    #[test]
    fn the_web_policy_allows_nothing_inline_and_no_framing() {
        let csp = web_csp(&["https://api.example.com".into()]);
        assert!(csp.ends_with("; connect-src 'self' https://api.example.com"));
        for directive in [
            "default-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
        ] {
            assert!(
                csp.split("; ").any(|d| d == directive),
                "{directive}: {csp}"
            );
        }
        assert!(!csp.contains("unsafe"), "{csp}");
    }
}

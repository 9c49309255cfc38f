//! Request extractors: the caller, the client address, JSON bodies and path ids. Each rejects
//! with the standard error body.

use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use entryguard::app::Identity;
use entryguard::domain::model::Email;
use entryguard::domain::net::ClientIp;

use crate::error::ApiError;
use crate::oidc::OidcVerifier;
use crate::ApiState;

/// The client's address as the hosting layer determined it (TCP peer, or the API Gateway
/// request context) — never a header the client controls.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub ClientIp);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<ClientAddr>()
            .copied()
            .ok_or_else(|| {
                tracing::error!("no client address on the request; the host must insert one");
                ApiError::internal()
            })
    }
}

/// The authenticated caller, from `Authorization: Bearer <token>`.
pub struct Caller(pub Identity);

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let ip = parts.extensions.get::<ClientAddr>().map(|c| c.0);
        counted(state, ip, token, identify(state, token, ip))
            .await
            .map(Caller)
    }
}

/// A person an identity provider vouched for, who need not be an EntryGuard user yet: the
/// caller of sign-up. Only ID tokens qualify; EntryGuard's own tokens belong to users already.
pub struct VerifiedPerson {
    pub email: Email,
    pub ip: Option<ClientIp>,
}

impl FromRequestParts<ApiState> for VerifiedPerson {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let ip = parts.extensions.get::<ClientAddr>().map(|c| c.0);
        let verify = async {
            let oidc = state
                .oidc
                .as_ref()
                .filter(|_| OidcVerifier::looks_like_jwt(token))
                .ok_or_else(ApiError::unauthenticated)?;
            let person = oidc.verify(token, state.app.now()).await?;
            Ok(VerifiedPerson {
                email: person.email,
                ip,
            })
        };
        counted(state, ip, token, verify).await
    }
}

/// The bearer token of the request, if it has a plausible one.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty() && t.len() <= 4096)
        .ok_or_else(ApiError::unauthenticated)
}

/// Runs `check` unless the address has failed too often, and counts its failure if it fails.
async fn counted<T>(
    state: &ApiState,
    ip: Option<ClientIp>,
    token: &str,
    check: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let limit = state.limits.failed_auth_per_address;
    if let Some(ip) = ip {
        state.app.sign_in_allowed(limit, ip).await?;
    }
    match check.await {
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            if let Some(ip) = ip {
                state.app.sign_in_failed(limit, ip, token).await;
            }
            Err(e)
        }
        result => result,
    }
}

/// The identity a bearer token stands for: an ID token from the OIDC provider, or one of
/// EntryGuard's own tokens.
async fn identify(
    state: &ApiState,
    token: &str,
    ip: Option<ClientIp>,
) -> Result<Identity, ApiError> {
    if let Some(oidc) = state
        .oidc
        .as_ref()
        .filter(|_| OidcVerifier::looks_like_jwt(token))
    {
        let user = oidc.verify(token, state.app.now()).await?;
        return Ok(state.app.authenticate_email(&user.email, ip).await?);
    }
    Ok(state.app.authenticate(token, ip).await?)
}

/// A JSON body, parsed straight into domain types; errors name the field that failed.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_json_bytes(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A JSON body that may be absent altogether (an empty body), for optional parameters.
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let has_content_type = req.headers().contains_key(header::CONTENT_TYPE);
        let bytes = if has_content_type {
            read_json_bytes(req, state).await?
        } else {
            read_bytes(req, state).await?
        };
        // Only a body with no bytes at all is "no body": whitespace sent as JSON is not a JSON
        // document, and accepting it would let a malformed request act on the whole organization.
        if bytes.is_empty() {
            return Ok(OptionalJson(None));
        }
        if !has_content_type {
            return Err(unsupported_media_type());
        }
        parse_json(&bytes).map(|v| OptionalJson(Some(v)))
    }
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        crate::error::ErrorCode::UnsupportedMediaType,
        "Send the body as JSON with Content-Type: application/json",
    )
}

async fn read_json_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime_essence::Essence>().ok())
        .is_some_and(|m| m.is_json());
    if !is_json {
        return Err(unsupported_media_type());
    }
    read_bytes(req, state).await
}

async fn read_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                crate::error::ErrorCode::PayloadTooLarge,
                format!(
                    "The body is larger than {} KiB",
                    crate::MAX_BODY_BYTES / 1024
                ),
            )
        } else {
            ApiError::validation(format!("The body could not be read: {rejection}"))
        }
    })
}

/// serde_json's messages end with a position; the field path says more to a person.
fn strip_position(message: &str) -> &str {
    message
        .rsplit_once(" at line ")
        .map_or(message, |(head, _)| head)
}

/// serde names a missing field only in its message; pulls the name out so `fields` can carry it.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body is an object; serde would otherwise take an array as the fields in order.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err(ApiError::validation("The body must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = strip_position(&inner.to_string()).to_owned();
        let syntax = inner.is_syntax() || inner.is_eof();
        if syntax && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
            ApiError::validation(format!("The body is not valid JSON: {message}"))
        } else if syntax {
            // serde_json reports a non-string where an enum goes as a syntax error ("expected
            // value") though the JSON is fine: it is the field's type that is wrong.
            if path == "." {
                ApiError::validation("Invalid body: a value has the wrong type")
            } else {
                ApiError::field(&path, "has the wrong type")
            }
        } else if let Some(field) = missing_field(&message) {
            let full = if path == "." {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
            ApiError::field(&full, message)
        } else if path == "." {
            ApiError::validation(format!("Invalid body: {message}"))
        } else {
            ApiError::field(&path, message)
        }
    })?;
    de.end().map_err(|_| {
        ApiError::validation("The body has trailing characters after the JSON value")
    })?;
    Ok(value)
}

/// A path id. Anything that does not parse is simply not found, like an id that does not exist.
pub struct Id<T>(pub T);

impl<S: Send + Sync, T: FromStr + Send> FromRequestParts<S> for Id<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("Item"))?;
        raw.parse().map(Id).map_err(|_| ApiError::not_found("Item"))
    }
}

/// Just enough media-type parsing to accept `application/json; charset=utf-8` and `+json` types.
mod mime_essence {
    pub struct Essence(String);

    impl std::str::FromStr for Essence {
        type Err = ();
        fn from_str(s: &str) -> Result<Self, ()> {
            let essence = s
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if essence.is_empty() {
                Err(())
            } else {
                Ok(Self(essence))
            }
        }
    }

    impl Essence {
        pub fn is_json(&self) -> bool {
            self.0 == "application/json"
                || (self.0.starts_with("application/") && self.0.ends_with("+json"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Body {
        #[allow(dead_code)]
        duration_hours: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Kind {
        #[allow(dead_code)]
        kind: AOrB,
    }

    #[derive(Debug, Deserialize)]
    enum AOrB {
        A,
        B,
    }

    #[test]
    fn json_errors_name_the_field() {
        let e = parse_json::<Body>(br#"{"durationHours":"two"}"#).unwrap_err();
        assert_eq!(e.code, "VALIDATION_FAILED");
        assert!(e.fields.contains_key("durationHours"), "{e:?}");
        let e = parse_json::<Body>(br#"{"durationHours":2,"x":1}"#).unwrap_err();
        assert!(e.message.contains("unknown field"), "{e:?}");
        let e = parse_json::<Body>(b"{}").unwrap_err();
        assert!(e.fields.contains_key("durationHours"), "{e:?}");
        let e = parse_json::<Body>(b" [2]").unwrap_err();
        assert!(e.message.contains("JSON object"), "{e:?}");
        let e = parse_json::<Body>(b"{nope").unwrap_err();
        assert!(e.message.starts_with("The body is not valid JSON"), "{e:?}");
        let e = parse_json::<Kind>(br#"{"kind":7}"#).unwrap_err();
        assert_eq!(
            e.fields.get("kind").map(String::as_str),
            Some("has the wrong type")
        );
        let e = parse_json::<Kind>(br#"{"kind":"C"}"#).unwrap_err();
        assert!(e.fields["kind"].contains("unknown variant"), "{e:?}");
        let e = parse_json::<Body>(br#"{"durationHours":2} x"#).unwrap_err();
        assert!(e.message.contains("trailing"), "{e:?}");
        assert!(parse_json::<Body>(br#"{"durationHours":2}"#).is_ok());
    }
}

//! The one place where errors become HTTP statuses and the JSON error body
//! `{"error":{"code","message","fields"?}}`.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use entryguard::app::admin::AdminError;
use entryguard::app::auth::AuthError;
use entryguard::app::credential_check::ValidateCredentialError;
use entryguard::app::sessions::{SessionActionError, StartSessionError};
use entryguard::app::tokens::TokenError;
use entryguard::ports::secrets::SealError;
use entryguard::ports::store::StoreError;

use crate::oidc::OidcError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    fields: &'a BTreeMap<String, String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: BTreeMap::new(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "VALIDATION_FAILED", message)
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::validation(format!("{field}: {message}"));
        e.fields.insert(field.to_owned(), message);
        e
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{what} not found"),
        )
    }

    pub fn unauthenticated() -> Self {
        Self::from(AuthError::Unauthenticated)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "Something went wrong on our side; it has been logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                fields: &self.fields,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "store failure");
        match error {
            StoreError::Unavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "The service is temporarily unavailable; please try again",
            ),
            StoreError::Corrupt(_) => Self::internal(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated => {
                Self::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", e.to_string())
            }
            AuthError::Forbidden => Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", e.to_string()),
            AuthError::Store(e) => e.into(),
        }
    }
}

impl From<StartSessionError> for ApiError {
    fn from(e: StartSessionError) -> Self {
        let message = e.to_string();
        match e {
            StartSessionError::DurationExceedsMaximum { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "DURATION_EXCEEDS_MAXIMUM", message)
            }
            StartSessionError::DurationNotOffered { .. } => Self::field("durationHours", message),
            StartSessionError::NoAccessibleResources => {
                Self::new(StatusCode::BAD_REQUEST, "NO_ACCESSIBLE_RESOURCES", message)
            }
            StartSessionError::ConcurrentSessionLimit { .. } => {
                Self::new(StatusCode::CONFLICT, "CONCURRENT_SESSION_LIMIT", message)
            }
            StartSessionError::Store(e) => e.into(),
        }
    }
}

impl From<SessionActionError> for ApiError {
    fn from(e: SessionActionError) -> Self {
        let message = e.to_string();
        match e {
            SessionActionError::NotFound => Self::not_found("Session"),
            SessionActionError::NotStoppable(_) => {
                Self::new(StatusCode::CONFLICT, "SESSION_NOT_STOPPABLE", message)
            }
            SessionActionError::NotExtendable(_) => {
                Self::new(StatusCode::CONFLICT, "SESSION_NOT_EXTENDABLE", message)
            }
            SessionActionError::ExtensionExceedsMaximum { .. } => Self::new(
                StatusCode::BAD_REQUEST,
                "EXTENSION_EXCEEDS_MAXIMUM",
                message,
            ),
            SessionActionError::Store(e) => e.into(),
        }
    }
}

impl From<OidcError> for ApiError {
    fn from(e: OidcError) -> Self {
        match &e {
            OidcError::Rejected(reason) => {
                // Why stays in the log: telling a forger which check failed helps them.
                tracing::info!(reason, "rejected an ID token");
                AuthError::Unauthenticated.into()
            }
            OidcError::ProviderUnavailable(_) | OidcError::Config(_) => {
                tracing::error!(error = %e, "could not verify an ID token");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    "Sign-in cannot be checked right now; please try again",
                )
            }
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::LimitReached => {
                Self::new(StatusCode::CONFLICT, "TOKEN_LIMIT_REACHED", e.to_string())
            }
            TokenError::NotFound => Self::not_found("API token"),
            TokenError::Store(e) => e.into(),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Auth(e) => e.into(),
            AdminError::NotFound(what) => Self::not_found(what),
            AdminError::Conflict(message) => Self::new(StatusCode::CONFLICT, "CONFLICT", message),
            AdminError::Invalid { field, message } => Self::field(&field, message),
            AdminError::Store(e) => e.into(),
            AdminError::Sealing(e) => e.into(),
        }
    }
}

impl From<SealError> for ApiError {
    fn from(error: SealError) -> Self {
        tracing::error!(%error, "secret sealing failure");
        if error.is_transient() {
            Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "The key service is temporarily unavailable; please try again",
            )
        } else {
            Self::internal()
        }
    }
}

impl From<ValidateCredentialError> for ApiError {
    fn from(e: ValidateCredentialError) -> Self {
        let message = e.to_string();
        match e {
            ValidateCredentialError::Auth(e) => e.into(),
            ValidateCredentialError::NotFound => Self::not_found("Credential"),
            ValidateCredentialError::ProviderUnavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "PROVIDER_UNAVAILABLE",
                message,
            ),
            ValidateCredentialError::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_codes_and_statuses() {
        let cases: Vec<(ApiError, StatusCode, &str)> = vec![
            (
                AuthError::Unauthenticated.into(),
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
            ),
            (
                AuthError::Forbidden.into(),
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
            ),
            (
                StartSessionError::DurationExceedsMaximum { max_hours: 4 }.into(),
                StatusCode::BAD_REQUEST,
                "DURATION_EXCEEDS_MAXIMUM",
            ),
            (
                StartSessionError::NoAccessibleResources.into(),
                StatusCode::BAD_REQUEST,
                "NO_ACCESSIBLE_RESOURCES",
            ),
            (
                StartSessionError::ConcurrentSessionLimit { limit: 1 }.into(),
                StatusCode::CONFLICT,
                "CONCURRENT_SESSION_LIMIT",
            ),
            (
                SessionActionError::NotStoppable(
                    entryguard::domain::session::SessionStatus::Expired,
                )
                .into(),
                StatusCode::CONFLICT,
                "SESSION_NOT_STOPPABLE",
            ),
            (
                SessionActionError::ExtensionExceedsMaximum { max_hours: 4 }.into(),
                StatusCode::BAD_REQUEST,
                "EXTENSION_EXCEEDS_MAXIMUM",
            ),
            (
                SessionActionError::NotFound.into(),
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
            ),
            (
                AdminError::Invalid {
                    field: "ports".into(),
                    message: "x".into(),
                }
                .into(),
                StatusCode::BAD_REQUEST,
                "VALIDATION_FAILED",
            ),
            (
                ValidateCredentialError::ProviderUnavailable("Throttling".into()).into(),
                StatusCode::SERVICE_UNAVAILABLE,
                "PROVIDER_UNAVAILABLE",
            ),
            (
                ValidateCredentialError::NotFound.into(),
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
            ),
            (
                AdminError::Sealing(SealError::Unavailable("throttled".into())).into(),
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
            ),
            (
                AdminError::Sealing(SealError::KeyUnusable("AccessDenied".into())).into(),
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
            ),
        ];
        for (e, status, code) in cases {
            assert_eq!((e.status, e.code), (status, code), "{e:?}");
        }
        let e: ApiError = StartSessionError::DurationExceedsMaximum { max_hours: 4 }.into();
        assert_eq!(e.message, "Duration exceeds maximum allowed");
        let e: ApiError = StartSessionError::NoAccessibleResources.into();
        assert_eq!(e.message, "User has no accessible cloud resources");
    }
}

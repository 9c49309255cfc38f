//! The one place where errors become HTTP statuses and the JSON error body
//! `{"error":{"code","message","fields"?}}`.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use entryguard::app::address_proofs::AddressProofError;
use entryguard::app::admin::AdminError;
use entryguard::app::auth::AuthError;
use entryguard::app::bootstrap::SignUpError;
use entryguard::app::credential_check::ValidateCredentialError;
use entryguard::app::rate_limit::RateLimitError;
use entryguard::app::sessions::{SessionActionError, StartSessionError};
use entryguard::app::tokens::TokenError;
use entryguard::domain::address_proof::ProofError;
use entryguard::ports::secrets::SealError;
use entryguard::ports::store::StoreError;
use entryguard::ports::DirectoryError;

use crate::oidc::OidcError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub fields: BTreeMap<String, String>,
    /// Seconds the client should wait (`Retry-After`), on RATE_LIMITED.
    pub retry_after: Option<u64>,
}

/// Declares [`ErrorCode`] with each variant's wire name, once.
macro_rules! error_codes {
    ($($variant:ident = $wire:literal,)*) => {
        /// Every `error.code` the API answers with; docs/api.md says when each is used. Being an
        /// enum, the OpenAPI document lists them all.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            pub const ALL: &[ErrorCode] = &[$(Self::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)*
                }
            }
        }
    };
}

error_codes! {
    Unauthenticated = "UNAUTHENTICATED",
    Forbidden = "FORBIDDEN",
    OrganizationSuspended = "ORGANIZATION_SUSPENDED",
    NotFound = "NOT_FOUND",
    MethodNotAllowed = "METHOD_NOT_ALLOWED",
    ValidationFailed = "VALIDATION_FAILED",
    PayloadTooLarge = "PAYLOAD_TOO_LARGE",
    UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE",
    DurationExceedsMaximum = "DURATION_EXCEEDS_MAXIMUM",
    NoAccessibleResources = "NO_ACCESSIBLE_RESOURCES",
    AddressProofInvalid = "ADDRESS_PROOF_INVALID",
    AddressProofExpired = "ADDRESS_PROOF_EXPIRED",
    AddressProofOtherUser = "ADDRESS_PROOF_OTHER_USER",
    AddressProofSameFamily = "ADDRESS_PROOF_SAME_FAMILY",
    ConcurrentSessionLimit = "CONCURRENT_SESSION_LIMIT",
    SessionNotStoppable = "SESSION_NOT_STOPPABLE",
    SessionNotExtendable = "SESSION_NOT_EXTENDABLE",
    ExtensionExceedsMaximum = "EXTENSION_EXCEEDS_MAXIMUM",
    Conflict = "CONFLICT",
    TokenLimitReached = "TOKEN_LIMIT_REACHED",
    RateLimited = "RATE_LIMITED",
    Unavailable = "UNAVAILABLE",
    ProviderUnavailable = "PROVIDER_UNAVAILABLE",
    DirectoryUnavailable = "DIRECTORY_UNAVAILABLE",
    DirectoryRefused = "DIRECTORY_REFUSED",
    Internal = "INTERNAL",
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// A sentence a person understands.
    #[schema(min_length = 1)]
    pub message: String,
    /// Only on VALIDATION_FAILED errors that can be pinned to fields: the field's path in the
    /// body or query (such as `ports[0].fromPort`) → what is wrong with it.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: BTreeMap::new(),
            retry_after: None,
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::ValidationFailed,
            message,
        )
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
            ErrorCode::NotFound,
            format!("{what} not found"),
        )
    }

    pub fn unauthenticated() -> Self {
        Self::from(AuthError::Unauthenticated)
    }

    fn suspended() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            ErrorCode::OrganizationSuspended,
            entryguard::app::auth::SUSPENDED_MESSAGE,
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "Something went wrong on our side; it has been logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                fields: self.fields,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
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
                ErrorCode::Unavailable,
                "The service is temporarily unavailable; please try again",
            ),
            StoreError::Corrupt(_) => Self::internal(),
        }
    }
}

impl From<SignUpError> for ApiError {
    fn from(e: SignUpError) -> Self {
        match e {
            SignUpError::AlreadyMember(_) => {
                Self::new(StatusCode::CONFLICT, ErrorCode::Conflict, e.to_string())
            }
            SignUpError::Store(e) => e.into(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated => Self::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                e.to_string(),
            ),
            AuthError::Forbidden => {
                Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, e.to_string())
            }
            AuthError::Suspended => Self::suspended(),
            AuthError::Store(e) => e.into(),
        }
    }
}

impl From<RateLimitError> for ApiError {
    fn from(e: RateLimitError) -> Self {
        let message = e.to_string();
        match e {
            RateLimitError::Limited {
                retry_after_secs, ..
            } => Self {
                retry_after: Some(retry_after_secs),
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorCode::RateLimited,
                    message,
                )
            },
            RateLimitError::Store(e) => e.into(),
        }
    }
}

impl From<StartSessionError> for ApiError {
    fn from(e: StartSessionError) -> Self {
        let message = e.to_string();
        match e {
            StartSessionError::DurationExceedsMaximum { .. } => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::DurationExceedsMaximum,
                message,
            ),
            StartSessionError::DurationNotOffered { .. } => Self::field("durationHours", message),
            StartSessionError::NoAccessibleResources => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::NoAccessibleResources,
                message,
            ),
            StartSessionError::ConcurrentSessionLimit { .. } => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::ConcurrentSessionLimit,
                message,
            ),
            StartSessionError::OrganizationSuspended => Self::suspended(),
            StartSessionError::AddressProof(e) => Self::new(
                StatusCode::BAD_REQUEST,
                match e {
                    ProofError::Invalid => ErrorCode::AddressProofInvalid,
                    ProofError::Expired => ErrorCode::AddressProofExpired,
                    ProofError::OtherUser => ErrorCode::AddressProofOtherUser,
                },
                message,
            ),
            StartSessionError::SecondProofOfFamily(_) => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::AddressProofSameFamily,
                message,
            ),
            StartSessionError::Sealing(e) => e.into(),
            StartSessionError::Store(e) => e.into(),
        }
    }
}

impl From<AddressProofError> for ApiError {
    fn from(e: AddressProofError) -> Self {
        match e {
            AddressProofError::Store(e) => e.into(),
            AddressProofError::Sealing(e) => e.into(),
        }
    }
}

impl From<SessionActionError> for ApiError {
    fn from(e: SessionActionError) -> Self {
        let message = e.to_string();
        match e {
            SessionActionError::NotFound => Self::not_found("Session"),
            SessionActionError::NotStoppable(_) => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::SessionNotStoppable,
                message,
            ),
            SessionActionError::NotExtendable(_) => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::SessionNotExtendable,
                message,
            ),
            SessionActionError::ExtensionExceedsMaximum { .. } => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::ExtensionExceedsMaximum,
                message,
            ),
            SessionActionError::OrganizationSuspended => Self::suspended(),
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
                    ErrorCode::Unavailable,
                    "Sign-in cannot be checked right now; please try again",
                )
            }
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::LimitReached => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::TokenLimitReached,
                e.to_string(),
            ),
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
            AdminError::Conflict(message) => {
                Self::new(StatusCode::CONFLICT, ErrorCode::Conflict, message)
            }
            AdminError::Invalid { field, message } => Self::field(&field, message),
            AdminError::Store(e) => e.into(),
            AdminError::Sealing(e) => e.into(),
            AdminError::Directory(ref d) => match d {
                DirectoryError::Unavailable(_) => {
                    tracing::warn!(error = %e, "sign-in directory unavailable");
                    Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        ErrorCode::DirectoryUnavailable,
                        "The sign-in directory is temporarily unavailable; nothing was changed. Try again.",
                    )
                }
                DirectoryError::Rejected(_) => {
                    tracing::error!(error = %e, "sign-in directory refused");
                    Self::new(
                        StatusCode::BAD_GATEWAY,
                        ErrorCode::DirectoryRefused,
                        "The sign-in directory refused the change; nothing was changed. An operator should check EntryGuard's permissions on the user pool.",
                    )
                }
            },
            AdminError::NotStoppable(_) => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::SessionNotStoppable,
                e.to_string(),
            ),
            AdminError::PlanIsOperators { .. } => {
                Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, e.to_string())
            }
        }
    }
}

impl From<SealError> for ApiError {
    fn from(error: SealError) -> Self {
        tracing::error!(%error, "secret sealing failure");
        if error.is_transient() {
            Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
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
                ErrorCode::ProviderUnavailable,
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
    fn error_codes_serialize_as_their_wire_names() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

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
                StartSessionError::OrganizationSuspended.into(),
                StatusCode::FORBIDDEN,
                "ORGANIZATION_SUSPENDED",
            ),
            (
                SessionActionError::OrganizationSuspended.into(),
                StatusCode::FORBIDDEN,
                "ORGANIZATION_SUSPENDED",
            ),
            (
                AuthError::Suspended.into(),
                StatusCode::FORBIDDEN,
                "ORGANIZATION_SUSPENDED",
            ),
            (
                AdminError::Directory(DirectoryError::Unavailable("x".into())).into(),
                StatusCode::SERVICE_UNAVAILABLE,
                "DIRECTORY_UNAVAILABLE",
            ),
            (
                AdminError::Directory(DirectoryError::Rejected("x".into())).into(),
                StatusCode::BAD_GATEWAY,
                "DIRECTORY_REFUSED",
            ),
            (
                AdminError::PlanIsOperators {
                    current: entryguard::domain::tier::Tier::Free,
                }
                .into(),
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
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
            assert_eq!((e.status, e.code.as_str()), (status, code), "{e:?}");
        }
        let limited: ApiError = RateLimitError::Limited {
            scope: entryguard::app::rate_limit::LimitScope::User,
            retry_after_secs: 42,
        }
        .into();
        assert_eq!(
            (limited.status, limited.code.as_str(), limited.retry_after),
            (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", Some(42))
        );
        let response = limited.into_response();
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "42");
        let e: ApiError = StartSessionError::DurationExceedsMaximum { max_hours: 4 }.into();
        assert_eq!(e.message, "Duration exceeds maximum allowed");
        let e: ApiError = StartSessionError::NoAccessibleResources.into();
        assert_eq!(e.message, "User has no accessible cloud resources");
    }
}

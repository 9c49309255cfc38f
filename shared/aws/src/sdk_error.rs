//! What an SDK failure was, read off the SDK's error before anything turns it into text. Each
//! adapter classifies these facts into its port's error; the facts are plain data so the
//! classifications can be unit-tested without a network.

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// The stage at which a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The request could not even be built (a bug or a bad configuration).
    Construction,
    /// No answer in time.
    Timeout,
    /// The request did not get through: network, DNS, TLS, or resolving credentials.
    Dispatch,
    /// An answer came that could not be read.
    Response,
    /// The service answered with an error.
    Service,
}

/// Why resolving credentials failed, when that is what stopped the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsFailure {
    /// The credential provider did not answer in time or failed unexpectedly.
    Transient,
    /// The credential is wrong, missing, or may not be used (e.g. AssumeRole denied).
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFacts {
    pub stage: Stage,
    pub code: Option<String>,
    pub status: Option<u16>,
    /// For people: the service's message, or the whole error chain otherwise.
    pub message: String,
    pub credentials: Option<CredentialsFailure>,
}

impl ErrorFacts {
    pub fn service(code: &str, status: u16, message: &str) -> Self {
        Self {
            stage: Stage::Service,
            code: Some(code.to_owned()),
            status: Some(status),
            message: message.to_owned(),
            credentials: None,
        }
    }

    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    pub fn is_server_fault(&self) -> bool {
        self.status.is_some_and(|s| s >= 500)
    }

    /// `Code: message`, or the message alone.
    pub fn describe(&self) -> String {
        match &self.code {
            Some(code) if !self.message.is_empty() => format!("{code}: {}", self.message),
            Some(code) => code.clone(),
            None => self.message.clone(),
        }
    }
}

fn credentials_failure(err: &(dyn StdError + 'static)) -> Option<CredentialsFailure> {
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(c) = e.downcast_ref::<CredentialsError>() {
            return Some(match c {
                CredentialsError::ProviderTimedOut(_) | CredentialsError::Unhandled(_) => {
                    CredentialsFailure::Transient
                }
                _ => CredentialsFailure::Invalid,
            });
        }
        next = e.source();
    }
    None
}

/// Reads the facts off any SDK operation error (the HTTP response type is shared by every
/// service crate).
pub fn facts<E>(err: &SdkError<E>) -> ErrorFacts
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let (stage, credentials) = match err {
        SdkError::ConstructionFailure(_) => (Stage::Construction, credentials_failure(err)),
        SdkError::TimeoutError(_) => (Stage::Timeout, None),
        SdkError::DispatchFailure(_) => (Stage::Dispatch, credentials_failure(err)),
        SdkError::ResponseError(_) => (Stage::Response, None),
        SdkError::ServiceError(_) => (Stage::Service, None),
        _ => (Stage::Dispatch, credentials_failure(err)),
    };
    let message = match (stage, err.message()) {
        (Stage::Service, Some(m)) => m.to_owned(),
        _ => DisplayErrorContext(err).to_string(),
    };
    ErrorFacts {
        stage,
        code: err.code().map(str::to_owned),
        status,
        message,
        credentials,
    }
}

/// Error codes AWS services use for throttling.
pub fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "RequestLimitExceeded"
            | "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "ProvisionedThroughputExceededException"
            | "TransactionInProgressException"
            | "RequestLimitExceededException"
            | "SlowDown"
            | "PriorRequestNotComplete"
            | "EC2ThrottledException"
            | "BandwidthLimitExceeded"
    )
}

/// Error codes AWS services use for their own temporary failures.
pub fn is_server_code(code: &str) -> bool {
    matches!(
        code,
        "InternalError"
            | "InternalFailure"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "Unavailable"
            | "RequestTimeout"
            | "RequestTimeoutException"
    )
}

/// Error codes for a credential that is wrong, expired or unknown.
pub fn is_auth_code(code: &str) -> bool {
    matches!(
        code,
        "AuthFailure"
            | "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "InvalidSecurity"
            | "AuthFailure.ServiceLinkedRoleCreationNotPermitted"
    )
}

/// Error codes for a known credential that lacks a permission.
pub fn is_permission_code(code: &str) -> bool {
    matches!(
        code,
        "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" | "Blocked"
    )
}

//! What an SDK failure was, read off the SDK's error before anything turns it into text. Each
//! adapter classifies these facts into its port's error; the facts are plain data so the
//! classifications can be unit-tested without a network.

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use entryguard::ports::firewall::FirewallError;

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

/// EC2's answer to authorizing more rules than the group's quota leaves room for.
pub const RULE_LIMIT: &str = "RulesPerSecurityGroupLimitExceeded";

/// Classifies a failed EC2 (or STS) call. `subject` names what was being changed: the security
/// group for firewall calls.
pub fn classify_firewall(f: &ErrorFacts, subject: &str) -> FirewallError {
    let message = f.describe();
    match f.stage {
        Stage::Timeout | Stage::Response => return FirewallError::Unavailable(message),
        Stage::Dispatch | Stage::Construction => {
            return match f.credentials {
                Some(CredentialsFailure::Invalid) => FirewallError::InvalidCredential(message),
                Some(CredentialsFailure::Transient) => FirewallError::Unavailable(message),
                None if f.stage == Stage::Dispatch => FirewallError::Unavailable(message),
                None => FirewallError::Rejected(message),
            }
        }
        Stage::Service => {}
    }
    match f.code() {
        Some(code) if is_throttling_code(code) => FirewallError::Throttled(message),
        Some("InvalidGroup.NotFound" | "InvalidGroupId.NotFound") => {
            FirewallError::GroupNotFound(subject.to_owned())
        }
        Some(RULE_LIMIT) => FirewallError::RuleLimitExceeded(subject.to_owned()),
        Some(code) if is_permission_code(code) => FirewallError::PermissionDenied(message),
        Some(code) if is_auth_code(code) => FirewallError::InvalidCredential(message),
        // Clock skew: the SDK corrects its clock and the retry goes through.
        Some("RequestExpired") => FirewallError::Unavailable(message),
        Some(code) if is_server_code(code) => FirewallError::Unavailable(message),
        _ if f.is_server_fault() => FirewallError::Unavailable(message),
        _ => FirewallError::Rejected(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str, status: u16) -> FirewallError {
        classify_firewall(&ErrorFacts::service(code, status, "details"), "sg-0123abcd")
    }

    fn stage(stage: Stage, credentials: Option<CredentialsFailure>) -> FirewallError {
        classify_firewall(
            &ErrorFacts {
                stage,
                code: None,
                status: None,
                message: "io error".into(),
                credentials,
            },
            "sg-0123abcd",
        )
    }

    #[test]
    fn throttling_and_outages_are_transient() {
        for code in ["RequestLimitExceeded", "Throttling", "ThrottlingException"] {
            let e = service(code, 503);
            assert!(matches!(e, FirewallError::Throttled(_)), "{code}: {e:?}");
            assert!(e.is_transient());
        }
        for code in ["InternalError", "ServiceUnavailable", "Unavailable"] {
            assert!(
                matches!(service(code, 500), FirewallError::Unavailable(_)),
                "{code}"
            );
        }
        assert!(matches!(
            service("SomethingNew", 502),
            FirewallError::Unavailable(_)
        ));
        assert!(matches!(
            service("RequestExpired", 400),
            FirewallError::Unavailable(_)
        ));
        for s in [Stage::Timeout, Stage::Dispatch, Stage::Response] {
            let e = stage(s, None);
            assert!(matches!(e, FirewallError::Unavailable(_)), "{s:?}");
            assert!(e.is_transient());
        }
    }

    #[test]
    fn permanent_failures_name_their_cause() {
        assert_eq!(
            service("InvalidGroup.NotFound", 400),
            FirewallError::GroupNotFound("sg-0123abcd".into())
        );
        assert_eq!(
            service("InvalidGroupId.NotFound", 400),
            FirewallError::GroupNotFound("sg-0123abcd".into())
        );
        assert_eq!(
            service("RulesPerSecurityGroupLimitExceeded", 400),
            FirewallError::RuleLimitExceeded("sg-0123abcd".into())
        );
        assert_eq!(
            service("UnauthorizedOperation", 403),
            FirewallError::PermissionDenied("UnauthorizedOperation: details".into())
        );
        for code in [
            "AuthFailure",
            "InvalidClientTokenId",
            "ExpiredToken",
            "ExpiredTokenException",
            "SignatureDoesNotMatch",
        ] {
            assert!(
                matches!(service(code, 401), FirewallError::InvalidCredential(_)),
                "{code}"
            );
        }
        for code in [
            "InvalidParameterValue",
            "InvalidGroupId.Malformed",
            "MissingParameter",
        ] {
            let e = service(code, 400);
            assert!(matches!(e, FirewallError::Rejected(_)), "{code}: {e:?}");
            assert!(!e.is_transient());
        }
    }

    #[test]
    fn credential_resolution_failures() {
        assert!(matches!(
            stage(Stage::Dispatch, Some(CredentialsFailure::Invalid)),
            FirewallError::InvalidCredential(_)
        ));
        assert!(matches!(
            stage(Stage::Dispatch, Some(CredentialsFailure::Transient)),
            FirewallError::Unavailable(_)
        ));
        assert!(matches!(
            stage(Stage::Construction, None),
            FirewallError::Rejected(_)
        ));
    }
}

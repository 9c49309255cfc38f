//! DynamoDB failures, classified from the SDK's error so the store can tell a failed condition
//! (a business outcome) from throttling or an outage.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use thiserror::Error;

use entryguard::ports::store::StoreError;

use crate::sdk_error::{facts, is_server_code, is_throttling_code, ErrorFacts, Stage};

/// Per-action code DynamoDB gives in a cancelled transaction for an action that was fine.
pub const REASON_NONE: &str = "None";
pub const REASON_CONDITION: &str = "ConditionalCheckFailed";
pub const REASON_CONFLICT: &str = "TransactionConflict";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DynamoError {
    #[error("the condition of a conditional write was not met")]
    ConditionFailed,
    /// A transaction was cancelled; one code per action, in request order.
    #[error("transaction cancelled ({})", .0.join(", "))]
    Cancelled(Vec<String>),
    #[error("DynamoDB is throttling requests: {0}")]
    Throttled(String),
    #[error("DynamoDB is unavailable: {0}")]
    Unavailable(String),
    #[error("DynamoDB rejected the request: {0}")]
    Rejected(String),
    #[error("a stored item could not be read or written: {0}")]
    Corrupt(String),
}

impl DynamoError {
    /// Which actions of a cancelled transaction failed their condition.
    pub fn failed_conditions(&self) -> Vec<usize> {
        match self {
            Self::Cancelled(reasons) => reasons
                .iter()
                .enumerate()
                .filter(|(_, r)| r.as_str() == REASON_CONDITION)
                .map(|(i, _)| i)
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn is_transaction_conflict(&self) -> bool {
        match self {
            Self::Cancelled(reasons) => reasons.iter().any(|r| r == REASON_CONFLICT),
            _ => false,
        }
    }
}

impl From<DynamoError> for StoreError {
    fn from(e: DynamoError) -> Self {
        match e {
            DynamoError::Corrupt(m) => StoreError::Corrupt(m),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

/// Classifies the facts of a failed single-item call.
pub fn classify(f: &ErrorFacts) -> DynamoError {
    match f.stage {
        Stage::Timeout | Stage::Dispatch | Stage::Response => {
            return DynamoError::Unavailable(f.describe())
        }
        Stage::Construction => return DynamoError::Rejected(f.describe()),
        Stage::Service => {}
    }
    match f.code() {
        Some("ConditionalCheckFailedException") => DynamoError::ConditionFailed,
        Some("TransactionConflictException") => {
            DynamoError::Cancelled(vec![REASON_CONFLICT.to_owned()])
        }
        Some(code) if is_throttling_code(code) => DynamoError::Throttled(f.describe()),
        Some(code) if is_server_code(code) => DynamoError::Unavailable(f.describe()),
        _ if f.is_server_fault() => DynamoError::Unavailable(f.describe()),
        _ => DynamoError::Rejected(f.describe()),
    }
}

pub fn from_sdk<E>(err: SdkError<E>) -> DynamoError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    classify(&facts(&err))
}

/// A cancelled transaction keeps its per-action reasons; anything else is classified as usual.
pub fn from_transact(err: SdkError<TransactWriteItemsError>) -> DynamoError {
    if let Some(TransactWriteItemsError::TransactionCanceledException(e)) = err.as_service_error() {
        return DynamoError::Cancelled(
            e.cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or(REASON_NONE).to_owned())
                .collect(),
        );
    }
    from_sdk(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let c = |code: &str, status: u16| classify(&ErrorFacts::service(code, status, "m"));
        assert_eq!(
            c("ConditionalCheckFailedException", 400),
            DynamoError::ConditionFailed
        );
        assert!(matches!(
            c("ProvisionedThroughputExceededException", 400),
            DynamoError::Throttled(_)
        ));
        assert!(matches!(
            c("ThrottlingException", 400),
            DynamoError::Throttled(_)
        ));
        assert!(matches!(
            c("InternalServerError", 500),
            DynamoError::Unavailable(_)
        ));
        assert!(matches!(c("Whatever", 503), DynamoError::Unavailable(_)));
        assert!(matches!(
            c("ValidationException", 400),
            DynamoError::Rejected(_)
        ));
        assert!(c("TransactionConflictException", 400).is_transaction_conflict());
        let timeout = ErrorFacts {
            stage: Stage::Timeout,
            code: None,
            status: None,
            message: "timed out".into(),
            credentials: None,
        };
        assert!(matches!(classify(&timeout), DynamoError::Unavailable(_)));
    }

    #[test]
    fn cancellation_reasons() {
        let e = DynamoError::Cancelled(vec![
            REASON_NONE.into(),
            REASON_CONDITION.into(),
            REASON_CONFLICT.into(),
        ]);
        assert_eq!(e.failed_conditions(), vec![1]);
        assert!(e.is_transaction_conflict());
        assert!(!DynamoError::Cancelled(vec![REASON_NONE.into()]).is_transaction_conflict());
        assert!(matches!(
            StoreError::from(DynamoError::Corrupt("x".into())),
            StoreError::Corrupt(_)
        ));
    }
}

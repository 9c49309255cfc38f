//! The directory port: the sign-in accounts of the people EntryGuard knows (on AWS, the stack's
//! Cognito user pool), kept in step with EntryGuard's users so adding or removing a person is
//! one act.

use async_trait::async_trait;
use thiserror::Error;

use crate::domain::model::Email;

#[derive(Debug, Error)]
pub enum DirectoryError {
    /// Throttled, timed out, unreachable: trying again later may work.
    #[error("the sign-in directory is unavailable: {0}")]
    Unavailable(String),
    /// The directory refused (permissions, a malformed address, no directory configured).
    #[error("the sign-in directory refused: {0}")]
    Rejected(String),
}

#[async_trait]
pub trait Directory: Send + Sync {
    /// Creates the person's sign-in account and sends them an invitation. A person who already
    /// has an account is enabled again instead, so inviting twice is harmless.
    async fn invite(&self, email: &Email) -> Result<(), DirectoryError>;
    /// Disables the person's sign-in and ends their sign-ins everywhere. A person without an
    /// account is already unable to sign in, so that is success too.
    async fn disable(&self, email: &Email) -> Result<(), DirectoryError>;
}

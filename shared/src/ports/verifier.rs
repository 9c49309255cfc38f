//! Checking a credential with its cloud provider.

use async_trait::async_trait;

use crate::domain::credential::AccountId;
use crate::domain::model::Credential;
use crate::ports::firewall::FirewallError;

/// Asks the credential's cloud who it is. Errors are classified as for firewall changes:
/// transient ones (`is_transient`) say nothing about the credential.
#[async_trait]
pub trait CredentialVerifier: Send + Sync {
    /// The id of the account the credential acts in.
    async fn verify(&self, credential: &Credential) -> Result<AccountId, FirewallError>;
}

//! Routes each firewall change and each credential check to the adapter for the credential's
//! provider.

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::credential::AccountId;
use crate::domain::model::{Credential, Provider};
use crate::domain::rule::{GroupRef, ListedRule};
use crate::ports::firewall::{BatchOutcome, Firewall, FirewallError, GroupBatch};
use crate::ports::verifier::CredentialVerifier;

/// One provider's adapters: what changes its security groups and what checks its credentials.
/// A host hands another provider's pair to the AWS wiring this way (the local runner its
/// simulated cloud).
#[derive(Clone)]
pub struct CloudAdapters {
    pub firewall: Arc<dyn Firewall>,
    pub verifier: Arc<dyn CredentialVerifier>,
}

pub struct FirewallByProvider {
    pub simulated: Option<Arc<dyn Firewall>>,
    pub aws: Option<Arc<dyn Firewall>>,
}

impl FirewallByProvider {
    fn pick(&self, group: &GroupRef) -> Result<&Arc<dyn Firewall>, FirewallError> {
        let (adapter, name) = match group.provider {
            Provider::Simulated => (&self.simulated, "simulated"),
            Provider::Aws => (&self.aws, "aws"),
        };
        adapter.as_ref().ok_or_else(|| {
            FirewallError::Rejected(format!(
                "this deployment has no {name} cloud configured; use a credential of another provider"
            ))
        })
    }
}

#[async_trait]
impl Firewall for FirewallByProvider {
    async fn apply_batch(&self, group: &GroupRef, batch: &GroupBatch) -> BatchOutcome {
        match self.pick(group) {
            Ok(adapter) => adapter.apply_batch(group, batch).await,
            Err(e) => BatchOutcome::all_failed(batch, &e),
        }
    }

    async fn ingress_rules(&self, group: &GroupRef) -> Result<Vec<ListedRule>, FirewallError> {
        self.pick(group)?.ingress_rules(group).await
    }
}

/// Sends each check to the verifier of the credential's provider.
pub struct VerifierByProvider {
    pub simulated: Option<Arc<dyn CredentialVerifier>>,
    pub aws: Option<Arc<dyn CredentialVerifier>>,
}

#[async_trait]
impl CredentialVerifier for VerifierByProvider {
    async fn verify(&self, credential: &Credential) -> Result<AccountId, FirewallError> {
        let (verifier, name) = match credential.provider() {
            Provider::Simulated => (&self.simulated, "simulated"),
            Provider::Aws => (&self.aws, "aws"),
        };
        match verifier {
            Some(v) => v.verify(credential).await,
            None => Err(FirewallError::Rejected(format!(
                "this deployment has no {name} cloud configured, so it cannot use this credential"
            ))),
        }
    }
}

//! Credential checks against the simulated cloud: every simulated credential belongs to an
//! account whose id is derived from the credential, unless a fault is injected.

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::firewall::{FaultKind, SimCloud};
use crate::domain::credential::AccountId;
use crate::domain::model::Credential;
use crate::ports::firewall::FirewallError;
use crate::ports::verifier::CredentialVerifier;

#[derive(Clone)]
pub struct SimulatedVerifier {
    cloud: SimCloud,
}

impl SimulatedVerifier {
    pub fn new(cloud: SimCloud) -> Self {
        Self { cloud }
    }
}

/// A 12-digit account id that is the same for a credential every time.
pub fn simulated_account_id(credential: &Credential) -> AccountId {
    let digest = Sha256::digest(credential.id.as_uuid().as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % 1_000_000_000_000;
    format!("{n:012}").parse().expect("12 digits")
}

#[async_trait]
impl CredentialVerifier for SimulatedVerifier {
    async fn verify(&self, credential: &Credential) -> Result<AccountId, FirewallError> {
        match self.cloud.credential_fault() {
            None => Ok(simulated_account_id(credential)),
            Some(FaultKind::Throttle) => {
                Err(FirewallError::Throttled("Throttling: rate exceeded".into()))
            }
            Some(FaultKind::Timeout) => Err(FirewallError::Unavailable("request timed out".into())),
            Some(FaultKind::Unauthorized) => Err(FirewallError::InvalidCredential(
                "InvalidClientTokenId: the security token included in the request is invalid"
                    .into(),
            )),
        }
    }
}

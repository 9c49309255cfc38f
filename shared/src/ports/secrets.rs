//! Sealing secrets at rest: the store only ever sees a credential's secret encrypted, bound to
//! the credential and organization it belongs to.

use std::collections::BTreeMap;

use async_trait::async_trait;
use thiserror::Error;

use crate::domain::ids::{CredentialId, OrgId, WebhookId};
use crate::domain::model::{Credential, SealedSecret, Secret};

/// The record a secret belongs to. It is authenticated with the ciphertext (AEAD associated
/// data, and the KMS encryption context), so a sealed secret copied into another credential or
/// organization fails to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealContext {
    pub org_id: OrgId,
    pub credential_id: CredentialId,
    /// Which kind of record `credential_id` names: a webhook secret sealed for an endpoint
    /// never opens as a credential's secret with the same id, or the other way round.
    pub purpose: SealPurpose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SealPurpose {
    #[default]
    CredentialSecret,
    WebhookSecret,
    /// An organization's key for signing address proofs; `credential_id` holds the key's id.
    AddressProofKey,
}

impl SealContext {
    pub fn of(credential: &Credential) -> Self {
        Self {
            org_id: credential.org_id,
            credential_id: credential.id,
            purpose: SealPurpose::CredentialSecret,
        }
    }

    /// A webhook endpoint's signing secret.
    pub fn webhook(org_id: OrgId, endpoint: WebhookId) -> Self {
        Self {
            org_id,
            credential_id: CredentialId::from_uuid(*endpoint.as_uuid()),
            purpose: SealPurpose::WebhookSecret,
        }
    }

    /// One of an organization's address-proof signing keys.
    pub fn address_proof_key(org_id: OrgId, key_id: uuid::Uuid) -> Self {
        Self {
            org_id,
            credential_id: CredentialId::from_uuid(key_id),
            purpose: SealPurpose::AddressProofKey,
        }
    }

    /// The associated data for a local AEAD.
    pub fn associated_data(&self) -> Vec<u8> {
        match self.purpose {
            SealPurpose::CredentialSecret => format!(
                "entryguard/credential-secret/v1;org={};credential={}",
                self.org_id, self.credential_id
            ),
            SealPurpose::WebhookSecret => format!(
                "entryguard/webhook-secret/v1;org={};webhook={}",
                self.org_id, self.credential_id
            ),
            SealPurpose::AddressProofKey => format!(
                "entryguard/address-proof-key/v1;org={};key={}",
                self.org_id, self.credential_id
            ),
        }
        .into_bytes()
    }

    /// The same binding as a KMS encryption context (which also lands in CloudTrail, so it
    /// holds ids only).
    pub fn encryption_context(&self) -> BTreeMap<String, String> {
        let record = match self.purpose {
            SealPurpose::CredentialSecret => "entryguard:credential",
            SealPurpose::WebhookSecret => "entryguard:webhook",
            SealPurpose::AddressProofKey => "entryguard:address-proof-key",
        };
        BTreeMap::from([
            ("entryguard:org".to_owned(), self.org_id.to_string()),
            (record.to_owned(), self.credential_id.to_string()),
        ])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SealError {
    /// The key service throttled or did not answer; trying again later may work.
    #[error("the key service is unavailable: {0}")]
    Unavailable(String),
    /// Sealed under another key or for another record, or altered: it will never open here.
    #[error("the stored secret cannot be opened: {0}")]
    CannotOpen(String),
    /// The key is missing, disabled or not ours to use: a deployment problem.
    #[error("the encryption key cannot be used: {0}")]
    KeyUnusable(String),
}

impl SealError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Encrypts secrets before they are stored and decrypts them where they are used (building
/// cloud clients). Implementations never log the plaintext.
#[async_trait]
pub trait SecretSealer: Send + Sync {
    async fn seal(&self, secret: &Secret, context: &SealContext)
        -> Result<SealedSecret, SealError>;
    async fn open(&self, sealed: &SealedSecret, context: &SealContext)
        -> Result<Secret, SealError>;
}

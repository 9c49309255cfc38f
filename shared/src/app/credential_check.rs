//! `POST /api/admin/credentials/{id}/validate`: asks the credential's cloud who it is and
//! records the answer. A cloud that throttles or does not answer says nothing about the
//! credential, so its recorded status is left as it was.

use thiserror::Error;

use crate::domain::audit::AuditType;
use crate::domain::ids::CredentialId;
use crate::domain::model::{Credential, CredentialStatus};
use crate::ports::store::StoreError;

use super::audit::Audit;
use super::auth::AuthError;
use super::{App, Identity};

#[derive(Debug, Error)]
pub enum ValidateCredentialError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("Credential not found")]
    NotFound,
    #[error("The cloud provider could not be reached to check the credential ({0}). Its status is unchanged; try again in a minute.")]
    ProviderUnavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl App {
    pub async fn validate_credential(
        &self,
        who: &Identity,
        id: CredentialId,
    ) -> Result<Credential, ValidateCredentialError> {
        who.require_admin()?;
        who.require_active_org()?;
        let mut credential: Credential = self
            .get_doc(who.org.id, *id.as_uuid())
            .await?
            .ok_or(ValidateCredentialError::NotFound)?;
        let result = self.verifier.verify(&credential).await;
        let name = credential.name.clone();
        let audit = |message: String| Audit::by(who, AuditType::AdminChange, message);
        match result {
            Ok(account) => {
                credential.status = CredentialStatus::Valid;
                credential.account_id = Some(account);
                credential.status_message = None;
            }
            Err(error) if error.is_transient() => {
                tracing::warn!(credential_id = %id, %error, "credential check inconclusive");
                self.audit(audit(format!("Could not check credential '{name}': {error}")).failed())
                    .await;
                return Err(ValidateCredentialError::ProviderUnavailable(
                    error.to_string(),
                ));
            }
            Err(error) => {
                credential.status = CredentialStatus::Invalid;
                credential.account_id = None;
                credential.status_message = Some(error.to_string());
            }
        }
        credential.checked_at = Some(self.now());
        // Deleted while the cloud was being asked: do not bring it back.
        if self
            .get_doc::<Credential>(who.org.id, *id.as_uuid())
            .await?
            .is_none()
        {
            return Err(ValidateCredentialError::NotFound);
        }
        self.put_doc(&credential).await?;
        let event = match (&credential.account_id, &credential.status_message) {
            (Some(account), _) => {
                audit(format!("Validated credential '{name}': account {account}"))
            }
            (None, reason) => audit(format!(
                "Credential '{name}' is invalid: {}",
                reason.as_deref().unwrap_or("rejected")
            ))
            .failed(),
        };
        self.audit(event).await;
        tracing::info!(credential_id = %id, status = ?credential.status, "credential checked");
        Ok(credential)
    }
}

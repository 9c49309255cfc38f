//! Who is calling: bearer tokens (stored only as SHA-256 hashes) and the development login.

use chrono::Duration;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::domain::audit::AuditType;
use crate::domain::model::{Email, Organization, User};
use crate::domain::net::ClientIp;
use crate::ports::store::{StoreError, TokenRecord};

use super::audit::Audit;
use super::App;

/// How long a development-login token is valid.
pub const DEV_TOKEN_HOURS: i64 = 12;

/// The authenticated caller. Every use case that acts for a person takes one.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: User,
    pub org: Organization,
    /// The caller's address as the server saw it, when known.
    pub ip: Option<ClientIp>,
}

impl Identity {
    pub fn require_admin(&self) -> Result<(), AuthError> {
        if self.user.is_admin {
            Ok(())
        } else {
            Err(AuthError::Forbidden)
        }
    }

    /// Refuses what a suspended organization may not do: anything that reaches into the cloud
    /// or widens access. Reading, stopping sessions and editing the configuration stay open, so
    /// an organization can see why and tidy up.
    pub fn require_active_org(&self) -> Result<(), AuthError> {
        if self.org.is_suspended() {
            Err(AuthError::Suspended)
        } else {
            Ok(())
        }
    }
}

#[derive(Debug, Error)]
pub enum AuthError {
    #[error("Authentication required: send a valid bearer token")]
    Unauthenticated,
    #[error("You do not have permission to do this")]
    Forbidden,
    #[error("{}", SUSPENDED_MESSAGE)]
    Suspended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub const SUSPENDED_MESSAGE: &str = "Your organization is suspended: sessions cannot be started or extended. Contact the operator of this EntryGuard deployment.";

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl App {
    /// Issues a token for the user with this e-mail. Only the local runner exposes this.
    pub async fn dev_login(
        &self,
        email: &Email,
        ip: Option<ClientIp>,
    ) -> Result<String, AuthError> {
        let Some(user) = self.store.find_user_by_email(email).await? else {
            return Err(AuthError::Unauthenticated);
        };
        let token = self.ids.token();
        let now = self.now();
        self.store
            .put_token(&TokenRecord {
                token_hash: hash_token(&token),
                user_id: user.id,
                created_at: now,
                expires_at: Some(now + Duration::hours(DEV_TOKEN_HOURS)),
                personal: None,
                last_used_at: None,
            })
            .await?;
        let mut audit = Audit::system(
            user.org_id,
            AuditType::Login,
            "Signed in with the development login",
        );
        audit.actor = Some((user.id, user.email.to_string()));
        audit.ip = ip.map(|ip| ip.to_string());
        self.audit(audit).await;
        Ok(token)
    }

    pub async fn authenticate(
        &self,
        bearer: &str,
        ip: Option<ClientIp>,
    ) -> Result<Identity, AuthError> {
        let Some(record) = self.store.get_token(&hash_token(bearer)).await? else {
            return Err(AuthError::Unauthenticated);
        };
        if record.expires_at.is_some_and(|at| at <= self.now()) {
            return Err(AuthError::Unauthenticated);
        }
        let Some(user) = self.store.get_user(record.user_id).await? else {
            return Err(AuthError::Unauthenticated);
        };
        let Some(org) = self.store.get_org(user.org_id).await? else {
            return Err(AuthError::Unauthenticated);
        };
        self.note_token_use(&record).await;
        Ok(Identity { user, org, ip })
    }

    /// The caller an identity provider vouched for: the EntryGuard user with that e-mail.
    pub async fn authenticate_email(
        &self,
        email: &Email,
        ip: Option<ClientIp>,
    ) -> Result<Identity, AuthError> {
        let Some(user) = self.store.find_user_by_email(email).await? else {
            tracing::info!("a verified sign-in has no EntryGuard user");
            return Err(AuthError::Unauthenticated);
        };
        let Some(org) = self.store.get_org(user.org_id).await? else {
            return Err(AuthError::Unauthenticated);
        };
        Ok(Identity { user, org, ip })
    }
}

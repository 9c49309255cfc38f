//! The first organization and its administrator, for a deployment that has none yet.

use std::collections::BTreeSet;

use crate::domain::audit::AuditType;
use crate::domain::ids::{OrgId, UserId};
use crate::domain::model::{Email, Name, Organization, User};
use crate::domain::net::ClientIp;
use crate::domain::tier::Tier;
use crate::ports::store::{CreateError, StoreError};

use super::audit::Audit;
use super::App;

#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    #[error("{0} already belongs to an organization; ask its administrator for access instead")]
    AlreadyMember(Email),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl App {
    /// Sign-up: a person whose e-mail an identity provider verified, and who is nobody's user
    /// yet, creates an organization on the Free plan and becomes its administrator. The user is
    /// written first, under the e-mail's uniqueness condition, so two sign-ups of one address
    /// race for it and the loser writes nothing.
    pub async fn sign_up(
        &self,
        email: &Email,
        name: Name,
        ip: Option<ClientIp>,
    ) -> Result<(Organization, User), SignUpError> {
        let now = self.now();
        let org = Organization::new(OrgId::from_uuid(self.ids.uuid()), name, Tier::Free, now);
        let user = User {
            id: UserId::from_uuid(self.ids.uuid()),
            org_id: org.id,
            email: email.clone(),
            is_admin: true,
            resource_ids: BTreeSet::new(),
            created_at: now,
        };
        match self.store.create_user(&user).await {
            Ok(()) => {}
            Err(CreateError::AlreadyExists) => {
                return Err(SignUpError::AlreadyMember(email.clone()))
            }
            Err(CreateError::Store(e)) => return Err(e.into()),
        }
        if let Err(e) = self.store.put_org(&org).await {
            // Without its organization the user cannot sign in; take it back.
            self.store.delete_user(user.id).await?;
            return Err(e.into());
        }
        let mut event = Audit::system(
            org.id,
            AuditType::AdminChange,
            format!(
                "{email} signed up and created the organization '{}' on the Free plan",
                org.name
            ),
        );
        event.actor = Some((user.id, email.to_string()));
        event.ip = ip.map(|ip| ip.to_string());
        self.audit(event).await;
        Ok((org, user))
    }

    /// Creates an organization with `admin` as its administrator.
    pub async fn create_organization_with_admin(
        &self,
        name: Name,
        tier: Tier,
        admin: &Email,
    ) -> Result<(Organization, User), CreateError> {
        let now = self.now();
        let org = Organization::new(OrgId::from_uuid(self.ids.uuid()), name, tier, now);
        self.store.put_org(&org).await?;
        let user = User {
            id: UserId::from_uuid(self.ids.uuid()),
            org_id: org.id,
            email: admin.clone(),
            is_admin: true,
            resource_ids: BTreeSet::new(),
            created_at: now,
        };
        self.store.create_user(&user).await?;
        let mut event = Audit::system(
            org.id,
            AuditType::AdminChange,
            format!(
                "Created the organization '{}' with administrator {admin}",
                org.name
            ),
        );
        event.actor = Some((user.id, user.email.to_string()));
        self.audit(event).await;
        Ok((org, user))
    }

    /// On a deployment without any organization, creates one administered by `admin`; does
    /// nothing (and returns `None`) once any organization exists.
    pub async fn bootstrap_organization(
        &self,
        name: Name,
        admin: &Email,
    ) -> Result<Option<OrgId>, CreateError> {
        if self.store.has_any_org().await? {
            return Ok(None);
        }
        if self.store.find_user_by_email(admin).await?.is_some() {
            return Ok(None);
        }
        let (org, _) = self
            .create_organization_with_admin(name, Tier::Team, admin)
            .await?;
        tracing::info!(org_id = %org.id, "bootstrapped the first organization");
        Ok(Some(org.id))
    }
}

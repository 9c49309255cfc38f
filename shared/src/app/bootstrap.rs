//! The first organization and its administrator, for a deployment that has none yet.

use std::collections::BTreeSet;

use crate::domain::audit::AuditType;
use crate::domain::ids::{OrgId, UserId};
use crate::domain::model::{Email, Name, Organization, User};
use crate::domain::tier::Tier;
use crate::ports::store::CreateError;

use super::audit::Audit;
use super::App;

impl App {
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

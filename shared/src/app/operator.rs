//! What only the operator of a deployment does: list organizations, set their plan, suspend
//! and resume them. No route reaches these: the operator's command calls them with the
//! deployment's own store (on AWS, with the operator's IAM credentials), so no token an
//! organization holds can raise its own limits.

use thiserror::Error;

use crate::domain::audit::AuditType;
use crate::domain::ids::OrgId;
use crate::domain::model::{OrgStatus, Organization};
use crate::domain::tier::Tier;
use crate::ports::store::{StoreError, UpdateError};

use super::audit::Audit;
use super::App;

/// How many times a conditional organization write is retried when another writer got there
/// first (an admin renaming it, another operator).
const MAX_ORG_CAS_ATTEMPTS: usize = 20;

#[derive(Debug, Error)]
pub enum OperatorError {
    #[error("no organization has the id {0}")]
    NotFound(OrgId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An organization as the operator's list shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgSummary {
    #[serde(flatten)]
    pub org: Organization,
    pub users: usize,
}

/// What a suspension did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suspended {
    /// Live sessions ended by the suspension.
    pub sessions_stopped: usize,
}

impl App {
    /// Reads an organization, applies `change` and writes it back only over the version it
    /// read, retrying on conflicts; `None` when `change` left it as it was.
    pub(crate) async fn mutate_org<E: From<StoreError>>(
        &self,
        id: OrgId,
        missing: impl Fn() -> E,
        mut change: impl FnMut(&mut Organization) -> Result<(), E>,
    ) -> Result<(Organization, Option<Organization>), E> {
        for _ in 0..MAX_ORG_CAS_ATTEMPTS {
            let Some(current) = self.store.get_org(id).await? else {
                return Err(missing());
            };
            let mut next = current.clone();
            change(&mut next)?;
            if next == current {
                return Ok((current, None));
            }
            next.version = current.version + 1;
            match self.store.update_org(&next, current.version).await {
                Ok(()) => return Ok((current, Some(next))),
                Err(UpdateError::Conflict) => continue,
                Err(UpdateError::Missing) => return Err(missing()),
                Err(UpdateError::Store(e)) => return Err(e.into()),
            }
        }
        Err(StoreError::Unavailable(format!(
            "organization {id} kept changing under {MAX_ORG_CAS_ATTEMPTS} attempts"
        ))
        .into())
    }

    pub async fn operator_list_organizations(&self) -> Result<Vec<OrgSummary>, OperatorError> {
        let mut orgs = self.store.list_orgs().await?;
        orgs.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        let mut out = Vec::with_capacity(orgs.len());
        for org in orgs {
            let users = self.store.list_users(org.id).await?.len();
            out.push(OrgSummary { org, users });
        }
        Ok(out)
    }

    /// Applies the operator's `change` and, if it changed anything, records `describe(before,
    /// after)` in the organization's audit log.
    async fn operator_change(
        &self,
        id: OrgId,
        change: impl Fn(&mut Organization),
        describe: impl FnOnce(&Organization, &Organization) -> String,
    ) -> Result<Organization, OperatorError> {
        let (before, after) = self
            .mutate_org(
                id,
                || OperatorError::NotFound(id),
                |org| {
                    change(org);
                    Ok(())
                },
            )
            .await?;
        let Some(after) = after else {
            return Ok(before);
        };
        self.audit(Audit::system(
            id,
            AuditType::AdminChange,
            describe(&before, &after),
        ))
        .await;
        Ok(after)
    }

    /// Sets the plan. Sessions already running keep the limits they started under; new starts
    /// and extensions follow the new plan.
    pub async fn operator_set_plan(
        &self,
        id: OrgId,
        tier: Tier,
        operator: &str,
    ) -> Result<Organization, OperatorError> {
        self.operator_change(
            id,
            |org| org.tier = tier,
            |before, after| {
                format!(
                    "The operator ({operator}) changed the plan from {} to {}",
                    before.tier, after.tier
                )
            },
        )
        .await
    }

    /// Suspends the organization and ends every live session of its users. Running it again
    /// ends any session that slipped in meanwhile.
    pub async fn operator_suspend(
        &self,
        id: OrgId,
        operator: &str,
        reason: &str,
    ) -> Result<Suspended, OperatorError> {
        self.operator_change(
            id,
            |org| org.status = OrgStatus::Suspended,
            |_, _| format!("The operator ({operator}) suspended the organization: {reason}"),
        )
        .await?;
        let sessions_stopped = self.stop_live_sessions_of_org(id).await?;
        if sessions_stopped > 0 {
            self.audit(Audit::system(
                id,
                AuditType::SessionStopped,
                format!(
                    "Stopped {sessions_stopped} live session(s): the organization is suspended"
                ),
            ))
            .await;
        }
        Ok(Suspended { sessions_stopped })
    }

    pub async fn operator_resume(
        &self,
        id: OrgId,
        operator: &str,
    ) -> Result<Organization, OperatorError> {
        self.operator_change(
            id,
            |org| org.status = OrgStatus::Active,
            |_, _| format!("The operator ({operator}) resumed the organization"),
        )
        .await
    }

    async fn stop_live_sessions_of_org(&self, id: OrgId) -> Result<usize, StoreError> {
        let mut stopped = 0;
        for user in self.store.list_users(id).await? {
            stopped += self.stop_all_sessions_of(user.id).await?;
        }
        Ok(stopped)
    }
}

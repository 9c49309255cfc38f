//! Who can reach the organization's resources right now, and how an admin closes that: every
//! live session of the organization, stopping any of them, revoking all access at once (to one
//! resource or everything), and the last 30 days at a glance.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};

use crate::domain::audit::AuditType;
use crate::domain::ids::{ResourceId, SessionId, UserId};
use crate::domain::model::{Resource, User};
use crate::domain::session::{EntryStatus, Session, SessionStatus, StoppedBy, TransitionError};
use crate::ports::store::StoreError;

use super::admin::AdminError;
use super::audit::Audit;
use super::{App, Identity, MutateError};

/// How far back the activity figures go.
pub const ACTIVITY_DAYS: i64 = 30;

/// Narrows the live sessions an admin sees.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveFilter {
    pub user: Option<UserId>,
    pub resource: Option<ResourceId>,
}

/// One live session with the person it belongs to.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub user: User,
    pub session: Session,
}

/// One day of the organization's sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayActivity {
    pub date: NaiveDate,
    pub started: u32,
    /// Sessions that ended up FAILED or PARTIAL: some access could not be granted.
    pub failed: u32,
}

/// A session still reaches (or is about to reach, or is still leaving) the cloud.
fn is_live(s: &Session) -> bool {
    !s.status().is_terminal()
}

impl App {
    /// The organization's users, or the one the filter names (404 when it is not one of them).
    async fn users_in_scope(
        &self,
        who: &Identity,
        user: Option<UserId>,
    ) -> Result<Vec<User>, AdminError> {
        let users = self.store.list_users(who.org.id).await?;
        match user {
            None => Ok(users),
            Some(id) => {
                let one: Vec<User> = users.into_iter().filter(|u| u.id == id).collect();
                if one.is_empty() {
                    Err(AdminError::NotFound("User"))
                } else {
                    Ok(one)
                }
            }
        }
    }

    /// Every session of the organization that is not over, soonest expiry first.
    pub async fn live_sessions(
        &self,
        who: &Identity,
        filter: LiveFilter,
    ) -> Result<Vec<LiveSession>, AdminError> {
        who.require_admin()?;
        if let Some(resource) = filter.resource {
            self.get_doc::<Resource>(who.org.id, *resource.as_uuid())
                .await?
                .ok_or(AdminError::NotFound("Resource"))?;
        }
        let mut out = Vec::new();
        for user in self.users_in_scope(who, filter.user).await? {
            for session in self.store.list_user_sessions(user.id, usize::MAX).await? {
                let reaches = filter
                    .resource
                    .is_none_or(|r| session.entries.iter().any(|e| e.resource_id == r));
                if is_live(&session) && reaches {
                    out.push(LiveSession {
                        user: user.clone(),
                        session,
                    });
                }
            }
        }
        out.sort_by(|a, b| {
            a.session
                .expires_at
                .cmp(&b.session.expires_at)
                .then(a.session.id.cmp(&b.session.id))
        });
        Ok(out)
    }

    /// Stops a session as the admin; the session remembers who, for its user to see.
    async fn stop_for_admin(&self, who: &Identity, id: SessionId) -> Result<Session, AdminError> {
        let by = StoppedBy {
            user_id: who.user.id,
            email: who.user.email.to_string(),
        };
        match self
            .mutate_session(id, |s, now| {
                let work = s.stop(now)?;
                if s.user_id != by.user_id {
                    s.stopped_by = Some(by.clone());
                }
                Ok(work)
            })
            .await
        {
            Ok((session, work)) => {
                self.send_work(&session, work).await;
                Ok(session)
            }
            Err(MutateError::Rejected(TransitionError::NotStoppable { status })) => {
                Err(AdminError::NotStoppable(status))
            }
            Err(MutateError::Rejected(other)) => Err(StoreError::Corrupt(other.to_string()).into()),
            Err(MutateError::Missing) => Err(AdminError::NotFound("Session")),
            Err(MutateError::Store(e)) => Err(e.into()),
        }
    }

    /// Stops any session of the organization.
    pub async fn admin_stop_session(
        &self,
        who: &Identity,
        id: SessionId,
    ) -> Result<Session, AdminError> {
        who.require_admin()?;
        let session = match self.store.get_session(id).await? {
            Some(s) if s.org_id == who.org.id => s,
            _ => return Err(AdminError::NotFound("Session")),
        };
        let owner = self
            .store
            .get_user(session.user_id)
            .await?
            .map_or_else(|| "a deleted user".to_owned(), |u| u.email.to_string());
        let stopped = self.stop_for_admin(who, id).await?;
        self.audit(
            Audit::by(
                who,
                AuditType::SessionStopped,
                format!("Stopped {owner}'s session"),
            )
            .session(id),
        )
        .await;
        Ok(stopped)
    }

    /// Stops every session that reaches `resource` (every live session without one). Returns
    /// how many it stopped.
    pub async fn revoke_all(
        &self,
        who: &Identity,
        resource: Option<ResourceId>,
    ) -> Result<usize, AdminError> {
        let live = self
            .live_sessions(
                who,
                LiveFilter {
                    user: None,
                    resource,
                },
            )
            .await?;
        let mut stopped = 0;
        for l in live.iter().filter(|l| l.session.status().holds_slot()) {
            match self.stop_for_admin(who, l.session.id).await {
                Ok(_) => stopped += 1,
                // Ended meanwhile (by its user, or expired): nothing left to stop.
                Err(AdminError::NotStoppable(_) | AdminError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let scope = match resource {
            Some(r) => format!("to resource {r}"),
            None => "to every resource".to_owned(),
        };
        self.audit(Audit::by(
            who,
            AuditType::SessionStopped,
            format!("Revoked all access {scope}: stopped {stopped} live session(s)"),
        ))
        .await;
        Ok(stopped)
    }

    /// Sessions started per day over the last [`ACTIVITY_DAYS`] days (UTC), oldest first, with
    /// how many of them failed in part or whole.
    pub async fn session_activity(&self, who: &Identity) -> Result<Vec<DayActivity>, AdminError> {
        who.require_admin()?;
        let today = self.now().date_naive();
        let first = today - Duration::days(ACTIVITY_DAYS - 1);
        let mut days: BTreeMap<NaiveDate, DayActivity> = first
            .iter_days()
            .take_while(|d| *d <= today)
            .map(|date| {
                (
                    date,
                    DayActivity {
                        date,
                        started: 0,
                        failed: 0,
                    },
                )
            })
            .collect();
        for user in self.store.list_users(who.org.id).await? {
            // Newest first, so the scan stops at the first session older than the window.
            for session in self.store.list_user_sessions(user.id, usize::MAX).await? {
                let Some(day) = days.get_mut(&session.created_at.date_naive()) else {
                    if session.created_at.date_naive() < first {
                        break;
                    }
                    continue;
                };
                day.started += 1;
                let failed = session
                    .entries
                    .iter()
                    .any(|e| e.status == EntryStatus::Failed)
                    || matches!(
                        session.status(),
                        SessionStatus::Failed | SessionStatus::Partial
                    );
                if failed {
                    day.failed += 1;
                }
            }
        }
        Ok(days.into_values().collect())
    }
}

//! Starting, listing, stopping and extending sessions.

use thiserror::Error;

use crate::domain::address_proof::{ProofError, SecondProofOfFamily, SessionAddresses};
use crate::domain::audit::AuditType;
use crate::domain::ids::{SessionId, UserId};
use crate::domain::model::{accessible_resource_ids, Credential, Resource, Role};
use crate::domain::net::ClientIp;
use crate::domain::rule::GroupRef;
use crate::domain::session::{EntryTarget, Session, SessionStatus, TransitionError};
use crate::domain::tier::{DurationError, Hours, SessionPolicy};
use crate::ports::queue::Task;
use crate::ports::secrets::SealError;
use crate::ports::store::{CreateSessionError, StoreError};

use super::address_proofs::AddressProofError;
use super::audit::Audit;
use super::{App, Identity, MutateError};

/// How many of a user's sessions the list shows.
pub const SESSION_LIST_LIMIT: usize = 200;

#[derive(Debug, Error)]
pub enum StartSessionError {
    #[error("Duration exceeds maximum allowed")]
    DurationExceedsMaximum { max_hours: u8 },
    #[error(
        "Duration must be one of {} hours",
        crate::domain::tier::list_hours(allowed)
    )]
    DurationNotOffered { allowed: Vec<u8> },
    #[error("User has no accessible cloud resources")]
    NoAccessibleResources,
    #[error("You already have {limit} active session(s), the most your plan allows. Stop one before starting another.")]
    ConcurrentSessionLimit { limit: u32 },
    #[error("{}", super::auth::SUSPENDED_MESSAGE)]
    OrganizationSuspended,
    #[error(transparent)]
    AddressProof(#[from] ProofError),
    #[error(transparent)]
    SecondProofOfFamily(#[from] SecondProofOfFamily),
    #[error(transparent)]
    Sealing(#[from] SealError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AddressProofError> for StartSessionError {
    fn from(e: AddressProofError) -> Self {
        match e {
            AddressProofError::Store(e) => Self::Store(e),
            AddressProofError::Sealing(e) => Self::Sealing(e),
        }
    }
}

#[derive(Debug, Error)]
pub enum SessionActionError {
    #[error("Session not found")]
    NotFound,
    #[error("Only ACTIVE, PENDING or PARTIAL sessions can be stopped; this one is {0}")]
    NotStoppable(SessionStatus),
    #[error(
        "Only ACTIVE or PARTIAL sessions that have not expired can be extended; this one is {0}"
    )]
    NotExtendable(SessionStatus),
    #[error("The extension would exceed the maximum session duration of {max_hours} hours")]
    ExtensionExceedsMaximum { max_hours: u8 },
    #[error("{}", super::auth::SUSPENDED_MESSAGE)]
    OrganizationSuspended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl std::fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<MutateError<TransitionError>> for SessionActionError {
    fn from(e: MutateError<TransitionError>) -> Self {
        match e {
            MutateError::Missing => Self::NotFound,
            MutateError::Store(e) => Self::Store(e),
            MutateError::Rejected(t) => match t {
                TransitionError::NotStoppable { status } => Self::NotStoppable(status),
                TransitionError::NotExtendable { status } => Self::NotExtendable(status),
                TransitionError::ExtensionExceedsMaximum { max_hours } => {
                    Self::ExtensionExceedsMaximum { max_hours }
                }
                other => Self::Store(StoreError::Corrupt(other.to_string())),
            },
        }
    }
}

/// What `GET /api/me` shows.
#[derive(Debug, Clone)]
pub struct MeView {
    pub identity: Identity,
    pub policy: SessionPolicy,
    pub resource_count: usize,
}

impl App {
    async fn roles_of(&self, who: &Identity) -> Result<Vec<Role>, StoreError> {
        Ok(self
            .list_docs::<Role>(who.org.id)
            .await?
            .into_iter()
            .filter(|r| r.user_ids.contains(&who.user.id))
            .collect())
    }

    /// The tier's limits narrowed by every role the user has.
    pub async fn policy_for(&self, who: &Identity) -> Result<SessionPolicy, StoreError> {
        let roles = self.roles_of(who).await?;
        Ok(SessionPolicy::new(
            who.org.tier,
            roles.iter().map(|r| r.max_session_duration_hours),
        ))
    }

    /// Resources of all the user's roles plus direct assignments that still exist.
    pub async fn accessible_resources(&self, who: &Identity) -> Result<Vec<Resource>, StoreError> {
        let roles = self.roles_of(who).await?;
        let ids = accessible_resource_ids(&who.user, &roles);
        Ok(self
            .list_docs::<Resource>(who.org.id)
            .await?
            .into_iter()
            .filter(|r| ids.contains(&r.id))
            .collect())
    }

    pub async fn me(&self, who: &Identity) -> Result<MeView, StoreError> {
        Ok(MeView {
            identity: who.clone(),
            policy: self.policy_for(who).await?,
            resource_count: self.accessible_resources(who).await?.len(),
        })
    }

    /// A session for the request's own address only.
    pub async fn start_session(
        &self,
        who: &Identity,
        ip: ClientIp,
        duration: Hours,
    ) -> Result<Session, StartSessionError> {
        self.start_session_with_proofs(who, ip, &[], duration).await
    }

    /// A session for the request's own address and the addresses of the other family its
    /// proofs show (from `GET /api/address`); any bad proof refuses the start.
    pub async fn start_session_with_proofs(
        &self,
        who: &Identity,
        ip: ClientIp,
        proofs: &[String],
        duration: Hours,
    ) -> Result<Session, StartSessionError> {
        if who.org.is_suspended() {
            return Err(StartSessionError::OrganizationSuspended);
        }
        let policy = self.policy_for(who).await?;
        policy.check_duration(duration).map_err(|e| match e {
            DurationError::ExceedsMaximum { max_hours } => {
                StartSessionError::DurationExceedsMaximum { max_hours }
            }
            DurationError::NotOffered { allowed } => {
                StartSessionError::DurationNotOffered { allowed }
            }
        })?;
        let proven = self.verify_address_proofs(who, proofs).await??;
        let addresses = SessionAddresses::new(ip, &proven)?.with_ipv6_prefix(who.org.ipv6_prefix);
        let resources = self.accessible_resources(who).await?;
        let credentials = self.list_docs::<Credential>(who.org.id).await?;
        let targets: Vec<EntryTarget> = resources
            .into_iter()
            .filter_map(|r| {
                let Some(credential) = credentials.iter().find(|c| c.id == r.credential_id) else {
                    tracing::warn!(resource_id = %r.id, "resource skipped: its credential no longer exists");
                    return None;
                };
                Some(EntryTarget {
                    resource_id: r.id,
                    resource_name: r.name,
                    group: GroupRef {
                        credential_id: credential.id,
                        provider: credential.provider(),
                        region: r.region,
                        security_group_id: r.security_group_id,
                    },
                    ports: r.ports,
                })
            })
            .collect();
        if targets.is_empty() {
            return Err(StartSessionError::NoAccessibleResources);
        }
        let session = Session::for_addresses(
            SessionId::from_uuid(self.ids.uuid()),
            who.org.id,
            who.user.id,
            addresses,
            self.now(),
            duration,
            targets,
        );
        match self
            .store
            .create_session(&session, policy.max_concurrent_sessions)
            .await
        {
            Ok(()) => self.metrics.record(crate::ports::Metric::SessionStarted),
            Err(CreateSessionError::LimitReached) => {
                return Err(StartSessionError::ConcurrentSessionLimit {
                    limit: policy.max_concurrent_sessions.unwrap_or(0),
                })
            }
            Err(CreateSessionError::Store(e)) => return Err(e.into()),
        }
        // The operator may have suspended the organization since the caller was authenticated;
        // its pass over live sessions may not see one this new, so the start takes itself back.
        if self
            .store
            .get_org(who.org.id)
            .await?
            .is_none_or(|org| org.is_suspended())
        {
            let (stopped, work) = self
                .mutate_session(session.id, |s, now| s.stop(now))
                .await
                .map_err(StoreError::from)?;
            self.send_work(&stopped, work).await;
            return Err(StartSessionError::OrganizationSuspended);
        }
        self.send_work(&session, session.unsettled_entries()).await;
        self.audit(
            Audit::by(
                who,
                AuditType::SessionStarted,
                format!(
                    "Started a {} h session from {} on {} resource(s)",
                    duration.get(),
                    session
                        .ip_addresses
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" and "),
                    session.entries.len()
                ),
            )
            .session(session.id),
        )
        .await;
        Ok(session)
    }

    /// Sends the worker its tasks. A failure here loses nothing: the session stays due in the
    /// sweeper's index and its work is sent again when it counts as stalled.
    pub(crate) async fn send_work(&self, session: &Session, entries: Vec<u32>) {
        if entries.is_empty() {
            return;
        }
        let tasks = entries
            .into_iter()
            .map(|entry| Task::ReconcileEntry {
                session_id: session.id,
                entry,
            })
            .collect();
        if let Err(error) = self.queue.enqueue(tasks).await {
            tracing::error!(%error, session_id = %session.id, "could not queue work; the sweeper will resend it");
        }
    }

    pub async fn list_sessions(&self, who: &Identity) -> Result<Vec<Session>, StoreError> {
        self.store
            .list_user_sessions(who.user.id, SESSION_LIST_LIMIT)
            .await
    }

    /// The caller's own session; another user's session looks missing.
    pub async fn get_session(
        &self,
        who: &Identity,
        id: SessionId,
    ) -> Result<Session, SessionActionError> {
        self.own_session(who.user.id, id).await
    }

    async fn own_session(
        &self,
        user: UserId,
        id: SessionId,
    ) -> Result<Session, SessionActionError> {
        match self.store.get_session(id).await? {
            Some(s) if s.user_id == user => Ok(s),
            _ => Err(SessionActionError::NotFound),
        }
    }

    pub async fn stop_session(
        &self,
        who: &Identity,
        id: SessionId,
    ) -> Result<Session, SessionActionError> {
        self.own_session(who.user.id, id).await?;
        let (session, work) = self.mutate_session(id, |s, now| s.stop(now)).await?;
        self.send_work(&session, work).await;
        self.audit(Audit::by(who, AuditType::SessionStopped, "Stopped the session").session(id))
            .await;
        Ok(session)
    }

    pub async fn extend_session(
        &self,
        who: &Identity,
        id: SessionId,
        hours: Hours,
    ) -> Result<Session, SessionActionError> {
        self.own_session(who.user.id, id).await?;
        if who.org.is_suspended() {
            return Err(SessionActionError::OrganizationSuspended);
        }
        let policy = self.policy_for(who).await?;
        let (session, ()) = self
            .mutate_session(id, |s, now| {
                s.extend(hours, policy.max_total(), policy.max_session_hours, now)
            })
            .await?;
        self.audit(
            Audit::by(
                who,
                AuditType::SessionExtended,
                format!(
                    "Extended the session by {} h, to {}",
                    hours.get(),
                    session.expires_at.to_rfc3339()
                ),
            )
            .session(id),
        )
        .await;
        Ok(session)
    }

    /// Ends every live session of a user, e.g. when the user is deleted.
    pub async fn stop_all_sessions_of(&self, user: UserId) -> Result<usize, StoreError> {
        let mut stopped = 0;
        for s in self.store.list_user_sessions(user, usize::MAX).await? {
            if !s.status().holds_slot() {
                continue;
            }
            match self.mutate_session(s.id, |s, now| s.stop(now)).await {
                Ok((session, work)) => {
                    stopped += 1;
                    self.send_work(&session, work).await;
                }
                Err(MutateError::Store(e)) => return Err(e),
                Err(_) => {}
            }
        }
        Ok(stopped)
    }
}

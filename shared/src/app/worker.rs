//! The rule worker: brings one session entry to its goal — its rules applied while the session
//! lives, removed once it ends. Safe to run twice, concurrently or after a crash at any step:
//! holders are named (idempotent), the cloud calls are idempotent, and every session change is a
//! conditional write of a legal transition.

use std::time::Duration;

use crate::domain::audit::AuditType;
use crate::domain::ids::SessionId;
use crate::domain::rule::RuleKey;
use crate::domain::session::{EntryStatus, EntryWork, Session, TransitionError};
use crate::ports::firewall::FirewallError;
use crate::ports::queue::Task;
use crate::ports::store::StoreError;

use super::audit::Audit;
use super::rules::{Released, RuleError};
use super::{App, MutateError};

/// The product's retry schedule for transient failures: after 30 s, 1 min, 2 min; the fourth
/// failure is final.
pub const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(120),
];

/// When another worker holds a rule's lease: retry soon, without counting a failed attempt.
pub const BUSY_DELAY: Duration = Duration::from_secs(2);

/// When the store itself fails: the message is delivered again later.
pub const STORE_RETRY_DELAY: Duration = Duration::from_secs(10);

/// What the queue should do with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    RetryAfter(Duration),
}

enum Step {
    Finished,
    Again,
    Retry(Duration),
}

fn from_rule_failure(e: RuleError) -> Result<FirewallError, Step> {
    match e {
        RuleError::Busy => Err(Step::Retry(BUSY_DELAY)),
        RuleError::Store(error) => {
            tracing::warn!(%error, "store failed while changing a rule");
            Err(Step::Retry(STORE_RETRY_DELAY))
        }
        RuleError::Firewall(e) => Ok(e),
    }
}

impl App {
    pub async fn process_task(&self, task: &Task) -> Outcome {
        match task {
            Task::ReconcileEntry { session_id, entry } => {
                self.reconcile_entry(*session_id, *entry).await
            }
        }
    }

    async fn reconcile_entry(&self, session_id: SessionId, index: u32) -> Outcome {
        // Each pass either finishes or observes a newer session state; a few suffice.
        for _ in 0..8 {
            let step = match self.reconcile_step(session_id, index).await {
                Ok(step) => step,
                Err(error) => {
                    tracing::warn!(%error, %session_id, entry = index, "store failed; will retry");
                    Step::Retry(STORE_RETRY_DELAY)
                }
            };
            match step {
                Step::Finished => return Outcome::Done,
                Step::Retry(after) => return Outcome::RetryAfter(after),
                Step::Again => continue,
            }
        }
        Outcome::RetryAfter(BUSY_DELAY)
    }

    async fn reconcile_step(&self, id: SessionId, index: u32) -> Result<Step, StoreError> {
        let Some(session) = self.store.get_session(id).await? else {
            tracing::warn!(session_id = %id, "task for a session that does not exist");
            return Ok(Step::Finished);
        };
        let work = match session.work_for(index) {
            Ok(work) => work,
            Err(error) => {
                tracing::warn!(%error, session_id = %id, "task for an entry that does not exist");
                return Ok(Step::Finished);
            }
        };
        match work {
            EntryWork::Nothing => Ok(Step::Finished),
            EntryWork::Apply => self.apply_entry(session, index).await,
            EntryWork::Remove => self.remove_entry(session, index).await,
        }
    }

    /// Applies a change to the session, answering `Again` when the entry moved on meanwhile.
    async fn change<T>(
        &self,
        id: SessionId,
        change: impl FnMut(&mut Session, crate::domain::Timestamp) -> Result<T, TransitionError>,
    ) -> Result<Option<(Session, T)>, StoreError> {
        match self.mutate_session(id, change).await {
            Ok(done) => Ok(Some(done)),
            Err(MutateError::Rejected(_)) | Err(MutateError::Missing) => Ok(None),
            Err(MutateError::Store(e)) => Err(e),
        }
    }

    async fn apply_entry(&self, session: Session, index: u32) -> Result<Step, StoreError> {
        let entry = session.entry(index).map_err(store_bug)?.clone();
        if entry.status == EntryStatus::Pending
            && self
                .change(session.id, |s, now| s.entry_applying(index, now))
                .await?
                .is_none()
        {
            return Ok(Step::Again);
        }
        let holder = session.holder(index);
        let rules = entry.rules();
        for key in &rules {
            if let Err(e) = self.acquire_rule(key, &entry.group, &holder).await {
                let failure = match from_rule_failure(e) {
                    Ok(failure) => failure,
                    Err(step) => return Ok(step),
                };
                return self
                    .entry_failure(&session, index, &rules, failure, "apply")
                    .await;
            }
        }
        let Some((_, status)) = self
            .change(session.id, |s, now| s.entry_applied(index, now))
            .await?
        else {
            return Ok(Step::Again);
        };
        if status == EntryStatus::Applied {
            self.audit(
                Audit::system(
                    session.org_id,
                    AuditType::RuleApplied,
                    format!(
                        "Opened {} on {} for {}",
                        describe_ports(&entry.ports),
                        entry.group.security_group_id,
                        entry.ip
                    ),
                )
                .session(session.id)
                .resource(entry.resource_id),
            )
            .await;
            Ok(Step::Finished)
        } else {
            // The session ended while we were applying: undo at once.
            Ok(Step::Again)
        }
    }

    async fn remove_entry(&self, session: Session, index: u32) -> Result<Step, StoreError> {
        let entry = session.entry(index).map_err(store_bug)?.clone();
        if entry.status != EntryStatus::Removing
            && self
                .change(session.id, |s, now| s.entry_applied(index, now))
                .await?
                .is_none()
        {
            return Ok(Step::Again);
        }
        let holder = session.holder(index);
        let rules = entry.rules();
        let mut group_gone = false;
        for key in &rules {
            match self.release_rule(key, &holder).await {
                Ok(Released::GroupGone) => group_gone = true,
                Ok(_) => {}
                Err(e) => {
                    let failure = match from_rule_failure(e) {
                        Ok(failure) => failure,
                        Err(step) => return Ok(step),
                    };
                    return self
                        .entry_failure(&session, index, &rules, failure, "remove")
                        .await;
                }
            }
        }
        if self
            .change(session.id, |s, now| s.entry_removed(index, now))
            .await?
            .is_none()
        {
            return Ok(Step::Again);
        }
        let note = if group_gone {
            " (the security group no longer exists)"
        } else {
            ""
        };
        self.audit(
            Audit::system(
                session.org_id,
                AuditType::RuleRemoved,
                format!(
                    "Closed {} on {} for {}{note}",
                    describe_ports(&entry.ports),
                    entry.group.security_group_id,
                    entry.ip
                ),
            )
            .session(session.id)
            .resource(entry.resource_id),
        )
        .await;
        Ok(Step::Finished)
    }

    /// A firewall failure while applying or removing: retried on the schedule when transient,
    /// final at once when permanent or after the last retry.
    async fn entry_failure(
        &self,
        session: &Session,
        index: u32,
        rules: &[RuleKey],
        failure: FirewallError,
        phase: &str,
    ) -> Result<Step, StoreError> {
        let entry = session.entry(index).map_err(store_bug)?;
        let message = failure.to_string();
        if failure.is_transient() && (entry.attempts as usize) < RETRY_DELAYS.len() {
            let delay = RETRY_DELAYS[entry.attempts as usize];
            let recorded = self
                .change(session.id, |s, now| {
                    s.entry_retrying(index, format!("{message} (retrying)"), now)
                })
                .await?;
            tracing::info!(session_id = %session.id, entry = index, phase, error = %message, retry_in_secs = delay.as_secs(), "transient firewall failure");
            return Ok(match recorded {
                Some(_) => Step::Retry(delay),
                None => Step::Again,
            });
        }
        if phase == "apply" {
            // Give back whatever this entry acquired before the failure.
            let holder = session.holder(index);
            for key in rules {
                if let Err(e) = self.release_rule(key, &holder).await {
                    tracing::warn!(error = %e, session_id = %session.id, entry = index, "could not release a rule after a failed apply; will retry");
                    return Ok(Step::Retry(BUSY_DELAY));
                }
            }
        }
        let what = if phase == "apply" {
            "Rule application failed"
        } else {
            "Rule removal failed"
        };
        let error = format!("{what}: {message}");
        if self
            .change(session.id, |s, now| {
                s.entry_failed(index, error.clone(), now)
            })
            .await?
            .is_none()
        {
            return Ok(Step::Again);
        }
        tracing::warn!(session_id = %session.id, entry = index, phase, error = %message, "entry failed");
        self.audit(
            Audit::system(session.org_id, AuditType::RuleFailed, error)
                .session(session.id)
                .resource(entry.resource_id)
                .failed(),
        )
        .await;
        Ok(Step::Finished)
    }
}

fn describe_ports(ports: &[crate::domain::net::PortRange]) -> String {
    ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn store_bug(e: TransitionError) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

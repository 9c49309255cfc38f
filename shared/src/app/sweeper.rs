//! The expiry sweeper: every minute, the sessions the due index names — expired ones go to
//! EXPIRING with their removals queued; ones whose work has stalled (a lost message, a crash)
//! get their work sent again. It also revokes rules whose last revoke failed, tells admins
//! about tasks in the dead-letter queue, and every few minutes runs drift reconciliation.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::Duration;

use crate::domain::audit::AuditType;
use crate::domain::ids::{OrgId, ResourceId, SessionId};
use crate::domain::model::{Credential, Resource};
use crate::domain::rule::CloudState;
use crate::domain::rule::GroupRef;
use crate::domain::session::Session;
use crate::ports::queue::{Task, MAX_RECEIVE_COUNT};
use crate::ports::store::StoreError;

use super::rules::{Released, RuleError};

use super::audit::Audit;
use super::reconcile::ReconcileReport;
use super::{App, MutateError};

/// How many due sessions one sweep handles; the rest wait for the next sweep.
pub const SWEEP_BATCH: usize = 500;
/// How many dead letters one sweep looks at.
pub const DEAD_LETTER_PEEK: usize = 100;
/// A dead letter is reported once while it is kept (SQS keeps them fourteen days).
pub const DEAD_LETTER_NOTICE_SECS: i64 = 14 * 24 * 3600;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub due: usize,
    pub expired: usize,
    pub redriven: usize,
    /// Rules nobody holds any more that were revoked on this pass.
    pub orphans_revoked: usize,
    /// Dead letters seen for the first time (and reported to their organizations).
    pub new_dead_letters: usize,
    /// The reconciliation pass, when this sweep ran it.
    pub reconciled: Option<ReconcileReport>,
}

enum Action {
    Expired(Vec<u32>),
    Redriven(Vec<u32>),
}

impl App {
    pub async fn sweep(&self) -> Result<SweepReport, StoreError> {
        let now = self.now();
        let due = self.store.due_sessions(now, SWEEP_BATCH).await?;
        let mut report = SweepReport {
            due: due.len(),
            ..Default::default()
        };
        for id in due {
            let result = self
                .mutate_session(id, |s, now| {
                    if s.expire(now).is_ok() {
                        return Ok(Action::Expired(s.unsettled_entries()));
                    }
                    s.redrive(now).map(Action::Redriven)
                })
                .await;
            match result {
                Ok((session, Action::Expired(work))) => {
                    report.expired += 1;
                    self.send_work(&session, work).await;
                    self.audit(
                        Audit::system(
                            session.org_id,
                            AuditType::SessionExpired,
                            "The session reached its expiry time",
                        )
                        .session(session.id),
                    )
                    .await;
                }
                Ok((session, Action::Redriven(work))) => {
                    report.redriven += 1;
                    tracing::warn!(session_id = %session.id, entries = work.len(), "stalled session; resending its work");
                    self.send_work(&session, work).await;
                }
                // Another sweeper or a user got there first, or it ended meanwhile.
                Err(MutateError::Rejected(_)) | Err(MutateError::Missing) => {}
                Err(MutateError::Store(e)) => return Err(e),
            }
        }
        report.orphans_revoked = self.revoke_orphans().await?;
        report.new_dead_letters = self.notice_dead_letters().await?;
        report.reconciled = self.reconcile_if_due().await?;
        if report.due > 0 || report.orphans_revoked > 0 || report.new_dead_letters > 0 {
            tracing::info!(
                due = report.due,
                expired = report.expired,
                redriven = report.redriven,
                orphans_revoked = report.orphans_revoked,
                new_dead_letters = report.new_dead_letters,
                "sweep finished"
            );
        }
        Ok(report)
    }

    /// Rules left without holders whose revoke failed (e.g. permission denied at the time): tried
    /// again every sweep until they are gone, so a failed removal never leaves a door open.
    async fn revoke_orphans(&self) -> Result<usize, StoreError> {
        let now = self.now();
        let mut revoked = 0;
        for rule in self.store.list_rules().await? {
            let unheld = rule.count() == 0 && rule.cloud != CloudState::Absent;
            let free = rule.lease.as_ref().is_none_or(|l| l.until <= now);
            if !(unheld && free) {
                continue;
            }
            let note = self.org_of_group(&rule.group).await?.map(|(org, resource)| {
                let audit = Audit::system(
                    org,
                    AuditType::RuleRemoved,
                    format!(
                        "Removed {} on {} for {}: no live session needs it, and an earlier removal had failed",
                        rule.key.rule.ports, rule.key.security_group_id, rule.key.rule.cidr
                    ),
                );
                match resource {
                    Some(r) => audit.resource(r),
                    None => audit,
                }
            });
            match self.revoke_unheld(&rule.key, note, false).await {
                Ok(Released::Revoked | Released::GroupGone) => {
                    revoked += 1;
                    tracing::warn!(rule = %rule.key, "revoked a rule no session holds any more");
                }
                Ok(Released::Kept) | Err(RuleError::Busy | RuleError::OverBudget(_)) => {}
                Err(RuleError::Store(e)) => return Err(e),
                Err(RuleError::Firewall(error)) => {
                    tracing::error!(rule = %rule.key, %error, "a rule no session holds could not be revoked; will retry");
                }
            }
        }
        Ok(revoked)
    }

    /// The organization whose credential a group is changed with, and one of its resources on
    /// the group.
    pub(crate) async fn org_of_group(
        &self,
        group: &GroupRef,
    ) -> Result<Option<(OrgId, Option<ResourceId>)>, StoreError> {
        for org in self.store.list_orgs().await? {
            let credentials = self.list_docs::<Credential>(org.id).await?;
            if !credentials.iter().any(|c| c.id == group.credential_id) {
                continue;
            }
            let resource = self
                .list_docs::<Resource>(org.id)
                .await?
                .into_iter()
                .find(|r| {
                    r.security_group_id == group.security_group_id && r.region == group.region
                })
                .map(|r| r.id);
            return Ok(Some((org.id, resource)));
        }
        Ok(None)
    }

    /// Tasks that failed too often sit in the dead-letter queue, retried by nobody (their
    /// sessions are still driven on by the stall check). Each is reported once to the
    /// organization of its session, which can redrive it once the cause is fixed; the
    /// CloudWatch alarm on the queue's depth tells the operators.
    async fn notice_dead_letters(&self) -> Result<usize, StoreError> {
        let letters = match self.queue.dead_letters(DEAD_LETTER_PEEK).await {
            Ok(letters) => letters,
            Err(error) => {
                tracing::warn!(%error, "could not look at the dead-letter queue");
                return Ok(0);
            }
        };
        if letters.is_empty() {
            return Ok(0);
        }
        tracing::error!(
            count = letters.len(),
            "tasks are waiting in the dead-letter queue"
        );
        let now = self.now();
        let mut by_org: BTreeMap<OrgId, Vec<SessionId>> = BTreeMap::new();
        let mut new = 0;
        for letter in &letters {
            let notice = format!("dead-letter/{}", letter.id);
            if !self
                .store
                .claim_run(&notice, now, Duration::seconds(DEAD_LETTER_NOTICE_SECS))
                .await?
            {
                continue;
            }
            new += 1;
            let Some(Task::ReconcileEntry { session_id, .. }) = &letter.task else {
                tracing::error!(message_id = %letter.id, body = %letter.body, "a malformed message is in the dead-letter queue");
                continue;
            };
            match self.store.get_session(*session_id).await? {
                Some(s) => by_org.entry(s.org_id).or_default().push(s.id),
                None => {
                    tracing::error!(message_id = %letter.id, %session_id, "a dead letter names a session that no longer exists")
                }
            }
        }
        for (org, sessions) in by_org {
            let distinct: BTreeSet<SessionId> = sessions.iter().copied().collect();
            let list: Vec<String> = distinct.iter().map(ToString::to_string).collect();
            let mut audit = Audit::system(
                org,
                AuditType::SystemAlert,
                format!(
                    "{} task(s) failed {MAX_RECEIVE_COUNT} times and were set aside in the dead-letter queue (session(s) {}). Once the cause is fixed, redrive them with POST /api/admin/dead-letters/redrive.",
                    sessions.len(),
                    list.join(", ")
                ),
            )
            .failed();
            if distinct.len() == 1 {
                audit = audit.session(sessions[0]);
            }
            self.audit(audit).await;
        }
        Ok(new)
    }

    /// Holders whose entry has ended (removed or failed) or whose session is gone. A worker that
    /// crashed between its steps, or lost a race to a duplicate delivery, can leave one behind,
    /// and each keeps its rule open; this gives them back, revoking rules left with no holder.
    pub(crate) async fn release_stale_holders(&self) -> Result<usize, StoreError> {
        let mut sessions: HashMap<SessionId, Option<Session>> = HashMap::new();
        let mut released = 0;
        for rule in self.store.list_rules().await? {
            for holder in &rule.holders {
                let Some((id, index)) = holder.entry() else {
                    tracing::error!(rule = %rule.key, holder = holder.as_str(), "a rule holder that names no entry");
                    continue;
                };
                let session = match sessions.get(&id) {
                    Some(s) => s.clone(),
                    None => {
                        let s = self.store.get_session(id).await?;
                        sessions.insert(id, s.clone());
                        s
                    }
                };
                let ended = session
                    .as_ref()
                    .is_none_or(|s| s.entry(index).map_or(true, |e| e.status.is_terminal()));
                if !ended {
                    continue;
                }
                released += 1;
                tracing::warn!(rule = %rule.key, holder = holder.as_str(), "giving back the rule of an entry that had ended");
                let Some(state) = self.store.rule_remove_holder(&rule.key, holder).await? else {
                    continue;
                };
                if state.count() > 0 || (state.cloud == CloudState::Absent && state.lease.is_none())
                {
                    continue;
                }
                let mut note = match &session {
                    Some(s) => Some((s.org_id, s.entry(index).ok().map(|e| e.resource_id))),
                    None => self.org_of_group(&rule.group).await?,
                }
                .map(|(org, resource)| {
                    let audit = Audit::system(
                        org,
                        AuditType::RuleRemoved,
                        format!(
                            "Closed {} on {} for {}: its session entry had ended while still holding it",
                            rule.key.rule.ports, rule.key.security_group_id, rule.key.rule.cidr
                        ),
                    );
                    match resource {
                        Some(r) => audit.resource(r),
                        None => audit,
                    }
                });
                if let (Some(n), Some(s)) = (note.take(), &session) {
                    note = Some(n.session(s.id));
                }
                match self.revoke_unheld(&rule.key, note, false).await {
                    Ok(_) | Err(RuleError::Busy | RuleError::OverBudget(_)) => {}
                    Err(RuleError::Store(e)) => return Err(e),
                    // Now an orphan: the sweeper retries the revoke.
                    Err(RuleError::Firewall(error)) => {
                        tracing::error!(rule = %rule.key, %error, "an ended entry's rule could not be revoked; will retry");
                    }
                }
            }
        }
        Ok(released)
    }
}

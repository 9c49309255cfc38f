//! The expiry sweeper: every minute, the sessions the due index names — expired ones go to
//! EXPIRING with their removals queued; ones whose work has stalled (a lost message, a crash)
//! get their work sent again.

use std::collections::HashMap;

use crate::domain::audit::AuditType;
use crate::domain::ids::SessionId;
use crate::domain::session::Session;
use crate::domain::rule::CloudState;
use crate::ports::store::StoreError;

use super::rules::{Released, RuleError};

use super::audit::Audit;
use super::{App, MutateError};

/// How many due sessions one sweep handles; the rest wait for the next sweep.
pub const SWEEP_BATCH: usize = 500;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub due: usize,
    pub expired: usize,
    pub redriven: usize,
    /// Rules nobody holds any more that were revoked on this pass.
    pub orphans_revoked: usize,
    /// Holders given back because their entry had ended (left behind by a crash or a race).
    pub stale_holders: usize,
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
        report.stale_holders = self.release_stale_holders().await?;
        report.orphans_revoked = self.revoke_orphans().await?;
        if report.due > 0 || report.orphans_revoked > 0 || report.stale_holders > 0 {
            tracing::info!(
                due = report.due,
                expired = report.expired,
                redriven = report.redriven,
                orphans_revoked = report.orphans_revoked,
                stale_holders = report.stale_holders,
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
            match self.revoke_if_unheld(&rule.key).await {
                Ok(Released::Revoked | Released::GroupGone) => {
                    revoked += 1;
                    tracing::warn!(rule = %rule.key, "revoked a rule no session holds any more");
                }
                Ok(Released::Kept) | Err(RuleError::Busy) => {}
                Err(RuleError::Store(e)) => return Err(e),
                Err(RuleError::Firewall(error)) => {
                    tracing::error!(rule = %rule.key, %error, "a rule no session holds could not be revoked; will retry");
                }
            }
        }
        Ok(revoked)
    }

    /// Holders whose entry has ended (removed or failed) or whose session is gone. A worker that
    /// crashed between its steps, or lost a race to a duplicate delivery, can leave one behind,
    /// and each keeps its rule open; this gives them back.
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
                match self.release_rule(&rule.key, holder).await {
                    Ok(_) => {
                        released += 1;
                        tracing::warn!(rule = %rule.key, holder = holder.as_str(), "gave back the rule of an entry that had ended");
                    }
                    Err(RuleError::Store(e)) => return Err(e),
                    // The holder is gone either way; the revoke is retried as an orphan's.
                    Err(RuleError::Busy) => released += 1,
                    Err(RuleError::Firewall(error)) => {
                        released += 1;
                        tracing::error!(rule = %rule.key, %error, "an ended entry's rule could not be revoked; will retry");
                    }
                }
            }
        }
        Ok(released)
    }
}

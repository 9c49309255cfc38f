//! The expiry sweeper: every minute, the sessions the due index names — expired ones go to
//! EXPIRING with their removals queued; ones whose work has stalled (a lost message, a crash)
//! get their work sent again.

use crate::domain::audit::AuditType;
use crate::ports::store::StoreError;

use super::audit::Audit;
use super::{App, MutateError};

/// How many due sessions one sweep handles; the rest wait for the next sweep.
pub const SWEEP_BATCH: usize = 500;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub due: usize,
    pub expired: usize,
    pub redriven: usize,
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
        if report.due > 0 {
            tracing::info!(
                due = report.due,
                expired = report.expired,
                redriven = report.redriven,
                "sweep finished"
            );
        }
        Ok(report)
    }
}

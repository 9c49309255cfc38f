//! The expiry sweeper's handler, run by a one-minute EventBridge schedule.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::Serialize;

use entryguard::app::sweeper::SweepReport;
use entryguard::app::App;
use entryguard::ports::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepSummary {
    pub due: usize,
    pub expired: usize,
    pub redriven: usize,
    pub orphans_revoked: usize,
    pub new_dead_letters: usize,
    /// Present when this sweep ran the (rate-limited) drift reconciliation.
    pub reconciliation: Option<ReconciliationSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconciliationSummary {
    pub groups: usize,
    pub reapplied: usize,
    pub orphans_removed: usize,
    pub missing_groups: usize,
    pub stale_holders: usize,
    pub errors: usize,
}

impl From<SweepReport> for SweepSummary {
    fn from(r: SweepReport) -> Self {
        Self {
            due: r.due,
            expired: r.expired,
            redriven: r.redriven,
            orphans_revoked: r.orphans_revoked,
            new_dead_letters: r.new_dead_letters,
            reconciliation: r.reconciled.map(|c| ReconciliationSummary {
                groups: c.groups,
                reapplied: c.reapplied,
                orphans_removed: c.orphans_removed,
                missing_groups: c.missing_groups,
                stale_holders: c.stale_holders,
                errors: c.errors,
            }),
        }
    }
}

/// One sweep. The event's content does not matter: the schedule is only the trigger, and the
/// clock port — not the event's time — decides what is due.
pub async fn handle_schedule(
    app: &App,
    event: EventBridgeEvent<serde_json::Value>,
) -> Result<SweepSummary, StoreError> {
    tracing::debug!(event_id = ?event.id, "sweep triggered");
    Ok(app.sweep().await?.into())
}

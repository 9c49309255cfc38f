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
}

impl From<SweepReport> for SweepSummary {
    fn from(r: SweepReport) -> Self {
        Self {
            due: r.due,
            expired: r.expired,
            redriven: r.redriven,
            orphans_revoked: r.orphans_revoked,
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

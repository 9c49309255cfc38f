//! The expiry sweeper's handler, run by a one-minute EventBridge schedule.

/// Every variable the expiry sweeper binary reads; infra/template.yaml must set exactly these for it
/// (a test runs the binary with the template's environment and compares the names).
pub const ENVIRONMENT: &[&str] = &[
    entryguard_aws::env_names::TABLE_NAME,
    entryguard_aws::env_names::QUEUE_URL,
    entryguard_aws::env_names::KMS_KEY_ID,
    entryguard_aws::env_names::EC2_RATE_SHARE,
    entryguard_aws::env_names::RUST_LOG,
    entryguard_aws::env_names::METRICS_NAMESPACE,
];

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::Serialize;

use entryguard::app::sweeper::{SweepOptions, SweepReport};
use entryguard::app::App;
use entryguard::ports::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepSummary {
    pub due: usize,
    pub expired: usize,
    pub redriven: usize,
    /// Sessions due before the next run, sent as check messages delayed to their second.
    pub scheduled: usize,
    /// Records that could not be handled, skipped and reported.
    pub skipped: usize,
    /// The run's time ran out with due sessions left for the next run.
    pub unfinished: bool,
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
            scheduled: r.scheduled,
            skipped: r.skipped,
            unfinished: r.unfinished,
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

/// Time kept back from the invocation's deadline: the run stops starting new sessions this
/// long before the Lambda would be cut off, so the ones under way finish and report.
pub const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(8);

/// The options for a run that must end by `remaining` from now (the Lambda context's
/// deadline): the one-minute schedule's, with the budget cut to what the invocation has left.
pub fn options_for(remaining: std::time::Duration) -> SweepOptions {
    let mut options = SweepOptions::default();
    let left = chrono::Duration::from_std(remaining.saturating_sub(DEADLINE_MARGIN))
        .unwrap_or(chrono::Duration::zero());
    options.budget = options.budget.min(left);
    options
}

/// One sweep. The event's content does not matter: the schedule is only the trigger, and the
/// clock port — not the event's time — decides what is due.
pub async fn handle_schedule(
    app: &App,
    event: EventBridgeEvent<serde_json::Value>,
    options: SweepOptions,
) -> Result<SweepSummary, StoreError> {
    tracing::debug!(event_id = ?event.id, "sweep triggered");
    Ok(app.sweep_with(options).await?.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_budget_stops_short_of_the_invocations_deadline() {
        assert_eq!(
            options_for(Duration::from_secs(55)).budget,
            chrono::Duration::seconds(47)
        );
        assert_eq!(
            options_for(Duration::from_secs(600)).budget,
            SweepOptions::default().budget
        );
        assert_eq!(
            options_for(Duration::from_secs(3)).budget,
            chrono::Duration::zero()
        );
    }
}

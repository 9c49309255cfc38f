//! Counts the calls that reach the cloud firewall and the ones the cloud still throttled after
//! the adapter's own backoff, whichever provider answers them.

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::rule::{GroupRef, ListedRule};
use crate::ports::firewall::{BatchOutcome, GroupBatch, RuleOutcome};
use crate::ports::{Firewall, FirewallError, Metric, Metrics};

pub struct MeteredFirewall {
    inner: Arc<dyn Firewall>,
    metrics: Arc<dyn Metrics>,
}

impl MeteredFirewall {
    pub fn new(inner: Arc<dyn Firewall>, metrics: Arc<dyn Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn count<T>(&self, result: Result<T, FirewallError>) -> Result<T, FirewallError> {
        self.metrics.record(Metric::RuleCall {
            throttled: matches!(result, Err(FirewallError::Throttled(_))),
        });
        result
    }
}

// Only the required methods: the single-rule ones go through `apply_batch`, so each change the
// worker asks for is counted once, however many rules it carries.
#[async_trait]
impl Firewall for MeteredFirewall {
    async fn apply_batch(&self, group: &GroupRef, batch: &GroupBatch) -> BatchOutcome {
        let outcome = self.inner.apply_batch(group, batch).await;
        let throttled = outcome
            .authorized
            .iter()
            .chain(&outcome.revoked)
            .any(|(_, o)| matches!(o, RuleOutcome::Failed(FirewallError::Throttled(_))));
        self.metrics.record(Metric::RuleCall { throttled });
        outcome
    }

    async fn ingress_rules(&self, group: &GroupRef) -> Result<Vec<ListedRule>, FirewallError> {
        self.count(self.inner.ingress_rules(group).await)
    }
}

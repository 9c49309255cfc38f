//! Routes each firewall change to the adapter for its credential's provider.

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::model::Provider;
use crate::domain::rule::{GroupRef, ListedRule};
use crate::ports::firewall::{BatchOutcome, Firewall, FirewallError, GroupBatch};

pub struct FirewallByProvider {
    pub simulated: Option<Arc<dyn Firewall>>,
    pub aws: Option<Arc<dyn Firewall>>,
}

impl FirewallByProvider {
    fn pick(&self, group: &GroupRef) -> Result<&Arc<dyn Firewall>, FirewallError> {
        let (adapter, name) = match group.provider {
            Provider::Simulated => (&self.simulated, "simulated"),
            Provider::Aws => (&self.aws, "aws"),
        };
        adapter.as_ref().ok_or_else(|| {
            FirewallError::Rejected(format!(
                "this deployment has no {name} cloud configured; use a credential of another provider"
            ))
        })
    }
}

#[async_trait]
impl Firewall for FirewallByProvider {
    async fn apply_batch(&self, group: &GroupRef, batch: &GroupBatch) -> BatchOutcome {
        match self.pick(group) {
            Ok(adapter) => adapter.apply_batch(group, batch).await,
            Err(e) => BatchOutcome::all_failed(batch, &e),
        }
    }

    async fn ingress_rules(&self, group: &GroupRef) -> Result<Vec<ListedRule>, FirewallError> {
        self.pick(group)?.ingress_rules(group).await
    }
}

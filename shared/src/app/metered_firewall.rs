//! Counts the calls that reach the cloud firewall and the ones the cloud still throttled after
//! the adapter's own backoff, whichever provider answers them.

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::rule::{GroupRef, IngressRule, ListedRule};
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

#[async_trait]
impl Firewall for MeteredFirewall {
    async fn authorize(&self, group: &GroupRef, rule: &IngressRule) -> Result<(), FirewallError> {
        self.count(self.inner.authorize(group, rule).await)
    }

    async fn revoke(&self, group: &GroupRef, rule: &IngressRule) -> Result<(), FirewallError> {
        self.count(self.inner.revoke(group, rule).await)
    }

    async fn ingress_rules(&self, group: &GroupRef) -> Result<Vec<ListedRule>, FirewallError> {
        self.count(self.inner.ingress_rules(group).await)
    }
}

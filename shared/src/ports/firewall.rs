use async_trait::async_trait;
use thiserror::Error;

use crate::domain::rule::{GroupRef, IngressRule, ListedRule};

/// Why a firewall change failed, already classified by the adapter. Success cases of the cloud's
/// idempotency errors (a duplicate on authorize, a missing rule on revoke) never show up here.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FirewallError {
    #[error("The cloud provider is throttling requests: {0}")]
    Throttled(String),
    #[error("The cloud provider did not answer in time or failed temporarily: {0}")]
    Unavailable(String),
    #[error("Permission denied: the credential's IAM policy does not allow this change ({0}). An administrator should regenerate the IAM policy.")]
    PermissionDenied(String),
    #[error("Security group {0} was not found: it may have been deleted, or the credential points at another account or region. An administrator should check the resource.")]
    GroupNotFound(String),
    #[error("Security group {0} has reached its rule limit (60 rules). Remove unused rules or split resources across security groups.")]
    RuleLimitExceeded(String),
    #[error("The credential is invalid or expired: {0}. An administrator should replace it.")]
    InvalidCredential(String),
    #[error("The cloud provider rejected the request: {0}")]
    Rejected(String),
}

impl FirewallError {
    /// Transient errors are retried on the documented schedule; the others fail at once.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Throttled(_) | Self::Unavailable(_))
    }
}

/// Security-group ingress management. Implementations are idempotent: authorizing a rule that
/// exists, or revoking one that does not, succeeds.
#[async_trait]
pub trait Firewall: Send + Sync {
    async fn authorize(&self, group: &GroupRef, rule: &IngressRule) -> Result<(), FirewallError>;
    async fn revoke(&self, group: &GroupRef, rule: &IngressRule) -> Result<(), FirewallError>;
    /// The group's inbound rules that open ports to addresses — the only kind EntryGuard makes —
    /// each marked whether EntryGuard made it; `GroupNotFound` if the group no longer exists.
    /// Drift reconciliation compares these with what the store says should be there.
    async fn ingress_rules(&self, group: &GroupRef) -> Result<Vec<ListedRule>, FirewallError>;
}

use async_trait::async_trait;
use thiserror::Error;

use crate::domain::rule::{CloudRuleId, GroupRef, IngressRule, ListedRule};

/// The description EntryGuard puts on every rule it creates, in whichever cloud.
pub const RULE_DESCRIPTION: &str = "Managed by EntryGuard";

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

/// A rule to create, with the description its address range carries in the cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub rule: IngressRule,
    pub description: String,
}

/// A rule of EntryGuard's to delete, by its cloud id where known (no listing needed then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub rule: IngressRule,
    pub rule_id: Option<CloudRuleId>,
}

/// Every change one security group needs, made together: one call to create, one to delete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupBatch {
    pub authorize: Vec<Authorization>,
    pub revoke: Vec<Revocation>,
}

/// What became of one rule of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleOutcome {
    /// The rule is in the group: created now, or already there (the id is `None` when the rule
    /// there is not EntryGuard's, e.g. an identical hand-made one, which is never revoked).
    Present(Option<CloudRuleId>),
    /// The rule is not in the group: revoked now, or already gone.
    Absent,
    Failed(FirewallError),
}

/// The outcome of each rule of a batch, in the batch's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub authorized: Vec<(IngressRule, RuleOutcome)>,
    pub revoked: Vec<(IngressRule, RuleOutcome)>,
}

impl BatchOutcome {
    /// Every rule of `batch` failed the same way (the call itself failed).
    pub fn all_failed(batch: &GroupBatch, error: &FirewallError) -> Self {
        Self {
            authorized: batch
                .authorize
                .iter()
                .map(|a| (a.rule, RuleOutcome::Failed(error.clone())))
                .collect(),
            revoked: batch
                .revoke
                .iter()
                .map(|r| (r.rule, RuleOutcome::Failed(error.clone())))
                .collect(),
        }
    }

    fn single(
        outcomes: &[(IngressRule, RuleOutcome)],
    ) -> Result<Option<CloudRuleId>, FirewallError> {
        match outcomes.first().map(|(_, o)| o) {
            Some(RuleOutcome::Present(id)) => Ok(id.clone()),
            Some(RuleOutcome::Absent) | None => Ok(None),
            Some(RuleOutcome::Failed(e)) => Err(e.clone()),
        }
    }
}

/// Security-group ingress management. Implementations are idempotent: authorizing a rule that
/// exists, or revoking one that does not, succeeds.
#[async_trait]
pub trait Firewall: Send + Sync {
    /// Makes every change of `batch` to one group with as few calls as the cloud allows (one
    /// to create, one to delete; the cloud's all-or-nothing refusals — a duplicate, a rule
    /// already gone, the group's rule limit — cost one listing and one retry without the
    /// offenders). Each rule gets its own outcome; rules that do not fit in the group fail
    /// with `RuleLimitExceeded`, the others go through.
    async fn apply_batch(&self, group: &GroupRef, batch: &GroupBatch) -> BatchOutcome;

    /// One rule, created with EntryGuard's description; answers its cloud id when it is ours.
    async fn authorize(
        &self,
        group: &GroupRef,
        rule: &IngressRule,
    ) -> Result<Option<CloudRuleId>, FirewallError> {
        let batch = GroupBatch {
            authorize: vec![Authorization {
                rule: *rule,
                description: RULE_DESCRIPTION.to_owned(),
            }],
            revoke: vec![],
        };
        BatchOutcome::single(&self.apply_batch(group, &batch).await.authorized)
    }

    /// One rule of EntryGuard's deleted, by `rule_id` when known.
    async fn revoke(
        &self,
        group: &GroupRef,
        rule: &IngressRule,
        rule_id: Option<&CloudRuleId>,
    ) -> Result<(), FirewallError> {
        let batch = GroupBatch {
            authorize: vec![],
            revoke: vec![Revocation {
                rule: *rule,
                rule_id: rule_id.cloned(),
            }],
        };
        BatchOutcome::single(&self.apply_batch(group, &batch).await.revoked).map(|_| ())
    }

    /// The group's inbound rules that open ports to addresses — the only kind EntryGuard makes —
    /// each marked whether EntryGuard made it; `GroupNotFound` if the group no longer exists.
    /// Drift reconciliation compares these with what the store says should be there.
    async fn ingress_rules(&self, group: &GroupRef) -> Result<Vec<ListedRule>, FirewallError>;
}
